// The IPVS message codec: typed C++ records <-> generic-netlink attributes, encoder and
// decoder in pairs. Fields are optional so the same records describe requests (only what the
// caller set is sent) and replies (only what the kernel sent is filled in). No policy here:
// defaults and validation belong to TypeScript.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ip_vs_constants.h"

struct nl_msg;
struct nlattr;
struct nlmsghdr;

namespace ipvs {

using Address = std::array<uint8_t, 16>;  // union nf_inet_addr: IPv4 in the first 4 bytes

struct Stats {
  uint64_t conns = 0, inpkts = 0, outpkts = 0, inbytes = 0, outbytes = 0;
  uint64_t cps = 0, inpps = 0, outpps = 0, inbps = 0, outbps = 0;
};

struct Service {
  std::optional<uint16_t> af;
  std::optional<uint16_t> protocol;
  std::optional<Address> address;
  std::optional<uint16_t> port;  // host order; network order on the wire
  std::optional<uint32_t> fwmark;
  std::optional<std::string> scheduler;
  std::optional<uint32_t> flags;
  std::optional<uint32_t> flags_mask;  // sent with flags; the kernel ignores bits outside it
  std::optional<uint32_t> timeout;
  std::optional<uint32_t> netmask;  // IPv4: the mask in host order; IPv6: a prefix length
  std::optional<std::string> pe_name;
  std::optional<Stats> stats;  // replies only
};

struct Destination {
  std::optional<Address> address;
  std::optional<uint16_t> port;
  std::optional<uint32_t> forward;
  std::optional<uint32_t> weight;
  std::optional<uint32_t> upper_threshold;
  std::optional<uint32_t> lower_threshold;
  std::optional<uint16_t> af;
  std::optional<uint8_t> tunnel_type;
  std::optional<uint16_t> tunnel_port;
  std::optional<uint16_t> tunnel_flags;
  // Replies only.
  std::optional<uint32_t> active_conns;
  std::optional<uint32_t> inactive_conns;
  std::optional<uint32_t> persistent_conns;
  std::optional<Stats> stats;
};

struct Daemon {
  std::optional<uint32_t> state;
  std::optional<std::string> interface;
  std::optional<uint32_t> sync_id;
  std::optional<uint16_t> max_length;
  std::optional<std::array<uint8_t, 4>> group4;
  std::optional<Address> group6;
  std::optional<uint16_t> port;
  std::optional<uint8_t> ttl;
};

struct Timeouts {
  std::optional<uint32_t> tcp, tcp_fin, udp;
};

struct Info {
  uint32_t version = 0;
  uint32_t conn_tab_size = 0;
};

// One request to the IPVS family: a command and whichever parts it carries.
struct Request {
  Command command = IPVS_CMD_UNSPEC;
  std::optional<Service> service;
  std::optional<Destination> destination;
  std::optional<Daemon> daemon;
  Timeouts timeouts;

  // GET_DEST and GET_DAEMON are dump-only; GET_SERVICE dumps when no service is named.
  bool IsDump() const;
};

// The key GET_DEST needs: the kernel names a service by fwmark, or by protocol, address and port.
Service KeyOf(const Service& service);

// Encoding: appends the request's attributes to a message whose genl header is already set.
void EncodeRequest(nl_msg* msg, const Request& request);
// Appends a whole message (netlink and genl headers, attributes, NLMSG_ALIGN padding) to `out`,
// without allocating a message: how a batch encodes its requests back to back.
void AppendRequestMessage(std::vector<uint8_t>& out, const Request& request, uint16_t family, uint32_t seq,
                          uint16_t flags);
// Frames the message that starts at `out[start]`, whose attributes are written after room left
// for its headers: writes the netlink and genl headers and pads it to NLMSG_ALIGN.
void FrameRequestMessage(std::vector<uint8_t>& out, size_t start, uint8_t command, uint16_t family, uint32_t seq,
                         uint16_t flags);

// Decoding: each takes a reply message (its genl payload starts the attribute stream).
// Throws std::runtime_error on a malformed reply.
Service DecodeService(const nlmsghdr* reply);
Destination DecodeDestination(const nlmsghdr* reply);
// The same destination written straight into a packed record (record_layout.h) of
// record::destination::kWords zeroed words: what PackDestination(DecodeDestination(reply))
// writes, without the struct in between (a listing decodes one per real server).
void DecodeDestinationRecord(const nlmsghdr* reply, uint32_t* record);
Daemon DecodeDaemon(const nlmsghdr* reply);
Timeouts DecodeTimeouts(const nlmsghdr* reply);
Info DecodeInfo(const nlmsghdr* reply);

}  // namespace ipvs
