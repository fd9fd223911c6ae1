// The kernel's IPVS generic-netlink interface, mirrored from include/uapi/linux/ip_vs.h so the
// build does not depend on the age of the system's kernel headers. Values are kernel ABI.
#pragma once

#include <cstdint>

namespace ipvs {

constexpr const char* kGenlFamilyName = "IPVS";
constexpr uint8_t kGenlVersion = 0x1;

// The older socket-option interface (getsockopt on any AF_INET socket, CAP_NET_ADMIN):
// IP_VS_SO_GET_INFO answers struct ip_vs_getinfo, whose num_services counts the namespace's
// IPv4 services (IPv6 ones, which that interface cannot show, are left out). Generic
// netlink's GET_INFO has no count at all.
constexpr int IP_VS_SO_GET_INFO = 64 + 1024 + 64 + 1;
struct IpVsGetInfo {
  uint32_t version;
  uint32_t size;
  uint32_t num_services;
};

enum Command : uint8_t {
  IPVS_CMD_UNSPEC = 0,
  IPVS_CMD_NEW_SERVICE,
  IPVS_CMD_SET_SERVICE,
  IPVS_CMD_DEL_SERVICE,
  IPVS_CMD_GET_SERVICE,
  IPVS_CMD_NEW_DEST,
  IPVS_CMD_SET_DEST,
  IPVS_CMD_DEL_DEST,
  IPVS_CMD_GET_DEST,
  IPVS_CMD_NEW_DAEMON,
  IPVS_CMD_DEL_DAEMON,
  IPVS_CMD_GET_DAEMON,
  IPVS_CMD_SET_CONFIG,
  IPVS_CMD_GET_CONFIG,
  IPVS_CMD_SET_INFO,
  IPVS_CMD_GET_INFO,
  IPVS_CMD_ZERO,
  IPVS_CMD_FLUSH,
  IPVS_CMD_MAX = IPVS_CMD_FLUSH,
};

enum CommandAttr : uint16_t {
  IPVS_CMD_ATTR_UNSPEC = 0,
  IPVS_CMD_ATTR_SERVICE,
  IPVS_CMD_ATTR_DEST,
  IPVS_CMD_ATTR_DAEMON,
  IPVS_CMD_ATTR_TIMEOUT_TCP,
  IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
  IPVS_CMD_ATTR_TIMEOUT_UDP,
  IPVS_CMD_ATTR_MAX = IPVS_CMD_ATTR_TIMEOUT_UDP,
};

enum ServiceAttr : uint16_t {
  IPVS_SVC_ATTR_UNSPEC = 0,
  IPVS_SVC_ATTR_AF,
  IPVS_SVC_ATTR_PROTOCOL,
  IPVS_SVC_ATTR_ADDR,
  IPVS_SVC_ATTR_PORT,
  IPVS_SVC_ATTR_FWMARK,
  IPVS_SVC_ATTR_SCHED_NAME,
  IPVS_SVC_ATTR_FLAGS,
  IPVS_SVC_ATTR_TIMEOUT,
  IPVS_SVC_ATTR_NETMASK,
  IPVS_SVC_ATTR_STATS,
  IPVS_SVC_ATTR_PE_NAME,
  IPVS_SVC_ATTR_STATS64,
  IPVS_SVC_ATTR_MAX = IPVS_SVC_ATTR_STATS64,
};

enum DestAttr : uint16_t {
  IPVS_DEST_ATTR_UNSPEC = 0,
  IPVS_DEST_ATTR_ADDR,
  IPVS_DEST_ATTR_PORT,
  IPVS_DEST_ATTR_FWD_METHOD,
  IPVS_DEST_ATTR_WEIGHT,
  IPVS_DEST_ATTR_U_THRESH,
  IPVS_DEST_ATTR_L_THRESH,
  IPVS_DEST_ATTR_ACTIVE_CONNS,
  IPVS_DEST_ATTR_INACT_CONNS,
  IPVS_DEST_ATTR_PERSIST_CONNS,
  IPVS_DEST_ATTR_STATS,
  IPVS_DEST_ATTR_ADDR_FAMILY,
  IPVS_DEST_ATTR_STATS64,
  IPVS_DEST_ATTR_TUN_TYPE,
  IPVS_DEST_ATTR_TUN_PORT,
  IPVS_DEST_ATTR_TUN_FLAGS,
  IPVS_DEST_ATTR_MAX = IPVS_DEST_ATTR_TUN_FLAGS,
};

enum DaemonAttr : uint16_t {
  IPVS_DAEMON_ATTR_UNSPEC = 0,
  IPVS_DAEMON_ATTR_STATE,
  IPVS_DAEMON_ATTR_MCAST_IFN,
  IPVS_DAEMON_ATTR_SYNC_ID,
  IPVS_DAEMON_ATTR_SYNC_MAXLEN,
  IPVS_DAEMON_ATTR_MCAST_GROUP,
  IPVS_DAEMON_ATTR_MCAST_GROUP6,
  IPVS_DAEMON_ATTR_MCAST_PORT,
  IPVS_DAEMON_ATTR_MCAST_TTL,
  IPVS_DAEMON_ATTR_MAX = IPVS_DAEMON_ATTR_MCAST_TTL,
};

enum StatsAttr : uint16_t {
  IPVS_STATS_ATTR_UNSPEC = 0,
  IPVS_STATS_ATTR_CONNS,
  IPVS_STATS_ATTR_INPKTS,
  IPVS_STATS_ATTR_OUTPKTS,
  IPVS_STATS_ATTR_INBYTES,
  IPVS_STATS_ATTR_OUTBYTES,
  IPVS_STATS_ATTR_CPS,
  IPVS_STATS_ATTR_INPPS,
  IPVS_STATS_ATTR_OUTPPS,
  IPVS_STATS_ATTR_INBPS,
  IPVS_STATS_ATTR_OUTBPS,
  IPVS_STATS_ATTR_PAD,
  IPVS_STATS_ATTR_MAX = IPVS_STATS_ATTR_PAD,
};

enum InfoAttr : uint16_t {
  IPVS_INFO_ATTR_UNSPEC = 0,
  IPVS_INFO_ATTR_VERSION,
  IPVS_INFO_ATTR_CONN_TAB_SIZE,
  IPVS_INFO_ATTR_MAX = IPVS_INFO_ATTR_CONN_TAB_SIZE,
};

// Lengths include the terminating NUL, as the kernel's nla_policy does.
constexpr size_t IP_VS_SCHEDNAME_MAXLEN = 16;
constexpr size_t IP_VS_PENAME_MAXLEN = 16;
constexpr size_t IP_VS_IFNAME_MAXLEN = 16;

// Service flags, forwarding methods, tunnel types and flags, and daemon states are policy and
// live in TypeScript (lib/constants.ts); the codec passes them through as numbers.

}  // namespace ipvs
