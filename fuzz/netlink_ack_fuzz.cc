// libFuzzer target for the ack walk and extended-ack parsing (native/netlink_ack.cc), two
// properties per input:
//  1. on arbitrary datagram bytes, ParseAcks and ExtAckMessage never read outside the bytes
//     given (they sit in a buffer of exactly that size, so ASan sees any overread), every
//     message they return lies inside them, and every error is an errno (1..4095) or EPROTO;
//  2. a datagram built the way the kernel builds acks (capped or with the echoed request,
//     with or without an extended-ack message, several per datagram) parses back to exactly
//     the acks it was built from.
#include <fuzzer/FuzzedDataProvider.h>
#include <linux/netlink.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../native/netlink_ack.h"

using ipvs::netlink::Ack;

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "netlink ack: %s\n", what);
  std::abort();
}

bool Inside(std::string_view view, const uint8_t* data, size_t size) {
  if (view.empty()) return true;
  const auto* begin = reinterpret_cast<const uint8_t*>(view.data());
  return begin >= data && begin + view.size() <= data + size;
}

void CheckArbitrary(const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> exact(bytes);  // heap block of exactly this size
  std::vector<Ack> acks;
  ipvs::netlink::ParseAcks(exact.data(), exact.size(), &acks);
  for (const Ack& ack : acks) {
    if (!Inside(ack.message, exact.data(), exact.size())) Fail("message outside the datagram");
    if (ack.error < 0 || ack.error > 4095) Fail("error is not an errno");
  }
  std::string_view text = ipvs::netlink::ExtAckMessage(exact.data(), exact.size());
  if (!Inside(text, exact.data(), exact.size())) Fail("ext-ack text outside the message");
}

struct Planned {
  uint32_t seq;
  int error;
  std::string message;  // sent only with an error
};

void Put(std::vector<uint8_t>& out, const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  out.insert(out.end(), bytes, bytes + size);
}

void Align(std::vector<uint8_t>& out, size_t start) {
  while ((out.size() - start) % NLMSG_ALIGNTO != 0) out.push_back(0);
}

// One NLMSG_ERROR as netlink_ack() writes it.
void AppendAck(std::vector<uint8_t>& out, const Planned& ack, bool capped, size_t echoed_payload,
               FuzzedDataProvider& fdp) {
  const size_t start = out.size();
  nlmsghdr hdr{};
  hdr.nlmsg_type = NLMSG_ERROR;
  hdr.nlmsg_seq = ack.seq;
  hdr.nlmsg_flags = capped ? 0x100 : 0;
  if (ack.error != 0 && !ack.message.empty()) hdr.nlmsg_flags |= 0x200;
  Put(out, &hdr, sizeof(hdr));
  nlmsgerr err{};
  err.error = -ack.error;
  err.msg.nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + (capped ? 0 : echoed_payload));
  err.msg.nlmsg_seq = ack.seq;
  Put(out, &err, sizeof(err));
  if (!capped) {
    for (size_t i = 0; i < echoed_payload; ++i) out.push_back(fdp.ConsumeIntegral<uint8_t>());
    Align(out, start);
  }
  if (hdr.nlmsg_flags & 0x200) {
    // An unrelated attribute first (the kernel may send the offset), then the text.
    if (fdp.ConsumeBool()) {
      const uint16_t len = 8, type = 2;
      uint32_t offset = fdp.ConsumeIntegral<uint32_t>();
      Put(out, &len, 2);
      Put(out, &type, 2);
      Put(out, &offset, 4);
    }
    const uint16_t len = static_cast<uint16_t>(4 + ack.message.size() + 1), type = 1;
    Put(out, &len, 2);
    Put(out, &type, 2);
    Put(out, ack.message.c_str(), ack.message.size() + 1);
    Align(out, start);
  }
  const uint32_t total = static_cast<uint32_t>(out.size() - start);
  std::memcpy(out.data() + start, &total, sizeof(total));
}

void CheckRoundTrip(FuzzedDataProvider& fdp) {
  std::vector<Planned> planned;
  std::vector<uint8_t> datagram;
  const size_t count = fdp.ConsumeIntegralInRange<size_t>(1, 8);
  for (size_t i = 0; i < count; ++i) {
    Planned ack;
    ack.seq = fdp.ConsumeIntegral<uint32_t>();
    ack.error = fdp.ConsumeBool() ? 0 : fdp.ConsumeIntegralInRange<int>(1, 4095);
    if (ack.error != 0) {
      ack.message = fdp.ConsumeRandomLengthString(200);
      ack.message = ack.message.substr(0, ack.message.find('\0'));
    }
    const bool capped = fdp.ConsumeBool();
    const size_t echoed = fdp.ConsumeIntegralInRange<size_t>(0, 64);
    AppendAck(datagram, ack, capped, echoed, fdp);
    planned.push_back(ack);
  }
  std::vector<Ack> acks;
  ipvs::netlink::ParseAcks(datagram.data(), datagram.size(), &acks);
  if (acks.size() != planned.size()) Fail("round trip changed the number of acks");
  for (size_t i = 0; i < acks.size(); ++i) {
    if (acks[i].seq != planned[i].seq) Fail("round trip changed a sequence number");
    if (acks[i].error != planned[i].error) Fail("round trip changed an error");
    if (acks[i].message != planned[i].message) Fail("round trip changed an extended-ack message");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  if (fdp.ConsumeBool()) {
    CheckArbitrary(fdp.ConsumeRemainingBytes<uint8_t>());
  } else {
    CheckRoundTrip(fdp);
  }
  return 0;
}
