// libFuzzer target for the netlink codec (native/ipvs_codec.cc), two properties per input:
//  1. the decoders never crash or read out of bounds on arbitrary reply bytes (they may only
//     throw std::runtime_error for a malformed reply);
//  2. every record the fuzzer can describe survives encode -> decode unchanged.
#include <fuzzer/FuzzedDataProvider.h>
#include <linux/genetlink.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "../native/ipvs_codec.h"

using namespace ipvs;

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "round trip changed %s\n", what);
  std::abort();
}

#define EXPECT_SAME(a, b, what) \
  do {                          \
    if (!((a) == (b))) Fail(what); \
  } while (0)

template <typename T>
std::optional<T> Maybe(FuzzedDataProvider& in) {
  if (!in.ConsumeBool()) return std::nullopt;
  return in.ConsumeIntegral<T>();
}

std::optional<std::string> MaybeName(FuzzedDataProvider& in, size_t max_len) {
  if (!in.ConsumeBool()) return std::nullopt;
  std::string s = in.ConsumeRandomLengthString(max_len);
  s = s.substr(0, strnlen(s.c_str(), s.size()));  // names are C strings
  return s;
}

template <size_t N>
std::optional<std::array<uint8_t, N>> MaybeBytes(FuzzedDataProvider& in) {
  if (!in.ConsumeBool()) return std::nullopt;
  std::array<uint8_t, N> out{};
  for (auto& b : out) b = in.ConsumeIntegral<uint8_t>();
  return out;
}

// Decoders on arbitrary bytes, framed as the payload of a generic netlink reply.
void DecodeArbitrary(const uint8_t* data, size_t size) {
  std::vector<uint8_t> buffer(NLMSG_HDRLEN + GENL_HDRLEN + NLMSG_ALIGN(size));
  auto* hdr = reinterpret_cast<nlmsghdr*>(buffer.data());
  hdr->nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + GENL_HDRLEN + size);
  std::memcpy(buffer.data() + NLMSG_HDRLEN + GENL_HDRLEN, data, size);
  try { DecodeService(hdr); } catch (const std::runtime_error&) {}
  try { DecodeDestination(hdr); } catch (const std::runtime_error&) {}
  try { DecodeDaemon(hdr); } catch (const std::runtime_error&) {}
  try { DecodeTimeouts(hdr); } catch (const std::runtime_error&) {}
  try { DecodeInfo(hdr); } catch (const std::runtime_error&) {}
}

void RoundTrip(FuzzedDataProvider& in) {
  Request request;
  request.command = IPVS_CMD_NEW_DEST;
  Service s;
  s.af = in.ConsumeIntegral<uint16_t>();  // every real request names at least the family
  s.protocol = Maybe<uint16_t>(in);
  s.address = MaybeBytes<16>(in);
  s.port = Maybe<uint16_t>(in);
  s.fwmark = Maybe<uint32_t>(in);
  s.scheduler = MaybeName(in, IP_VS_SCHEDNAME_MAXLEN - 1);
  s.flags = Maybe<uint32_t>(in);
  if (s.flags) s.flags_mask = in.ConsumeIntegral<uint32_t>();
  s.timeout = Maybe<uint32_t>(in);
  s.netmask = Maybe<uint32_t>(in);
  s.pe_name = MaybeName(in, IP_VS_PENAME_MAXLEN - 1);
  Destination d;
  d.address = std::array<uint8_t, 16>{};  // and a destination its address
  for (auto& b : *d.address) b = in.ConsumeIntegral<uint8_t>();
  d.port = Maybe<uint16_t>(in);
  d.forward = Maybe<uint32_t>(in);
  d.weight = Maybe<uint32_t>(in);
  d.upper_threshold = Maybe<uint32_t>(in);
  d.lower_threshold = Maybe<uint32_t>(in);
  d.af = Maybe<uint16_t>(in);
  d.tunnel_type = Maybe<uint8_t>(in);
  d.tunnel_port = Maybe<uint16_t>(in);
  d.tunnel_flags = Maybe<uint16_t>(in);
  Daemon m;
  m.state = in.ConsumeIntegral<uint32_t>();  // and a daemon its state
  m.interface = MaybeName(in, IP_VS_IFNAME_MAXLEN - 1);
  m.sync_id = Maybe<uint32_t>(in);
  m.max_length = Maybe<uint16_t>(in);
  m.group4 = MaybeBytes<4>(in);
  m.group6 = MaybeBytes<16>(in);
  m.port = Maybe<uint16_t>(in);
  m.ttl = Maybe<uint8_t>(in);
  request.service = s;
  request.destination = d;
  request.daemon = m;
  request.timeouts = Timeouts{Maybe<uint32_t>(in), Maybe<uint32_t>(in), Maybe<uint32_t>(in)};

  nl_msg* msg = nlmsg_alloc_size(8192);
  genlmsg_put(msg, 0, 0, 0x20, 0, 0, request.command, kGenlVersion);
  EncodeRequest(msg, request);
  const nlmsghdr* hdr = nlmsg_hdr(msg);

  Service s2 = DecodeService(hdr);
  EXPECT_SAME(s2.af, s.af, "service af");
  EXPECT_SAME(s2.protocol, s.protocol, "service protocol");
  EXPECT_SAME(s2.address, s.address, "service address");
  EXPECT_SAME(s2.port, s.port, "service port");
  EXPECT_SAME(s2.fwmark, s.fwmark, "service fwmark");
  EXPECT_SAME(s2.scheduler, s.scheduler, "scheduler");
  EXPECT_SAME(s2.flags, s.flags, "service flags");
  if (s.flags) EXPECT_SAME(s2.flags_mask, s.flags_mask, "service flags mask");
  EXPECT_SAME(s2.timeout, s.timeout, "service timeout");
  EXPECT_SAME(s2.netmask, s.netmask, "netmask");
  EXPECT_SAME(s2.pe_name, s.pe_name, "pe name");

  Destination d2 = DecodeDestination(hdr);
  EXPECT_SAME(d2.address, d.address, "destination address");
  EXPECT_SAME(d2.port, d.port, "destination port");
  EXPECT_SAME(d2.forward, d.forward, "forwarding method");
  EXPECT_SAME(d2.weight, d.weight, "weight");
  EXPECT_SAME(d2.upper_threshold, d.upper_threshold, "upper threshold");
  EXPECT_SAME(d2.lower_threshold, d.lower_threshold, "lower threshold");
  EXPECT_SAME(d2.af, d.af, "destination af");
  EXPECT_SAME(d2.tunnel_type, d.tunnel_type, "tunnel type");
  EXPECT_SAME(d2.tunnel_port, d.tunnel_port, "tunnel port");
  EXPECT_SAME(d2.tunnel_flags, d.tunnel_flags, "tunnel flags");

  Daemon m2 = DecodeDaemon(hdr);
  EXPECT_SAME(m2.state, m.state, "daemon state");
  EXPECT_SAME(m2.interface, m.interface, "daemon interface");
  EXPECT_SAME(m2.sync_id, m.sync_id, "sync id");
  EXPECT_SAME(m2.max_length, m.max_length, "sync max length");
  EXPECT_SAME(m2.group4, m.group4, "multicast group");
  EXPECT_SAME(m2.group6, m.group6, "multicast group6");
  EXPECT_SAME(m2.port, m.port, "multicast port");
  EXPECT_SAME(m2.ttl, m.ttl, "multicast ttl");

  Timeouts t2 = DecodeTimeouts(hdr);
  EXPECT_SAME(t2.tcp, request.timeouts.tcp, "tcp timeout");
  EXPECT_SAME(t2.tcp_fin, request.timeouts.tcp_fin, "tcp fin timeout");
  EXPECT_SAME(t2.udp, request.timeouts.udp, "udp timeout");
  nlmsg_free(msg);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DecodeArbitrary(data, size);
  FuzzedDataProvider in(data, size);
  RoundTrip(in);
  return 0;
}
