#include "records.h"

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>

#include <cstring>
#include <iterator>

#include "attr_writer.h"

namespace ipvs {
namespace {

namespace svc = record::service;
namespace dst = record::destination;

template <typename Field>
bool Has(const uint32_t* record, Field field) {
  return (record[0] >> field) & 1u;
}

constexpr uint32_t AllBits(uint32_t field_count) { return field_count >= 32 ? ~0u : (1u << field_count) - 1; }

// A present bit beyond the layout's fields would make a record "present" with nothing in it.
void CheckKnownBits(uint32_t present, uint32_t field_count, const char* kind) {
  if (present & ~AllBits(field_count)) throw RecordError(std::string(kind) + " record has unknown present bits");
}

template <typename T>
T Narrow(uint32_t word, const char* what) {
  if (word > static_cast<uint32_t>(static_cast<T>(~T{0}))) throw RecordError(std::string(what) + " out of range");
  return static_cast<T>(word);
}

template <typename T>
void Put(uint32_t* record, uint32_t at, uint32_t bit, const std::optional<T>& value) {
  if (!value) return;
  record[0] |= bit;
  record[at] = static_cast<uint32_t>(*value);
}

void PutAddress(uint32_t* record, uint32_t at, uint32_t bit, const std::optional<Address>& value) {
  if (!value) return;
  record[0] |= bit;
  std::memcpy(&record[at], value->data(), value->size());
}

Address GetAddress(const uint32_t* record, uint32_t at) {
  Address a;
  std::memcpy(a.data(), &record[at], a.size());
  return a;
}

uint64_t* Counters(Stats& s, size_t i) {
  uint64_t* counters[] = {&s.conns, &s.inpkts, &s.outpkts, &s.inbytes, &s.outbytes,
                          &s.cps,   &s.inpps,  &s.outpps,  &s.inbps,   &s.outbps};
  static_assert(std::size(counters) == record::kStatsCounters, "one pointer per counter");
  return counters[i];
}

void PutStats(uint32_t* record, uint32_t at, uint32_t bit, const std::optional<Stats>& value) {
  if (!value) return;
  record[0] |= bit;
  Stats s = *value;
  for (size_t i = 0; i < record::kStatsCounters; ++i) {
    const uint64_t v = *Counters(s, i);
    record[at + 2 * i] = static_cast<uint32_t>(v);
    record[at + 2 * i + 1] = static_cast<uint32_t>(v >> 32);
  }
}

Stats GetStats(const uint32_t* record, uint32_t at) {
  Stats s;
  for (size_t i = 0; i < record::kStatsCounters; ++i)
    *Counters(s, i) = static_cast<uint64_t>(record[at + 2 * i]) | static_cast<uint64_t>(record[at + 2 * i + 1]) << 32;
  return s;
}

const std::string& StringAt(const std::vector<std::string>& strings, uint32_t index, const char* what) {
  if (index >= strings.size()) throw RecordError(std::string(what) + " is not a string index");
  return strings[index];
}

}  // namespace

uint32_t StringTable::IndexOf(const std::string& text) {
  size_t index = 0;
  while (index < strings_.size() && strings_[index] != text) ++index;  // a handful of names
  if (index == strings_.size()) strings_.push_back(text);
  return static_cast<uint32_t>(index);
}

void PackService(const Service& s, uint32_t destination_count, StringTable& strings, uint32_t* r) {
  Put(r, svc::At(svc::af), svc::Bit(svc::af), s.af);
  Put(r, svc::At(svc::protocol), svc::Bit(svc::protocol), s.protocol);
  PutAddress(r, svc::At(svc::address), svc::Bit(svc::address), s.address);
  Put(r, svc::At(svc::port), svc::Bit(svc::port), s.port);
  Put(r, svc::At(svc::fwmark), svc::Bit(svc::fwmark), s.fwmark);
  if (s.scheduler) Put(r, svc::At(svc::scheduler), svc::Bit(svc::scheduler), std::optional<uint32_t>(strings.IndexOf(*s.scheduler)));
  Put(r, svc::At(svc::flags), svc::Bit(svc::flags), s.flags);
  Put(r, svc::At(svc::flagsMask), svc::Bit(svc::flagsMask), s.flags_mask);
  Put(r, svc::At(svc::timeout), svc::Bit(svc::timeout), s.timeout);
  Put(r, svc::At(svc::netmask), svc::Bit(svc::netmask), s.netmask);
  if (s.pe_name) Put(r, svc::At(svc::peName), svc::Bit(svc::peName), std::optional<uint32_t>(strings.IndexOf(*s.pe_name)));
  Put(r, svc::At(svc::destinationCount), svc::Bit(svc::destinationCount), std::optional<uint32_t>(destination_count));
  PutStats(r, svc::At(svc::stats), svc::Bit(svc::stats), s.stats);
}

Service UnpackService(const uint32_t* r, const std::vector<std::string>& strings) {
  CheckKnownBits(r[0], svc::kFieldCount, "service");
  Service s;
  if (Has(r, svc::af)) s.af = Narrow<uint16_t>(r[svc::At(svc::af)], "service af");
  if (Has(r, svc::protocol)) s.protocol = Narrow<uint16_t>(r[svc::At(svc::protocol)], "service protocol");
  if (Has(r, svc::address)) s.address = GetAddress(r, svc::At(svc::address));
  if (Has(r, svc::port)) s.port = Narrow<uint16_t>(r[svc::At(svc::port)], "service port");
  if (Has(r, svc::fwmark)) s.fwmark = r[svc::At(svc::fwmark)];
  if (Has(r, svc::scheduler)) s.scheduler = StringAt(strings, r[svc::At(svc::scheduler)], "scheduler");
  if (Has(r, svc::flags)) s.flags = r[svc::At(svc::flags)];
  if (Has(r, svc::flagsMask)) s.flags_mask = r[svc::At(svc::flagsMask)];
  if (Has(r, svc::timeout)) s.timeout = r[svc::At(svc::timeout)];
  if (Has(r, svc::netmask)) s.netmask = r[svc::At(svc::netmask)];
  if (Has(r, svc::peName)) s.pe_name = StringAt(strings, r[svc::At(svc::peName)], "persistence engine");
  if (Has(r, svc::stats)) s.stats = GetStats(r, svc::At(svc::stats));
  return s;
}

void PackDestination(const Destination& d, uint32_t* r) {
  PutAddress(r, dst::At(dst::address), dst::Bit(dst::address), d.address);
  Put(r, dst::At(dst::port), dst::Bit(dst::port), d.port);
  Put(r, dst::At(dst::forward), dst::Bit(dst::forward), d.forward);
  Put(r, dst::At(dst::weight), dst::Bit(dst::weight), d.weight);
  Put(r, dst::At(dst::upperThreshold), dst::Bit(dst::upperThreshold), d.upper_threshold);
  Put(r, dst::At(dst::lowerThreshold), dst::Bit(dst::lowerThreshold), d.lower_threshold);
  Put(r, dst::At(dst::af), dst::Bit(dst::af), d.af);
  Put(r, dst::At(dst::tunnelType), dst::Bit(dst::tunnelType), d.tunnel_type);
  Put(r, dst::At(dst::tunnelPort), dst::Bit(dst::tunnelPort), d.tunnel_port);
  Put(r, dst::At(dst::tunnelFlags), dst::Bit(dst::tunnelFlags), d.tunnel_flags);
  Put(r, dst::At(dst::activeConnections), dst::Bit(dst::activeConnections), d.active_conns);
  Put(r, dst::At(dst::inactiveConnections), dst::Bit(dst::inactiveConnections), d.inactive_conns);
  Put(r, dst::At(dst::persistentConnections), dst::Bit(dst::persistentConnections), d.persistent_conns);
  PutStats(r, dst::At(dst::stats), dst::Bit(dst::stats), d.stats);
}

Destination UnpackDestination(const uint32_t* r) {
  CheckKnownBits(r[0], dst::kFieldCount, "destination");
  Destination d;
  if (Has(r, dst::address)) d.address = GetAddress(r, dst::At(dst::address));
  if (Has(r, dst::port)) d.port = Narrow<uint16_t>(r[dst::At(dst::port)], "destination port");
  if (Has(r, dst::forward)) d.forward = r[dst::At(dst::forward)];
  if (Has(r, dst::weight)) d.weight = r[dst::At(dst::weight)];
  if (Has(r, dst::upperThreshold)) d.upper_threshold = r[dst::At(dst::upperThreshold)];
  if (Has(r, dst::lowerThreshold)) d.lower_threshold = r[dst::At(dst::lowerThreshold)];
  if (Has(r, dst::af)) d.af = Narrow<uint16_t>(r[dst::At(dst::af)], "destination af");
  if (Has(r, dst::tunnelType)) d.tunnel_type = Narrow<uint8_t>(r[dst::At(dst::tunnelType)], "tunnel type");
  if (Has(r, dst::tunnelPort)) d.tunnel_port = Narrow<uint16_t>(r[dst::At(dst::tunnelPort)], "tunnel port");
  if (Has(r, dst::tunnelFlags)) d.tunnel_flags = Narrow<uint16_t>(r[dst::At(dst::tunnelFlags)], "tunnel flags");
  if (Has(r, dst::activeConnections)) d.active_conns = r[dst::At(dst::activeConnections)];
  if (Has(r, dst::inactiveConnections)) d.inactive_conns = r[dst::At(dst::inactiveConnections)];
  if (Has(r, dst::persistentConnections)) d.persistent_conns = r[dst::At(dst::persistentConnections)];
  if (Has(r, dst::stats)) d.stats = GetStats(r, dst::At(dst::stats));
  return d;
}

void PackRequest(const Request& request, StringTable& strings, uint32_t* r) {
  r[record::request::kCommand] = request.command;
  if (request.service) {
    PackService(*request.service, 0, strings, r + record::request::kService);
    r[record::request::kService] &= ~(svc::Bit(svc::stats) | svc::Bit(svc::destinationCount));
  }
  if (request.destination) {
    PackDestination(*request.destination, r + record::request::kDestination);
    r[record::request::kDestination] &= ~(dst::Bit(dst::stats) | dst::Bit(dst::activeConnections) |
                                          dst::Bit(dst::inactiveConnections) | dst::Bit(dst::persistentConnections));
  }
}

namespace {
Request UnpackAny(const uint32_t* r, const std::vector<std::string>& strings) {
  const uint32_t command = r[record::request::kCommand];
  if (command == IPVS_CMD_UNSPEC || command > IPVS_CMD_MAX) throw RecordError("not an IPVS command");
  Request request;
  request.command = static_cast<Command>(command);
  // Counters and counts are read-back fields: a request never carries them.
  constexpr uint32_t kServiceReadBack = svc::Bit(svc::stats) | svc::Bit(svc::destinationCount);
  constexpr uint32_t kDestinationReadBack = dst::Bit(dst::stats) | dst::Bit(dst::activeConnections) |
                                            dst::Bit(dst::inactiveConnections) | dst::Bit(dst::persistentConnections);
  if (r[record::request::kService] & kServiceReadBack) throw RecordError("a request's service carries read-back fields");
  if (r[record::request::kDestination] & kDestinationReadBack)
    throw RecordError("a request's destination carries read-back fields");
  if (r[record::request::kService] != 0) request.service = UnpackService(r + record::request::kService, strings);
  if (r[record::request::kDestination] != 0) request.destination = UnpackDestination(r + record::request::kDestination);
  return request;
}
}  // namespace

Request UnpackRequest(const uint32_t* r, const std::vector<std::string>& strings) {
  Request request = UnpackAny(r, strings);
  switch (request.command) {
    case IPVS_CMD_NEW_SERVICE: case IPVS_CMD_SET_SERVICE: case IPVS_CMD_DEL_SERVICE:
    case IPVS_CMD_NEW_DEST: case IPVS_CMD_SET_DEST: case IPVS_CMD_DEL_DEST:
    case IPVS_CMD_ZERO: case IPVS_CMD_FLUSH:
      return request;
    default:
      throw RecordError("a request record carries a service or destination change, zero or flush");
  }
}

Request UnpackQuery(const uint32_t* r, const std::vector<std::string>& strings) {
  Request request = UnpackAny(r, strings);
  if (request.command == IPVS_CMD_GET_SERVICE) return request;
  if (request.command == IPVS_CMD_GET_DEST && request.service) return request;
  throw RecordError("a query record is GET_SERVICE, or GET_DEST with a service");
}

namespace {

// The checks UnpackService and UnpackDestination make, in the same order, on a record that is
// encoded without being unpacked.
void CheckServiceRecord(const uint32_t* r, const std::vector<std::string>& strings) {
  CheckKnownBits(r[0], svc::kFieldCount, "service");
  if (Has(r, svc::af)) Narrow<uint16_t>(r[svc::At(svc::af)], "service af");
  if (Has(r, svc::protocol)) Narrow<uint16_t>(r[svc::At(svc::protocol)], "service protocol");
  if (Has(r, svc::port)) Narrow<uint16_t>(r[svc::At(svc::port)], "service port");
  if (Has(r, svc::scheduler)) StringAt(strings, r[svc::At(svc::scheduler)], "scheduler");
  if (Has(r, svc::peName)) StringAt(strings, r[svc::At(svc::peName)], "persistence engine");
}

void CheckDestinationRecord(const uint32_t* r) {
  CheckKnownBits(r[0], dst::kFieldCount, "destination");
  if (Has(r, dst::port)) Narrow<uint16_t>(r[dst::At(dst::port)], "destination port");
  if (Has(r, dst::af)) Narrow<uint16_t>(r[dst::At(dst::af)], "destination af");
  if (Has(r, dst::tunnelType)) Narrow<uint8_t>(r[dst::At(dst::tunnelType)], "tunnel type");
  if (Has(r, dst::tunnelPort)) Narrow<uint16_t>(r[dst::At(dst::tunnelPort)], "tunnel port");
  if (Has(r, dst::tunnelFlags)) Narrow<uint16_t>(r[dst::At(dst::tunnelFlags)], "tunnel flags");
}

// Attribute by attribute what EncodeService and EncodeDestination (ipvs_codec.cc) write for
// the unpacked record, in their order and widths.
void EncodeServiceRecord(AttrWriter& w, const uint32_t* r, const std::vector<std::string>& strings) {
  const size_t nest = w.BeginNest(IPVS_CMD_ATTR_SERVICE);
  if (Has(r, svc::af)) w.PutValue(IPVS_SVC_ATTR_AF, static_cast<uint16_t>(r[svc::At(svc::af)]));
  if (Has(r, svc::protocol)) w.PutValue(IPVS_SVC_ATTR_PROTOCOL, static_cast<uint16_t>(r[svc::At(svc::protocol)]));
  if (Has(r, svc::address)) w.Put(IPVS_SVC_ATTR_ADDR, &r[svc::At(svc::address)], sizeof(Address));
  if (Has(r, svc::port)) w.PutValue(IPVS_SVC_ATTR_PORT, htons(static_cast<uint16_t>(r[svc::At(svc::port)])));
  if (Has(r, svc::fwmark)) w.PutValue(IPVS_SVC_ATTR_FWMARK, r[svc::At(svc::fwmark)]);
  if (Has(r, svc::scheduler)) w.PutString(IPVS_SVC_ATTR_SCHED_NAME, strings[r[svc::At(svc::scheduler)]]);
  if (Has(r, svc::peName)) w.PutString(IPVS_SVC_ATTR_PE_NAME, strings[r[svc::At(svc::peName)]]);
  if (Has(r, svc::flags)) {
    const uint32_t flags[2] = {r[svc::At(svc::flags)], Has(r, svc::flagsMask) ? r[svc::At(svc::flagsMask)] : ~0u};
    w.Put(IPVS_SVC_ATTR_FLAGS, flags, sizeof(flags));
  }
  if (Has(r, svc::timeout)) w.PutValue(IPVS_SVC_ATTR_TIMEOUT, r[svc::At(svc::timeout)]);
  if (Has(r, svc::netmask)) {
    // The kernel keeps an IPv4 mask in network order and an IPv6 prefix length as is.
    const bool inet = !Has(r, svc::af) || r[svc::At(svc::af)] == AF_INET;
    const uint32_t mask = r[svc::At(svc::netmask)];
    w.PutValue(IPVS_SVC_ATTR_NETMASK, inet ? htonl(mask) : mask);
  }
  w.EndNest(nest);
}

void EncodeDestinationRecord(AttrWriter& w, const uint32_t* r) {
  const size_t nest = w.BeginNest(IPVS_CMD_ATTR_DEST);
  if (Has(r, dst::address)) w.Put(IPVS_DEST_ATTR_ADDR, &r[dst::At(dst::address)], sizeof(Address));
  if (Has(r, dst::port)) w.PutValue(IPVS_DEST_ATTR_PORT, htons(static_cast<uint16_t>(r[dst::At(dst::port)])));
  if (Has(r, dst::forward)) w.PutValue(IPVS_DEST_ATTR_FWD_METHOD, r[dst::At(dst::forward)]);
  if (Has(r, dst::weight)) w.PutValue(IPVS_DEST_ATTR_WEIGHT, r[dst::At(dst::weight)]);
  if (Has(r, dst::upperThreshold)) w.PutValue(IPVS_DEST_ATTR_U_THRESH, r[dst::At(dst::upperThreshold)]);
  if (Has(r, dst::lowerThreshold)) w.PutValue(IPVS_DEST_ATTR_L_THRESH, r[dst::At(dst::lowerThreshold)]);
  if (Has(r, dst::af)) w.PutValue(IPVS_DEST_ATTR_ADDR_FAMILY, static_cast<uint16_t>(r[dst::At(dst::af)]));
  if (Has(r, dst::tunnelType)) w.PutValue(IPVS_DEST_ATTR_TUN_TYPE, static_cast<uint8_t>(r[dst::At(dst::tunnelType)]));
  if (Has(r, dst::tunnelPort)) w.PutValue(IPVS_DEST_ATTR_TUN_PORT, htons(static_cast<uint16_t>(r[dst::At(dst::tunnelPort)])));
  if (Has(r, dst::tunnelFlags)) w.PutValue(IPVS_DEST_ATTR_TUN_FLAGS, static_cast<uint16_t>(r[dst::At(dst::tunnelFlags)]));
  w.EndNest(nest);
}

}  // namespace

void AppendRequestRecord(std::vector<uint8_t>& out, const uint32_t* r, const std::vector<std::string>& strings,
                         uint16_t family, uint32_t seq, uint16_t flags) {
  // UnpackRequest's checks first, so a refused record leaves `out` as it was.
  const uint32_t command = r[record::request::kCommand];
  if (command == IPVS_CMD_UNSPEC || command > IPVS_CMD_MAX) throw RecordError("not an IPVS command");
  constexpr uint32_t kServiceReadBack = svc::Bit(svc::stats) | svc::Bit(svc::destinationCount);
  constexpr uint32_t kDestinationReadBack = dst::Bit(dst::stats) | dst::Bit(dst::activeConnections) |
                                            dst::Bit(dst::inactiveConnections) | dst::Bit(dst::persistentConnections);
  const uint32_t* service = r + record::request::kService;
  const uint32_t* destination = r + record::request::kDestination;
  if (service[0] & kServiceReadBack) throw RecordError("a request's service carries read-back fields");
  if (destination[0] & kDestinationReadBack) throw RecordError("a request's destination carries read-back fields");
  if (service[0] != 0) CheckServiceRecord(service, strings);
  if (destination[0] != 0) CheckDestinationRecord(destination);
  switch (command) {
    case IPVS_CMD_NEW_SERVICE: case IPVS_CMD_SET_SERVICE: case IPVS_CMD_DEL_SERVICE:
    case IPVS_CMD_NEW_DEST: case IPVS_CMD_SET_DEST: case IPVS_CMD_DEL_DEST:
    case IPVS_CMD_ZERO: case IPVS_CMD_FLUSH:
      break;
    default:
      throw RecordError("a request record carries a service or destination change, zero or flush");
  }

  const size_t start = out.size();
  try {
    out.resize(start + NLMSG_HDRLEN + GENL_HDRLEN, 0);
    AttrWriter w(out);
    if (service[0] != 0) EncodeServiceRecord(w, service, strings);
    if (destination[0] != 0) EncodeDestinationRecord(w, destination);
    w.Finish();
  } catch (...) {
    out.resize(start);
    throw;
  }
  FrameRequestMessage(out, start, static_cast<uint8_t>(command), family, seq, flags);
}

void PackedTable::AddService(const Service& service, uint32_t destination_count) {
  services.resize(services.size() + record::service::kWords, 0);
  PackService(service, destination_count, strings, services.data() + services.size() - record::service::kWords);
}

void PackedTable::AddDestination(const Destination& destination) {
  destinations.resize(destinations.size() + record::destination::kWords, 0);
  PackDestination(destination, destinations.data() + destinations.size() - record::destination::kWords);
}

}  // namespace ipvs
