// The packed records services and destinations cross the JS boundary in, both ways: a
// request (a batch, or a single call as a batch of one) is a command word followed by one
// service record and one destination record; replies (listTable, GET) are service and
// destination records. Each record is a run of u32 words in host order: word 0 says which
// fields are present (bit n for field n), then the fields in the order listed here. The layout
// is written only here: the addon exports it when it loads (ExportRecordLayout) and
// lib/records.ts reads offsets, bits and sizes from that export.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ipvs {

// X(name as TypeScript sees it, width in words). Addresses are 16 bytes (union nf_inet_addr)
// stored as they are in memory; strings are indexes into a list sent beside the records; each
// u64 counter is two words, low then high, so the layout does not depend on byte order.
#define IPVS_SERVICE_RECORD_FIELDS(X)                                                                   \
  X(af, 1) X(protocol, 1) X(address, 4) X(port, 1) X(fwmark, 1) X(scheduler, 1) X(flags, 1)            \
  X(flagsMask, 1) X(timeout, 1) X(netmask, 1) X(peName, 1) X(destinationCount, 1) X(stats, 20)

#define IPVS_DESTINATION_RECORD_FIELDS(X)                                                               \
  X(address, 4) X(port, 1) X(forward, 1) X(weight, 1) X(upperThreshold, 1) X(lowerThreshold, 1) X(af, 1) \
  X(tunnelType, 1) X(tunnelPort, 1) X(tunnelFlags, 1) X(activeConnections, 1) X(inactiveConnections, 1)  \
  X(persistentConnections, 1) X(stats, 20)

// The ten counters of a stats field, in order.
#define IPVS_STATS_COUNTERS(X)                                                                          \
  X(connections) X(packetsIn) X(packetsOut) X(bytesIn) X(bytesOut) X(connectionRate) X(packetRateIn)   \
  X(packetRateOut) X(byteRateIn) X(byteRateOut)

namespace record {

template <size_t N>
constexpr uint32_t OffsetOf(const uint32_t (&widths)[N], size_t field) {
  uint32_t offset = 1;  // word 0: the present bits
  for (size_t i = 0; i < field; ++i) offset += widths[i];
  return offset;
}

#define IPVS_RECORD_ENUM(name, width) name,
#define IPVS_RECORD_WIDTH(name, width) width,
#define IPVS_RECORD_NAME(name, width) #name,

namespace service {
enum Field : uint32_t { IPVS_SERVICE_RECORD_FIELDS(IPVS_RECORD_ENUM) kFieldCount };
constexpr uint32_t kWidths[] = {IPVS_SERVICE_RECORD_FIELDS(IPVS_RECORD_WIDTH)};
constexpr const char* kNames[] = {IPVS_SERVICE_RECORD_FIELDS(IPVS_RECORD_NAME)};
constexpr uint32_t At(Field f) { return OffsetOf(kWidths, f); }
constexpr uint32_t Bit(Field f) { return 1u << f; }
constexpr uint32_t kWords = OffsetOf(kWidths, kFieldCount);
}  // namespace service

namespace destination {
enum Field : uint32_t { IPVS_DESTINATION_RECORD_FIELDS(IPVS_RECORD_ENUM) kFieldCount };
constexpr uint32_t kWidths[] = {IPVS_DESTINATION_RECORD_FIELDS(IPVS_RECORD_WIDTH)};
constexpr const char* kNames[] = {IPVS_DESTINATION_RECORD_FIELDS(IPVS_RECORD_NAME)};
constexpr uint32_t At(Field f) { return OffsetOf(kWidths, f); }
constexpr uint32_t Bit(Field f) { return 1u << f; }
constexpr uint32_t kWords = OffsetOf(kWidths, kFieldCount);
}  // namespace destination

#undef IPVS_RECORD_ENUM
#undef IPVS_RECORD_WIDTH
#undef IPVS_RECORD_NAME

// A request: the command, then a service record and a destination record. A record whose
// present word is 0 is not part of the request (FLUSH has neither, a service command no
// destination).
namespace request {
constexpr uint32_t kCommand = 0;
constexpr uint32_t kService = 1;
constexpr uint32_t kDestination = kService + service::kWords;
constexpr uint32_t kWords = kDestination + destination::kWords;
}  // namespace request

constexpr uint32_t kStatsCounters = 10;
static_assert(service::kWidths[service::stats] == 2 * kStatsCounters, "stats are ten u64 counters");
static_assert(destination::kWidths[destination::stats] == 2 * kStatsCounters, "stats are ten u64 counters");
static_assert(service::kFieldCount <= 32 && destination::kFieldCount <= 32, "one present bit per field");

}  // namespace record
}  // namespace ipvs
