#include "ipvs_codec.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include <cstring>
#include <stdexcept>

namespace ipvs {
namespace {

struct ServiceFlags {  // struct ip_vs_flags
  uint32_t flags;
  uint32_t mask;
};

// ---- encoding -------------------------------------------------------------------------

void Check(int rc) {
  if (rc < 0) throw std::runtime_error("netlink message too large for the request buffer");
}

void PutU8(nl_msg* msg, int type, const std::optional<uint8_t>& v) {
  if (v) Check(nla_put_u8(msg, type, *v));
}
void PutU16(nl_msg* msg, int type, const std::optional<uint16_t>& v) {
  if (v) Check(nla_put_u16(msg, type, *v));
}
void PutBe16(nl_msg* msg, int type, const std::optional<uint16_t>& v) {
  if (v) Check(nla_put_u16(msg, type, htons(*v)));
}
void PutU32(nl_msg* msg, int type, const std::optional<uint32_t>& v) {
  if (v) Check(nla_put_u32(msg, type, *v));
}
void PutString(nl_msg* msg, int type, const std::optional<std::string>& v) {
  if (v) Check(nla_put_string(msg, type, v->c_str()));
}
template <size_t N>
void PutBytes(nl_msg* msg, int type, const std::optional<std::array<uint8_t, N>>& v) {
  if (v) Check(nla_put(msg, type, N, v->data()));
}

class Nest {
 public:
  Nest(nl_msg* msg, int type) : msg_(msg), attr_(nla_nest_start(msg, type)) {
    if (!attr_) Check(-1);
  }
  ~Nest() { nla_nest_end(msg_, attr_); }

 private:
  nl_msg* msg_;
  nlattr* attr_;
};

void EncodeService(nl_msg* msg, const Service& s) {
  Nest nest(msg, IPVS_CMD_ATTR_SERVICE);
  PutU16(msg, IPVS_SVC_ATTR_AF, s.af);
  PutU16(msg, IPVS_SVC_ATTR_PROTOCOL, s.protocol);
  PutBytes(msg, IPVS_SVC_ATTR_ADDR, s.address);
  PutBe16(msg, IPVS_SVC_ATTR_PORT, s.port);
  PutU32(msg, IPVS_SVC_ATTR_FWMARK, s.fwmark);
  PutString(msg, IPVS_SVC_ATTR_SCHED_NAME, s.scheduler);
  PutString(msg, IPVS_SVC_ATTR_PE_NAME, s.pe_name);
  if (s.flags) {
    ServiceFlags flags{*s.flags, s.flags_mask.value_or(~0u)};
    Check(nla_put(msg, IPVS_SVC_ATTR_FLAGS, sizeof(flags), &flags));
  }
  PutU32(msg, IPVS_SVC_ATTR_TIMEOUT, s.timeout);
  if (s.netmask) {
    // The kernel keeps an IPv4 mask in network order and an IPv6 prefix length as is.
    uint32_t wire = s.af.value_or(AF_INET) == AF_INET ? htonl(*s.netmask) : *s.netmask;
    Check(nla_put_u32(msg, IPVS_SVC_ATTR_NETMASK, wire));
  }
}

void EncodeDestination(nl_msg* msg, const Destination& d) {
  Nest nest(msg, IPVS_CMD_ATTR_DEST);
  PutBytes(msg, IPVS_DEST_ATTR_ADDR, d.address);
  PutBe16(msg, IPVS_DEST_ATTR_PORT, d.port);
  PutU32(msg, IPVS_DEST_ATTR_FWD_METHOD, d.forward);
  PutU32(msg, IPVS_DEST_ATTR_WEIGHT, d.weight);
  PutU32(msg, IPVS_DEST_ATTR_U_THRESH, d.upper_threshold);
  PutU32(msg, IPVS_DEST_ATTR_L_THRESH, d.lower_threshold);
  PutU16(msg, IPVS_DEST_ATTR_ADDR_FAMILY, d.af);
  PutU8(msg, IPVS_DEST_ATTR_TUN_TYPE, d.tunnel_type);
  PutBe16(msg, IPVS_DEST_ATTR_TUN_PORT, d.tunnel_port);
  PutU16(msg, IPVS_DEST_ATTR_TUN_FLAGS, d.tunnel_flags);
}

void EncodeDaemon(nl_msg* msg, const Daemon& d) {
  Nest nest(msg, IPVS_CMD_ATTR_DAEMON);
  PutU32(msg, IPVS_DAEMON_ATTR_STATE, d.state);
  PutString(msg, IPVS_DAEMON_ATTR_MCAST_IFN, d.interface);
  PutU32(msg, IPVS_DAEMON_ATTR_SYNC_ID, d.sync_id);
  PutU16(msg, IPVS_DAEMON_ATTR_SYNC_MAXLEN, d.max_length);
  PutBytes(msg, IPVS_DAEMON_ATTR_MCAST_GROUP, d.group4);
  PutBytes(msg, IPVS_DAEMON_ATTR_MCAST_GROUP6, d.group6);
  PutU16(msg, IPVS_DAEMON_ATTR_MCAST_PORT, d.port);
  PutU8(msg, IPVS_DAEMON_ATTR_MCAST_TTL, d.ttl);
}

// ---- decoding -------------------------------------------------------------------------

[[noreturn]] void Malformed(const char* what) {
  throw std::runtime_error(std::string("malformed IPVS reply: ") + what);
}

template <typename T>
T Get(const nlattr* a, const char* what) {
  if (nla_len(a) < static_cast<int>(sizeof(T))) Malformed(what);
  T value;
  std::memcpy(&value, nla_data(a), sizeof(T));
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

template <size_t N>
void ParseNested(nlattr* (&tb)[N], const nlattr* nest, const char* what) {
  if (nla_parse_nested(tb, N - 1, const_cast<nlattr*>(nest), nullptr) < 0) Malformed(what);
}

template <size_t N>
void ParseTopLevel(nlattr* (&tb)[N], const nlmsghdr* reply) {
  if (genlmsg_parse(const_cast<nlmsghdr*>(reply), 0, tb, N - 1, nullptr) < 0) Malformed("attributes");
}

Stats DecodeStats(const nlattr* nest, bool wide) {
  nlattr* tb[IPVS_STATS_ATTR_MAX + 1];
  ParseNested(tb, nest, "stats");
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

void EncodeRequest(nl_msg* msg, const Request& request) {
  if (request.service) EncodeService(msg, *request.service);
  if (request.destination) EncodeDestination(msg, *request.destination);
  if (request.daemon) EncodeDaemon(msg, *request.daemon);
  PutU32(msg, IPVS_CMD_ATTR_TIMEOUT_TCP, request.timeouts.tcp);
  PutU32(msg, IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, request.timeouts.tcp_fin);
  PutU32(msg, IPVS_CMD_ATTR_TIMEOUT_UDP, request.timeouts.udp);
}

Service DecodeService(const nlmsghdr* reply) {
  nlattr* tb[IPVS_SVC_ATTR_MAX + 1];
  ParseNested(tb, RequireNest(reply, IPVS_CMD_ATTR_SERVICE, "service"), "service");
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
  ParseNested(tb, RequireNest(reply, IPVS_CMD_ATTR_DEST, "destination"), "destination");
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

Daemon DecodeDaemon(const nlmsghdr* reply) {
  nlattr* tb[IPVS_DAEMON_ATTR_MAX + 1];
  ParseNested(tb, RequireNest(reply, IPVS_CMD_ATTR_DAEMON, "daemon"), "daemon");
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
