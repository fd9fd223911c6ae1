// Parser and aggregators for the kernel's IPVS connection tables, /proc/net/ip_vs_conn and
// /proc/net/ip_vs_conn_sync. Plain C++ with no Node dependency, so it can be fuzzed and
// benchmarked on its own.
//
// Line formats (net/netfilter/ipvs/ip_vs_conn.c):
//   ip_vs_conn:       PRO CLIENT CPORT VIRTUAL VPORT DEST DPORT STATE EXPIRES[ PENAME PEDATA]
//   ip_vs_conn_sync:  PRO CLIENT CPORT VIRTUAL VPORT DEST DPORT STATE ORIGIN EXPIRES
// IPv4 addresses are 8 hex digits (host order), IPv6 ones %pI6 (eight 4-digit groups); the
// destination has its own family. Ports are hex, expires decimal seconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ipvs::conn {

struct Address {
  uint8_t family = 4;        // 4 or 6
  uint8_t bytes[16] = {};    // network order; IPv4 uses the first four bytes

  bool operator==(const Address& other) const {
    return family == other.family && std::memcmp(bytes, other.bytes, 16) == 0;
  }
};

// Dotted quad, or RFC 5952 text for IPv6 (the same as lib/address.ts decodeAddress).
std::string FormatAddress(const Address& address);
// Parses dotted-quad or any textual IPv6 form; false if neither.
bool ParseAddressText(const std::string& text, Address* out);

enum class Origin : uint8_t { kNone = 0, kLocal = 1, kSync = 2 };

// One parsed line. The string views point into the caller's buffer and die with it.
struct ConnectionRecord {
  std::string_view protocol;   // kernel name: TCP, UDP, SCTP, ..., IP_<n>
  Address client;
  uint16_t client_port = 0;
  Address virtual_address;
  uint16_t virtual_port = 0;
  Address destination;
  uint16_t destination_port = 0;
  std::string_view state;
  Origin origin = Origin::kNone;
  uint32_t expires = 0;
  bool has_pe = false;
  std::string_view pe_name;
  std::string_view pe_data;
};

// Parses one line without its newline. Returns false if the line is not a connection line.
// Detects the layout per line: the token after the state is the origin in the sync table
// and the expiry (digits) in the plain one.
bool ParseConnectionLine(std::string_view line, ConnectionRecord* out);
// The general, tokenizing path alone (ParseConnectionLine tries fixed columns first); the
// fuzz target checks that both agree.
bool ParseConnectionLineTokenized(std::string_view line, ConnectionRecord* out);

// The usual line of ip_vs_conn, without its newline: IPv4 endpoints, a protocol of at most
// three letters, a state of at most eleven, the expiry in seven columns and nothing after it.
constexpr size_t kCommonLineBytes = 65;
// Parses the kCommonLineBytes at `line` if they form such a line. True means that none of
// them is a newline and that ParseConnectionLine gives the same record for them.
bool ParseCommonLine(const char* line, ConnectionRecord* out);

// True for the column-header line both files start with.
inline bool IsHeaderLine(std::string_view line) { return line.substr(0, 4) == "Pro "; }

struct ScanStats {
  uint64_t lines = 0;           // every line seen, header included
  uint64_t connections = 0;     // lines parsed as connections
  uint64_t malformed = 0;       // lines that did not parse (truncated ones included)
  uint64_t first_malformed_line = 0;  // 1-based line number, 0 if none
  std::string first_malformed_text;   // at most kMaxReportedLineBytes of it
  bool sync_layout = false;     // the header named an Origin column
};

// Splits a byte stream into lines and parses them. The caller owns the buffer: Scan()
// consumes whole lines and returns how many bytes it used; the unconsumed tail (a partial
// line) must be presented again, followed by more data. Lines longer than kMaxLineBytes are
// malformed and skipped without being buffered.
class LineScanner {
 public:
  static constexpr size_t kMaxLineBytes = 4096;
  static constexpr size_t kMaxReportedLineBytes = 200;

  // sink(const ConnectionRecord&) -> bool: false stops the scan after that line.
  // In strict mode the scan also stops at the first malformed line (see failed()).
  // at_end: no more data will follow, so a final line without '\n' counts as truncated.
  template <typename Sink>
  size_t Scan(const char* data, size_t size, bool at_end, Sink&& sink);

  void set_strict(bool strict) { strict_ = strict; }
  bool failed() const { return strict_ && stats_.malformed > 0; }
  bool stopped() const { return stopped_; }
  const ScanStats& stats() const { return stats_; }

 private:
  void NoteMalformed(std::string_view line);

  ScanStats stats_;
  bool strict_ = false;
  bool stopped_ = false;
  bool skipping_long_line_ = false;
};

template <typename Sink>
size_t LineScanner::Scan(const char* data, size_t size, bool at_end, Sink&& sink) {
  size_t pos = 0;
  stopped_ = false;
  ConnectionRecord record;
  while (pos < size) {
    const char* start = data + pos;
    const size_t available = size - pos;
    // The usual line needs no search for its end: parsing it proves it holds no newline.
    if (available > kCommonLineBytes && start[kCommonLineBytes] == '\n' && !skipping_long_line_ &&
        ParseCommonLine(start, &record)) {
      pos += kCommonLineBytes + 1;
      ++stats_.lines;
      ++stats_.connections;
      if (!sink(static_cast<const ConnectionRecord&>(record))) {
        stopped_ = true;
        return pos;
      }
      continue;
    }
    const void* newline = std::memchr(start, '\n', available);
    if (newline == nullptr) {
      if (skipping_long_line_) return size;  // still inside an over-long line: drop it
      if (available > kMaxLineBytes) {
        ++stats_.lines;
        NoteMalformed(std::string_view(start, kMaxReportedLineBytes));
        skipping_long_line_ = true;
        stopped_ = failed();
        return size;
      }
      if (!at_end) return pos;  // a partial line: present it again with more data
      // The kernel ends every line, so an unterminated last line was cut short.
      ++stats_.lines;
      NoteMalformed(std::string_view(start, available));
      stopped_ = failed();
      return size;
    }
    const size_t length = static_cast<size_t>(static_cast<const char*>(newline) - start);
    pos += length + 1;
    if (skipping_long_line_) {  // the rest of a line already counted as malformed
      skipping_long_line_ = false;
      continue;
    }
    if (length == 0) continue;
    ++stats_.lines;
    const std::string_view line(start, length);
    if (length <= kMaxLineBytes && ParseConnectionLine(line, &record)) {
      ++stats_.connections;
      if (!sink(static_cast<const ConnectionRecord&>(record))) {
        stopped_ = true;
        return pos;
      }
    } else if (IsHeaderLine(line)) {
      stats_.sync_layout = line.find(" Origin ") != std::string_view::npos;
    } else {
      NoteMalformed(line);
      if (failed()) {
        stopped_ = true;
        return pos;
      }
    }
  }
  return pos;
}

// ----- Filters and aggregation ---------------------------------------------------------

struct ConnectionFilter {
  std::vector<std::string> states;     // kernel state names, upper case; empty = any
  std::string service_protocol;        // protocol name, any case; empty = any
  bool has_service_address = false;
  Address service_address;
  int32_t service_port = -1;           // -1 = any

  bool Matches(const ConnectionRecord& record) const;
};

enum class GroupBy { kClient, kDestination, kService, kState };

struct CountEntry {
  std::string key;
  uint64_t count;
};

// Counts filtered connections per key without keeping the connections.
// Keys: client "10.0.0.2" | destination "10.9.0.2:80" / "[fd00::2]:80" |
// service "tcp 10.0.0.1:80" | state "ESTABLISHED".
class ConnectionCounter {
 public:
  ConnectionCounter(GroupBy group_by, ConnectionFilter filter);
  void Add(const ConnectionRecord& record);
  // Keys with count >= min_count, by count descending then key; at most `top` (0 = all).
  std::vector<CountEntry> Result(uint64_t min_count, size_t top) const;
  uint64_t matched() const { return matched_; }

 private:
  struct Key {
    uint8_t family;
    uint8_t name;       // index into names_: protocol (service) or state
    uint16_t port;
    uint8_t bytes[16];
    bool operator==(const Key& o) const {  // word compares: a memcmp call per probe costs more
      uint32_t head, other_head;
      uint64_t low, other_low, high, other_high;
      std::memcpy(&head, this, 4);
      std::memcpy(&other_head, &o, 4);
      std::memcpy(&low, bytes, 8);
      std::memcpy(&other_low, o.bytes, 8);
      std::memcpy(&high, bytes + 8, 8);
      std::memcpy(&other_high, o.bytes + 8, 8);
      return ((head ^ other_head) | (low ^ other_low) | (high ^ other_high)) == 0;
    }
  };
  static_assert(sizeof(Key) == 20, "Key is hashed and compared as raw bytes");
  // Open addressing with linear probing: one table of slots, no node per key, and a hash of
  // three word loads. A slot with count 0 is empty (a key is stored with its first count).
  struct Slot {
    Key key;
    uint64_t count;
  };
  static uint64_t Hash(const Key& key);
  void Grow();
  uint8_t NameIndex(std::string_view name);
  std::string KeyText(const Key& key) const;

  GroupBy group_by_;
  ConnectionFilter filter_;
  std::vector<std::string> names_;   // protocols or states, by group_by_
  std::vector<Slot> slots_;          // a power of two, at most half full
  size_t keys_ = 0;
  int shift_ = 64;                   // 64 - log2(slots_.size())
  uint64_t matched_ = 0;
};

// ----- Columnar table -------------------------------------------------------------------

// Interns short strings (protocols, states, endpoint texts) as dense indexes. A table holds a
// dozen states and a few protocols: the first kFew strings are found by a scan, without hashing.
class StringTable {
 public:
  uint32_t Intern(std::string_view text);
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  static constexpr size_t kFew = 16;
  std::unordered_map<std::string, uint32_t> index_;  // every string, once there are more than kFew
  std::vector<std::string> strings_;
};

// Column-per-field storage. Clients (possibly one per connection) are kept as raw bytes;
// virtual and destination endpoints, which are few, are interned as text.
struct ConnectionColumns {
  std::vector<uint8_t> protocol;            // -> protocols
  std::vector<uint8_t> client_family;       // 4 | 6
  std::vector<uint8_t> client_address;      // 16 bytes per row
  std::vector<uint16_t> client_port;
  std::vector<uint32_t> virtual_address;    // -> addresses
  std::vector<uint16_t> virtual_port;
  std::vector<uint32_t> destination_address;  // -> addresses
  std::vector<uint16_t> destination_port;
  std::vector<uint16_t> state;              // -> states
  std::vector<uint8_t> origin;              // Origin
  std::vector<uint32_t> expires;
  std::vector<uint32_t> pe;                 // 0 = none, else 1 + index into pe_names/pe_data
  StringTable protocols;
  StringTable states;
  StringTable addresses;
  std::vector<std::string> pe_names;
  std::vector<std::string> pe_data;

  size_t size() const { return protocol.size(); }
  void Reserve(size_t rows);
  // Gives back what growth reserved beyond the rows held (a copy per column).
  void ShrinkToFit();
};

class ColumnarBuilder {
 public:
  explicit ColumnarBuilder(ConnectionColumns* columns) : columns_(columns) {}
  void Add(const ConnectionRecord& record);

 private:
  uint32_t EndpointIndex(const Address& address);

  ConnectionColumns* columns_;
  struct AddressHash {
    size_t operator()(const Address& a) const;
  };
  // Virtual services and real servers are few: the first kFewEndpoints are found by a scan.
  static constexpr size_t kFewEndpoints = 16;
  std::vector<std::pair<Address, uint32_t>> few_endpoints_;
  std::unordered_map<Address, uint32_t, AddressHash> endpoint_index_;
};

}  // namespace ipvs::conn
