#include "ipvs_codec.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "attr_writer.h"
#include "record_layout.h"

namespace ipvs {
namespace {

struct ServiceFlags {  // struct ip_vs_flags
  uint32_t flags;
  uint32_t mask;
};

// ---- encoding -------------------------------------------------------------------------

void EncodeService(AttrWriter& w, const Service& s) {
  const size_t nest = w.BeginNest(IPVS_CMD_ATTR_SERVICE);
  w.Put(IPVS_SVC_ATTR_AF, s.af);
  w.Put(IPVS_SVC_ATTR_PROTOCOL, s.protocol);
  w.Put(IPVS_SVC_ATTR_ADDR, s.address);
  w.PutBe16(IPVS_SVC_ATTR_PORT, s.port);
  w.Put(IPVS_SVC_ATTR_FWMARK, s.fwmark);
  w.PutString(IPVS_SVC_ATTR_SCHED_NAME, s.scheduler);
  w.PutString(IPVS_SVC_ATTR_PE_NAME, s.pe_name);
  if (s.flags) {
    ServiceFlags flags{*s.flags, s.flags_mask.value_or(~0u)};
    w.Put(IPVS_SVC_ATTR_FLAGS, &flags, sizeof(flags));
  }
  w.Put(IPVS_SVC_ATTR_TIMEOUT, s.timeout);
  if (s.netmask) {
    // The kernel keeps an IPv4 mask in network order and an IPv6 prefix length as is.
    const uint32_t wire = s.af.value_or(AF_INET) == AF_INET ? htonl(*s.netmask) : *s.netmask;
    w.Put(IPVS_SVC_ATTR_NETMASK, &wire, sizeof(wire));
  }
  w.EndNest(nest);
}

void EncodeDestination(AttrWriter& w, const Destination& d) {
  const size_t nest = w.BeginNest(IPVS_CMD_ATTR_DEST);
  w.Put(IPVS_DEST_ATTR_ADDR, d.address);
  w.PutBe16(IPVS_DEST_ATTR_PORT, d.port);
  w.Put(IPVS_DEST_ATTR_FWD_METHOD, d.forward);
  w.Put(IPVS_DEST_ATTR_WEIGHT, d.weight);
  w.Put(IPVS_DEST_ATTR_U_THRESH, d.upper_threshold);
  w.Put(IPVS_DEST_ATTR_L_THRESH, d.lower_threshold);
  w.Put(IPVS_DEST_ATTR_ADDR_FAMILY, d.af);
  w.Put(IPVS_DEST_ATTR_TUN_TYPE, d.tunnel_type);
  w.PutBe16(IPVS_DEST_ATTR_TUN_PORT, d.tunnel_port);
  w.Put(IPVS_DEST_ATTR_TUN_FLAGS, d.tunnel_flags);
  w.EndNest(nest);
}

void EncodeDaemon(AttrWriter& w, const Daemon& d) {
  const size_t nest = w.BeginNest(IPVS_CMD_ATTR_DAEMON);
  w.Put(IPVS_DAEMON_ATTR_STATE, d.state);
  w.PutString(IPVS_DAEMON_ATTR_MCAST_IFN, d.interface);
  w.Put(IPVS_DAEMON_ATTR_SYNC_ID, d.sync_id);
  w.Put(IPVS_DAEMON_ATTR_SYNC_MAXLEN, d.max_length);
  w.Put(IPVS_DAEMON_ATTR_MCAST_GROUP, d.group4);
  w.Put(IPVS_DAEMON_ATTR_MCAST_GROUP6, d.group6);
  w.Put(IPVS_DAEMON_ATTR_MCAST_PORT, d.port);
  w.Put(IPVS_DAEMON_ATTR_MCAST_TTL, d.ttl);
  w.EndNest(nest);
}

void EncodeAttributes(std::vector<uint8_t>& out, const Request& request) {
  AttrWriter w(out);
  if (request.service) EncodeService(w, *request.service);
  if (request.destination) EncodeDestination(w, *request.destination);
  if (request.daemon) EncodeDaemon(w, *request.daemon);
  w.Put(IPVS_CMD_ATTR_TIMEOUT_TCP, request.timeouts.tcp);
  w.Put(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, request.timeouts.tcp_fin);
  w.Put(IPVS_CMD_ATTR_TIMEOUT_UDP, request.timeouts.udp);
  w.Finish();
}

// ---- decoding -------------------------------------------------------------------------

[[noreturn]] void Malformed(const char* what) {
  throw std::runtime_error(std::string("malformed IPVS reply: ") + what);
}

template <typename T>
T Get(const nlattr* a, const char* what) {
  if (a->nla_len < NLA_HDRLEN + sizeof(T)) Malformed(what);
  T value;
  std::memcpy(&value, reinterpret_cast<const uint8_t*>(a) + NLA_HDRLEN, sizeof(T));
  return value;
}

template <size_t N>
std::array<uint8_t, N> GetBytes(const nlattr* a, const char* what) {
  return Get<std::array<uint8_t, N>>(a, what);
}

std::string GetString(const nlattr* a, size_t max_len, const char* what) {
  const char* data = static_cast<const char*>(nla_data(a));
  size_t len = strnlen(data, static_cast<size_t>(nla_len(a)));
  if (len >= max_len) Malformed(what);
  return std::string(data, len);
}

// The attributes in [data, data + len) by type, as libnl's nla_parse() without a policy
// (types above N - 1 skipped, the last of a repeated type kept, the walk stopped at an
// attribute that does not fit), inline: a listing parses three sets per destination, and the
// library call cost more than the rest of the decoding.
template <size_t N>
void ParseAttributes(nlattr* (&tb)[N], const uint8_t* data, int len) {
  std::fill(tb, tb + N, nullptr);
  while (len >= static_cast<int>(NLA_HDRLEN)) {
    auto* a = reinterpret_cast<nlattr*>(const_cast<uint8_t*>(data));
    if (a->nla_len < NLA_HDRLEN || a->nla_len > len) break;
    const unsigned type = a->nla_type & NLA_TYPE_MASK;
    if (type < N) tb[type] = a;
    const int step = NLA_ALIGN(a->nla_len);
    data += step;
    len -= step;
  }
}

template <size_t N>
void ParseNested(nlattr* (&tb)[N], const nlattr* nest) {
  ParseAttributes(tb, reinterpret_cast<const uint8_t*>(nest) + NLA_HDRLEN, static_cast<int>(nest->nla_len) - NLA_HDRLEN);
}

template <size_t N>
void ParseTopLevel(nlattr* (&tb)[N], const nlmsghdr* reply) {
  if (reply->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN) Malformed("attributes");
  ParseAttributes(tb, reinterpret_cast<const uint8_t*>(reply) + NLMSG_HDRLEN + GENL_HDRLEN,
                  static_cast<int>(reply->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN));
}

Stats DecodeStats(const nlattr* nest, bool wide) {
  nlattr* tb[IPVS_STATS_ATTR_MAX + 1];
  ParseNested(tb, nest);
  // STATS carries u32 counters except the byte counters; STATS64 is u64 throughout.
  auto counter = [&](int type, bool always_wide) -> uint64_t {
    if (!tb[type]) return 0;
    return (wide || always_wide) ? Get<uint64_t>(tb[type], "stats counter") : Get<uint32_t>(tb[type], "stats counter");
  };
  Stats s;
  s.conns = counter(IPVS_STATS_ATTR_CONNS, false);
  s.inpkts = counter(IPVS_STATS_ATTR_INPKTS, false);
  s.outpkts = counter(IPVS_STATS_ATTR_OUTPKTS, false);
  s.inbytes = counter(IPVS_STATS_ATTR_INBYTES, true);
  s.outbytes = counter(IPVS_STATS_ATTR_OUTBYTES, true);
  s.cps = counter(IPVS_STATS_ATTR_CPS, false);
  s.inpps = counter(IPVS_STATS_ATTR_INPPS, false);
  s.outpps = counter(IPVS_STATS_ATTR_OUTPPS, false);
  s.inbps = counter(IPVS_STATS_ATTR_INBPS, false);
  s.outbps = counter(IPVS_STATS_ATTR_OUTBPS, false);
  return s;
}

std::optional<Stats> DecodeEitherStats(nlattr* stats64, nlattr* stats32) {
  if (stats64) return DecodeStats(stats64, true);
  if (stats32) return DecodeStats(stats32, false);
  return std::nullopt;
}

const nlattr* RequireNest(const nlmsghdr* reply, int type, const char* what) {
  nlattr* tb[IPVS_CMD_ATTR_MAX + 1];
  ParseTopLevel(tb, reply);
  if (!tb[type]) Malformed(what);
  return tb[type];
}

}  // namespace

bool Request::IsDump() const {
  switch (command) {
    case IPVS_CMD_GET_DEST:
    case IPVS_CMD_GET_DAEMON:
      return true;
    case IPVS_CMD_GET_SERVICE:
      return !service.has_value();
    default:
      return false;
  }
}

Service KeyOf(const Service& service) {
  Service key;
  key.af = service.af;
  if (service.fwmark && *service.fwmark != 0) {
    key.fwmark = service.fwmark;
  } else {
    key.protocol = service.protocol;
    key.address = service.address;
    key.port = service.port;
  }
  return key;
}

void EncodeRequest(nl_msg* msg, const Request& request) {
  std::vector<uint8_t> attributes;
  EncodeAttributes(attributes, request);
  if (!attributes.empty() && nlmsg_append(msg, attributes.data(), attributes.size(), NLMSG_ALIGNTO) < 0)
    throw std::runtime_error("netlink message too large for the request buffer");
}

void AppendRequestMessage(std::vector<uint8_t>& out, const Request& request, uint16_t family, uint32_t seq,
                          uint16_t flags) {
  const size_t start = out.size();
  out.resize(start + NLMSG_HDRLEN + GENL_HDRLEN, 0);
  EncodeAttributes(out, request);
  FrameRequestMessage(out, start, request.command, family, seq, flags);
}

void FrameRequestMessage(std::vector<uint8_t>& out, size_t start, uint8_t command, uint16_t family, uint32_t seq,
                         uint16_t flags) {
  nlmsghdr header{};
  header.nlmsg_len = static_cast<uint32_t>(out.size() - start);
  header.nlmsg_type = family;
  header.nlmsg_flags = flags;
  header.nlmsg_seq = seq;
  std::memcpy(out.data() + start, &header, sizeof(header));
  genlmsghdr genl{};
  genl.cmd = command;
  genl.version = kGenlVersion;
  std::memcpy(out.data() + start + NLMSG_HDRLEN, &genl, sizeof(genl));
  out.resize(start + NLMSG_ALIGN(out.size() - start), 0);
}

Service DecodeService(const nlmsghdr* reply) {
  nlattr* tb[IPVS_SVC_ATTR_MAX + 1];
  ParseNested(tb, RequireNest(reply, IPVS_CMD_ATTR_SERVICE, "service"));
  Service s;
  if (tb[IPVS_SVC_ATTR_AF]) s.af = Get<uint16_t>(tb[IPVS_SVC_ATTR_AF], "service af");
  if (tb[IPVS_SVC_ATTR_PROTOCOL]) s.protocol = Get<uint16_t>(tb[IPVS_SVC_ATTR_PROTOCOL], "service protocol");
  if (tb[IPVS_SVC_ATTR_ADDR]) s.address = GetBytes<16>(tb[IPVS_SVC_ATTR_ADDR], "service address");
  if (tb[IPVS_SVC_ATTR_PORT]) s.port = ntohs(Get<uint16_t>(tb[IPVS_SVC_ATTR_PORT], "service port"));
  if (tb[IPVS_SVC_ATTR_FWMARK]) s.fwmark = Get<uint32_t>(tb[IPVS_SVC_ATTR_FWMARK], "service fwmark");
  if (tb[IPVS_SVC_ATTR_SCHED_NAME])
    s.scheduler = GetString(tb[IPVS_SVC_ATTR_SCHED_NAME], IP_VS_SCHEDNAME_MAXLEN, "scheduler name");
  if (tb[IPVS_SVC_ATTR_PE_NAME]) s.pe_name = GetString(tb[IPVS_SVC_ATTR_PE_NAME], IP_VS_PENAME_MAXLEN, "pe name");
  if (tb[IPVS_SVC_ATTR_FLAGS]) {
    auto flags = Get<ServiceFlags>(tb[IPVS_SVC_ATTR_FLAGS], "service flags");
    s.flags = flags.flags;
    s.flags_mask = flags.mask;
  }
  if (tb[IPVS_SVC_ATTR_TIMEOUT]) s.timeout = Get<uint32_t>(tb[IPVS_SVC_ATTR_TIMEOUT], "service timeout");
  if (tb[IPVS_SVC_ATTR_NETMASK]) {
    uint32_t wire = Get<uint32_t>(tb[IPVS_SVC_ATTR_NETMASK], "service netmask");
    s.netmask = s.af.value_or(AF_INET) == AF_INET ? ntohl(wire) : wire;
  }
  s.stats = DecodeEitherStats(tb[IPVS_SVC_ATTR_STATS64], tb[IPVS_SVC_ATTR_STATS]);
  return s;
}

Destination DecodeDestination(const nlmsghdr* reply) {
  nlattr* tb[IPVS_DEST_ATTR_MAX + 1];
  ParseNested(tb, RequireNest(reply, IPVS_CMD_ATTR_DEST, "destination"));
  Destination d;
  if (tb[IPVS_DEST_ATTR_ADDR]) d.address = GetBytes<16>(tb[IPVS_DEST_ATTR_ADDR], "destination address");
  if (tb[IPVS_DEST_ATTR_PORT]) d.port = ntohs(Get<uint16_t>(tb[IPVS_DEST_ATTR_PORT], "destination port"));
  if (tb[IPVS_DEST_ATTR_FWD_METHOD]) d.forward = Get<uint32_t>(tb[IPVS_DEST_ATTR_FWD_METHOD], "forwarding method");
  if (tb[IPVS_DEST_ATTR_WEIGHT]) d.weight = Get<uint32_t>(tb[IPVS_DEST_ATTR_WEIGHT], "weight");
  if (tb[IPVS_DEST_ATTR_U_THRESH]) d.upper_threshold = Get<uint32_t>(tb[IPVS_DEST_ATTR_U_THRESH], "upper threshold");
  if (tb[IPVS_DEST_ATTR_L_THRESH]) d.lower_threshold = Get<uint32_t>(tb[IPVS_DEST_ATTR_L_THRESH], "lower threshold");
  if (tb[IPVS_DEST_ATTR_ADDR_FAMILY]) d.af = Get<uint16_t>(tb[IPVS_DEST_ATTR_ADDR_FAMILY], "destination family");
  if (tb[IPVS_DEST_ATTR_TUN_TYPE]) d.tunnel_type = Get<uint8_t>(tb[IPVS_DEST_ATTR_TUN_TYPE], "tunnel type");
  if (tb[IPVS_DEST_ATTR_TUN_PORT]) d.tunnel_port = ntohs(Get<uint16_t>(tb[IPVS_DEST_ATTR_TUN_PORT], "tunnel port"));
  if (tb[IPVS_DEST_ATTR_TUN_FLAGS]) d.tunnel_flags = Get<uint16_t>(tb[IPVS_DEST_ATTR_TUN_FLAGS], "tunnel flags");
  if (tb[IPVS_DEST_ATTR_ACTIVE_CONNS]) d.active_conns = Get<uint32_t>(tb[IPVS_DEST_ATTR_ACTIVE_CONNS], "active connections");
  if (tb[IPVS_DEST_ATTR_INACT_CONNS]) d.inactive_conns = Get<uint32_t>(tb[IPVS_DEST_ATTR_INACT_CONNS], "inactive connections");
  if (tb[IPVS_DEST_ATTR_PERSIST_CONNS])
    d.persistent_conns = Get<uint32_t>(tb[IPVS_DEST_ATTR_PERSIST_CONNS], "persistent connections");
  d.stats = DecodeEitherStats(tb[IPVS_DEST_ATTR_STATS64], tb[IPVS_DEST_ATTR_STATS]);
  return d;
}

void DecodeDestinationRecord(const nlmsghdr* reply, uint32_t* r) {
  namespace dst = record::destination;
  nlattr* tb[IPVS_DEST_ATTR_MAX + 1];
  ParseNested(tb, RequireNest(reply, IPVS_CMD_ATTR_DEST, "destination"));
  uint32_t present = 0;
  auto put = [&](dst::Field field, uint32_t value) {
    present |= dst::Bit(field);
    r[dst::At(field)] = value;
  };
  if (tb[IPVS_DEST_ATTR_ADDR]) {
    const auto address = GetBytes<16>(tb[IPVS_DEST_ATTR_ADDR], "destination address");
    present |= dst::Bit(dst::address);
    std::memcpy(&r[dst::At(dst::address)], address.data(), address.size());
  }
  if (tb[IPVS_DEST_ATTR_PORT]) put(dst::port, ntohs(Get<uint16_t>(tb[IPVS_DEST_ATTR_PORT], "destination port")));
  if (tb[IPVS_DEST_ATTR_FWD_METHOD]) put(dst::forward, Get<uint32_t>(tb[IPVS_DEST_ATTR_FWD_METHOD], "forwarding method"));
  if (tb[IPVS_DEST_ATTR_WEIGHT]) put(dst::weight, Get<uint32_t>(tb[IPVS_DEST_ATTR_WEIGHT], "weight"));
  if (tb[IPVS_DEST_ATTR_U_THRESH]) put(dst::upperThreshold, Get<uint32_t>(tb[IPVS_DEST_ATTR_U_THRESH], "upper threshold"));
  if (tb[IPVS_DEST_ATTR_L_THRESH]) put(dst::lowerThreshold, Get<uint32_t>(tb[IPVS_DEST_ATTR_L_THRESH], "lower threshold"));
  if (tb[IPVS_DEST_ATTR_ADDR_FAMILY]) put(dst::af, Get<uint16_t>(tb[IPVS_DEST_ATTR_ADDR_FAMILY], "destination family"));
  if (tb[IPVS_DEST_ATTR_TUN_TYPE]) put(dst::tunnelType, Get<uint8_t>(tb[IPVS_DEST_ATTR_TUN_TYPE], "tunnel type"));
  if (tb[IPVS_DEST_ATTR_TUN_PORT]) put(dst::tunnelPort, ntohs(Get<uint16_t>(tb[IPVS_DEST_ATTR_TUN_PORT], "tunnel port")));
  if (tb[IPVS_DEST_ATTR_TUN_FLAGS]) put(dst::tunnelFlags, Get<uint16_t>(tb[IPVS_DEST_ATTR_TUN_FLAGS], "tunnel flags"));
  if (tb[IPVS_DEST_ATTR_ACTIVE_CONNS]) put(dst::activeConnections, Get<uint32_t>(tb[IPVS_DEST_ATTR_ACTIVE_CONNS], "active connections"));
  if (tb[IPVS_DEST_ATTR_INACT_CONNS]) put(dst::inactiveConnections, Get<uint32_t>(tb[IPVS_DEST_ATTR_INACT_CONNS], "inactive connections"));
  if (tb[IPVS_DEST_ATTR_PERSIST_CONNS])
    put(dst::persistentConnections, Get<uint32_t>(tb[IPVS_DEST_ATTR_PERSIST_CONNS], "persistent connections"));
  const nlattr* stats = tb[IPVS_DEST_ATTR_STATS64] ? tb[IPVS_DEST_ATTR_STATS64] : tb[IPVS_DEST_ATTR_STATS];
  if (stats) {
    const Stats s = DecodeStats(stats, tb[IPVS_DEST_ATTR_STATS64] != nullptr);
    const uint64_t counters[] = {s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes, s.cps, s.inpps, s.outpps, s.inbps, s.outbps};
    static_assert(sizeof(counters) / sizeof(counters[0]) == record::kStatsCounters, "the layout's counter order");
    uint32_t* out = &r[dst::At(dst::stats)];
    for (uint64_t c : counters) {
      *out++ = static_cast<uint32_t>(c);
      *out++ = static_cast<uint32_t>(c >> 32);
    }
    present |= dst::Bit(dst::stats);
  }
  r[0] = present;
}

Daemon DecodeDaemon(const nlmsghdr* reply) {
  nlattr* tb[IPVS_DAEMON_ATTR_MAX + 1];
  ParseNested(tb, RequireNest(reply, IPVS_CMD_ATTR_DAEMON, "daemon"));
  Daemon d;
  if (tb[IPVS_DAEMON_ATTR_STATE]) d.state = Get<uint32_t>(tb[IPVS_DAEMON_ATTR_STATE], "daemon state");
  if (tb[IPVS_DAEMON_ATTR_MCAST_IFN])
    d.interface = GetString(tb[IPVS_DAEMON_ATTR_MCAST_IFN], IP_VS_IFNAME_MAXLEN, "daemon interface");
  if (tb[IPVS_DAEMON_ATTR_SYNC_ID]) d.sync_id = Get<uint32_t>(tb[IPVS_DAEMON_ATTR_SYNC_ID], "sync id");
  if (tb[IPVS_DAEMON_ATTR_SYNC_MAXLEN]) d.max_length = Get<uint16_t>(tb[IPVS_DAEMON_ATTR_SYNC_MAXLEN], "sync max length");
  if (tb[IPVS_DAEMON_ATTR_MCAST_GROUP]) d.group4 = GetBytes<4>(tb[IPVS_DAEMON_ATTR_MCAST_GROUP], "multicast group");
  if (tb[IPVS_DAEMON_ATTR_MCAST_GROUP6]) d.group6 = GetBytes<16>(tb[IPVS_DAEMON_ATTR_MCAST_GROUP6], "multicast group");
  if (tb[IPVS_DAEMON_ATTR_MCAST_PORT]) d.port = Get<uint16_t>(tb[IPVS_DAEMON_ATTR_MCAST_PORT], "multicast port");
  if (tb[IPVS_DAEMON_ATTR_MCAST_TTL]) d.ttl = Get<uint8_t>(tb[IPVS_DAEMON_ATTR_MCAST_TTL], "multicast ttl");
  return d;
}

Timeouts DecodeTimeouts(const nlmsghdr* reply) {
  nlattr* tb[IPVS_CMD_ATTR_MAX + 1];
  ParseTopLevel(tb, reply);
  Timeouts t;
  if (tb[IPVS_CMD_ATTR_TIMEOUT_TCP]) t.tcp = Get<uint32_t>(tb[IPVS_CMD_ATTR_TIMEOUT_TCP], "tcp timeout");
  if (tb[IPVS_CMD_ATTR_TIMEOUT_TCP_FIN]) t.tcp_fin = Get<uint32_t>(tb[IPVS_CMD_ATTR_TIMEOUT_TCP_FIN], "tcp fin timeout");
  if (tb[IPVS_CMD_ATTR_TIMEOUT_UDP]) t.udp = Get<uint32_t>(tb[IPVS_CMD_ATTR_TIMEOUT_UDP], "udp timeout");
  return t;
}

Info DecodeInfo(const nlmsghdr* reply) {
  nlattr* tb[IPVS_INFO_ATTR_MAX + 1];
  ParseTopLevel(tb, reply);
  if (!tb[IPVS_INFO_ATTR_VERSION] || !tb[IPVS_INFO_ATTR_CONN_TAB_SIZE]) Malformed("info");
  return Info{Get<uint32_t>(tb[IPVS_INFO_ATTR_VERSION], "version"),
              Get<uint32_t>(tb[IPVS_INFO_ATTR_CONN_TAB_SIZE], "connection table size")};
}

}  // namespace ipvs
