// libFuzzer target for the packed-record decoders (native/records.cc), which read words the
// JS side wrote (record_layout.h). Per input:
//  1. arbitrary words as a request record: UnpackRequest and UnpackQuery either refuse them
//     with RecordError or return a request that the netlink encoder takes without error;
//  2. whatever unpacks survives pack -> unpack unchanged, and so does every service and
//     destination record (counters included) of arbitrary words;
//  3. the input as a destination reply: DecodeDestinationRecord writes exactly the record
//     PackDestination(DecodeDestination()) writes, or both refuse it;
//  4. the words as a request record: AppendRequestRecord appends exactly the message
//     AppendRequestMessage(UnpackRequest()) appends, or both refuse it (and it appends nothing).
#include <linux/genetlink.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../native/records.h"

using namespace ipvs;

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "record round trip changed %s\n", what);
  std::abort();
}

#define EXPECT_SAME(a, b, what) \
  do {                          \
    if (!((a) == (b))) Fail(what); \
  } while (0)

bool SameStats(const std::optional<Stats>& a, const std::optional<Stats>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->conns == b->conns && a->inpkts == b->inpkts && a->outpkts == b->outpkts && a->inbytes == b->inbytes &&
         a->outbytes == b->outbytes && a->cps == b->cps && a->inpps == b->inpps && a->outpps == b->outpps &&
         a->inbps == b->inbps && a->outbps == b->outbps;
}

void ExpectSameService(const Service& a, const Service& b) {
  EXPECT_SAME(a.af, b.af, "service af");
  EXPECT_SAME(a.protocol, b.protocol, "service protocol");
  EXPECT_SAME(a.address, b.address, "service address");
  EXPECT_SAME(a.port, b.port, "service port");
  EXPECT_SAME(a.fwmark, b.fwmark, "service fwmark");
  EXPECT_SAME(a.scheduler, b.scheduler, "scheduler");
  EXPECT_SAME(a.flags, b.flags, "service flags");
  EXPECT_SAME(a.flags_mask, b.flags_mask, "service flags mask");
  EXPECT_SAME(a.timeout, b.timeout, "service timeout");
  EXPECT_SAME(a.netmask, b.netmask, "netmask");
  EXPECT_SAME(a.pe_name, b.pe_name, "pe name");
  if (!SameStats(a.stats, b.stats)) Fail("service stats");
}

void ExpectSameDestination(const Destination& a, const Destination& b) {
  EXPECT_SAME(a.address, b.address, "destination address");
  EXPECT_SAME(a.port, b.port, "destination port");
  EXPECT_SAME(a.forward, b.forward, "forwarding method");
  EXPECT_SAME(a.weight, b.weight, "weight");
  EXPECT_SAME(a.upper_threshold, b.upper_threshold, "upper threshold");
  EXPECT_SAME(a.lower_threshold, b.lower_threshold, "lower threshold");
  EXPECT_SAME(a.af, b.af, "destination af");
  EXPECT_SAME(a.tunnel_type, b.tunnel_type, "tunnel type");
  EXPECT_SAME(a.tunnel_port, b.tunnel_port, "tunnel port");
  EXPECT_SAME(a.tunnel_flags, b.tunnel_flags, "tunnel flags");
  EXPECT_SAME(a.active_conns, b.active_conns, "active connections");
  EXPECT_SAME(a.inactive_conns, b.inactive_conns, "inactive connections");
  EXPECT_SAME(a.persistent_conns, b.persistent_conns, "persistent connections");
  if (!SameStats(a.stats, b.stats)) Fail("destination stats");
}

void CheckRequest(const Request& request, const std::vector<std::string>& strings) {
  // The encoder takes anything the unpacker lets through.
  nl_msg* msg = nlmsg_alloc_size(8192);
  genlmsg_put(msg, 0, 0, 0x20, 0, 0, request.command, kGenlVersion);
  EncodeRequest(msg, request);
  nlmsg_free(msg);
  // Pack -> unpack keeps it.
  StringTable table;
  std::vector<uint32_t> words(record::request::kWords, 0);
  PackRequest(request, table, words.data());
  Request again = request.IsDump() || request.command == IPVS_CMD_GET_SERVICE ? UnpackQuery(words.data(), table.strings())
                                                                               : UnpackRequest(words.data(), table.strings());
  EXPECT_SAME(again.command, request.command, "command");
  EXPECT_SAME(again.service.has_value(), request.service.has_value(), "service presence");
  EXPECT_SAME(again.destination.has_value(), request.destination.has_value(), "destination presence");
  if (request.service) ExpectSameService(*again.service, *request.service);
  if (request.destination) ExpectSameDestination(*again.destination, *request.destination);
  (void)strings;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A few short strings from the front of the input, then the words.
  std::vector<std::string> strings;
  size_t at = 0;
  if (size > 0) {
    const size_t count = data[at++] % 4;
    for (size_t i = 0; i < count && at < size; ++i) {
      const size_t wanted = data[at++] % 20;
      const size_t len = std::min<size_t>(wanted, size - at);
      strings.emplace_back(reinterpret_cast<const char*>(data + at), strnlen(reinterpret_cast<const char*>(data + at), len));
      at += len;
    }
  }
  std::vector<uint32_t> words(record::request::kWords, 0);
  std::memcpy(words.data(), data + at, std::min(size - at, words.size() * sizeof(uint32_t)));

  for (auto unpack : {&UnpackRequest, &UnpackQuery}) {
    try {
      CheckRequest(unpack(words.data(), strings), strings);
    } catch (const RecordError&) {
      // refused: the only way an unpacker may fail
    }
  }

  // A request record encoded straight to its message, or through the Request.
  {
    const std::vector<uint8_t> prefix = {1, 2, 3, 4};  // whatever the batch holds already
    std::vector<uint8_t> via_request = prefix;
    std::vector<uint8_t> direct = prefix;
    int via_failed = 0;  // 1: a RecordError, 2: an encoder error
    int direct_failed = 0;
    try {
      AppendRequestMessage(via_request, UnpackRequest(words.data(), strings), 0x20, 7, NLM_F_REQUEST | NLM_F_ACK);
    } catch (const RecordError&) {
      via_failed = 1;
    } catch (const std::runtime_error&) {
      via_failed = 2;
    }
    try {
      AppendRequestRecord(direct, words.data(), strings, 0x20, 7, NLM_F_REQUEST | NLM_F_ACK);
    } catch (const RecordError&) {
      direct_failed = 1;
    } catch (const std::runtime_error&) {
      direct_failed = 2;
    }
    EXPECT_SAME(via_failed, direct_failed, "whether a request record is refused, and why");
    if (direct_failed) EXPECT_SAME(direct, prefix, "the batch after a refused request record");
    else EXPECT_SAME(via_request, direct, "the message encoded straight from a request record");
  }

  // Reply records: every word pattern whose string indexes resolve round-trips.
  const uint32_t* service_words = words.data() + record::request::kService;
  try {
    Service s = UnpackService(service_words, strings);
    StringTable table;
    std::vector<uint32_t> packed(record::service::kWords, 0);
    PackService(s, 0, table, packed.data());
    ExpectSameService(UnpackService(packed.data(), table.strings()), s);
  } catch (const RecordError&) {
  }
  try {
    Destination d = UnpackDestination(words.data() + record::request::kDestination);
    std::vector<uint32_t> packed(record::destination::kWords, 0);
    PackDestination(d, packed.data());
    ExpectSameDestination(UnpackDestination(packed.data()), d);
  } catch (const RecordError&) {
  }

  // The whole input as the attributes of a GET_DEST reply.
  std::vector<uint8_t> reply(NLMSG_HDRLEN + GENL_HDRLEN + NLMSG_ALIGN(size));
  auto* hdr = reinterpret_cast<nlmsghdr*>(reply.data());
  hdr->nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + GENL_HDRLEN + size);
  if (size > 0) std::memcpy(reply.data() + NLMSG_HDRLEN + GENL_HDRLEN, data, size);
  std::vector<uint32_t> via_struct(record::destination::kWords, 0);
  std::vector<uint32_t> direct(record::destination::kWords, 0);
  bool struct_failed = false;
  bool direct_failed = false;
  try {
    PackDestination(DecodeDestination(hdr), via_struct.data());
  } catch (const std::runtime_error&) {
    struct_failed = true;
  }
  try {
    DecodeDestinationRecord(hdr, direct.data());
  } catch (const std::runtime_error&) {
    direct_failed = true;
  }
  EXPECT_SAME(struct_failed, direct_failed, "whether a destination reply is refused");
  if (!struct_failed) EXPECT_SAME(via_struct, direct, "the destination record decoded straight from the reply");
  return 0;
}
