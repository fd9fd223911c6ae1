#include "conn_parser.h"

#include <arpa/inet.h>

#include <algorithm>

namespace ipvs::conn {

namespace {

// Hex digit value, or -1. A table keeps the per-character cost to one load.
struct HexTable {
  int8_t value[256];
  constexpr HexTable() : value() {
    for (int i = 0; i < 256; ++i) value[i] = -1;
    for (int i = 0; i < 10; ++i) value['0' + i] = static_cast<int8_t>(i);
    for (int i = 0; i < 6; ++i) {
      value['a' + i] = static_cast<int8_t>(10 + i);
      value['A' + i] = static_cast<int8_t>(10 + i);
    }
  }
};
constexpr HexTable kHex;

inline int HexValue(char c) { return kHex.value[static_cast<unsigned char>(c)]; }

// Cursor over one line; tokens are separated by runs of spaces.
class Cursor {
 public:
  explicit Cursor(std::string_view line) : p_(line.data()), end_(line.data() + line.size()) {}

  std::string_view Token() {
    while (p_ < end_ && *p_ == ' ') ++p_;
    const char* start = p_;
    while (p_ < end_ && *p_ != ' ') ++p_;
    return std::string_view(start, static_cast<size_t>(p_ - start));
  }
  bool AtEnd() const { return p_ == end_; }
  // What follows the current position, without the one separating space.
  std::string_view RestAfterSpace() const {
    return p_ < end_ ? std::string_view(p_ + 1, static_cast<size_t>(end_ - p_ - 1)) : std::string_view();
  }
  bool OnlySpacesLeft() const {
    for (const char* q = p_; q < end_; ++q) {
      if (*q != ' ') return false;
    }
    return true;
  }
  void SkipToEnd() { p_ = end_; }

 private:
  const char* p_;
  const char* end_;
};

bool ParseHex16(std::string_view token, uint16_t* out) {
  if (token.empty() || token.size() > 4) return false;
  unsigned value = 0;
  for (char c : token) {
    int digit = HexValue(c);
    if (digit < 0) return false;
    value = (value << 4) | static_cast<unsigned>(digit);
  }
  *out = static_cast<uint16_t>(value);
  return true;
}

bool ParseDecimal32(std::string_view token, uint32_t* out) {
  if (token.empty() || token.size() > 10) return false;
  uint64_t value = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(value);
  return true;
}

// "%08X" of a host-order IPv4 address, or %pI6: "xxxx:xxxx:...:xxxx" (39 characters).
bool ParseKernelAddress(std::string_view token, Address* out) {
  if (token.size() == 8) {
    out->family = 4;
    for (int i = 0; i < 4; ++i) {
      int high = HexValue(token[2 * i]);
      int low = HexValue(token[2 * i + 1]);
      if ((high | low) < 0) return false;
      out->bytes[i] = static_cast<uint8_t>((high << 4) | low);
    }
    std::memset(out->bytes + 4, 0, 12);
    return true;
  }
  if (token.size() == 39) {
    out->family = 6;
    for (int group = 0; group < 8; ++group) {
      const char* g = token.data() + group * 5;
      if (group < 7 && g[4] != ':') return false;
      int d0 = HexValue(g[0]), d1 = HexValue(g[1]), d2 = HexValue(g[2]), d3 = HexValue(g[3]);
      if ((d0 | d1 | d2 | d3) < 0) return false;
      out->bytes[2 * group] = static_cast<uint8_t>((d0 << 4) | d1);
      out->bytes[2 * group + 1] = static_cast<uint8_t>((d2 << 4) | d3);
    }
    return true;
  }
  return false;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Protocol and state names are short printable words.
bool IsWord(std::string_view token, size_t max_length) {
  if (token.empty() || token.size() > max_length) return false;
  for (char c : token) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) return false;
  }
  return true;
}

constexpr size_t kMaxProtocolName = 16;
constexpr size_t kMaxStateName = 32;
constexpr size_t kMaxPeName = 16;  // IP_VS_PENAME_MAXLEN

void AppendHexGroup(std::string* out, unsigned value) {
  static const char kDigits[] = "0123456789abcdef";
  bool started = false;
  for (int shift = 12; shift >= 0; shift -= 4) {
    unsigned digit = (value >> shift) & 0xf;
    if (digit != 0 || started || shift == 0) {
      out->push_back(kDigits[digit]);
      started = true;
    }
  }
}

void AppendDecimal(std::string* out, unsigned value) {
  char buffer[12];
  int n = 0;
  do {
    buffer[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) out->push_back(buffer[--n]);
}

void AppendIpv4(std::string* out, const uint8_t* bytes) {
  for (int i = 0; i < 4; ++i) {
    if (i > 0) out->push_back('.');
    AppendDecimal(out, bytes[i]);
  }
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string LowerCase(std::string_view text) {
  std::string result(text);
  for (char& c : result) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return result;
}

}  // namespace

// RFC 5952 text, as lib/address.ts decodeAddress writes it: lower-case hex, the longest run
// (first on ties) of two or more zero groups becomes "::", IPv4-mapped ones end dotted.
std::string FormatAddress(const Address& address) {
  std::string out;
  if (address.family == 4) {
    out.reserve(15);
    AppendIpv4(&out, address.bytes);
    return out;
  }
  unsigned groups[8];
  for (int i = 0; i < 8; ++i) groups[i] = (address.bytes[2 * i] << 8) | address.bytes[2 * i + 1];
  if (groups[0] == 0 && groups[1] == 0 && groups[2] == 0 && groups[3] == 0 && groups[4] == 0 && groups[5] == 0xffff) {
    out = "::ffff:";
    AppendIpv4(&out, address.bytes + 12);
    return out;
  }
  int best_start = -1, best_length = 0;
  for (int i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > best_length) {
      best_start = i;
      best_length = j - i;
    }
    i = j;
  }
  if (best_length < 2) best_start = -1;
  out.reserve(39);
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      out += "::";
      i += best_length - 1;
      continue;
    }
    if (i > 0 && !(best_start >= 0 && i == best_start + best_length)) out.push_back(':');
    AppendHexGroup(&out, groups[i]);
  }
  return out;
}

bool ParseAddressText(const std::string& text, Address* out) {
  Address result;
  if (inet_pton(AF_INET, text.c_str(), result.bytes) == 1) {
    result.family = 4;
  } else if (inet_pton(AF_INET6, text.c_str(), result.bytes) == 1) {
    result.family = 6;
  } else {
    return false;
  }
  *out = result;
  return true;
}

namespace {

// After the state: "EXPIRES[ PENAME PEDATA]" or, in the sync table, "ORIGIN EXPIRES".
bool ParseTail(Cursor& cursor, ConnectionRecord* out) {
  std::string_view next = cursor.Token();
  if (next.empty()) return false;
  if (!IsDigit(next[0])) {
    if (next == "LOCAL") {
      out->origin = Origin::kLocal;
    } else if (next == "SYNC") {
      out->origin = Origin::kSync;
    } else {
      return false;
    }
    if (!ParseDecimal32(cursor.Token(), &out->expires)) return false;
    out->has_pe = false;
    return cursor.OnlySpacesLeft();
  }
  out->origin = Origin::kNone;
  if (!ParseDecimal32(next, &out->expires)) return false;
  if (cursor.AtEnd()) {
    out->has_pe = false;
    return true;
  }
  // " <pe name> <pe data>": the data runs to the end of the line.
  std::string_view tail = cursor.RestAfterSpace();
  size_t space = tail.find(' ');
  out->pe_name = tail.substr(0, space);
  if (!IsWord(out->pe_name, kMaxPeName)) return false;
  out->pe_data = space == std::string_view::npos ? std::string_view() : tail.substr(space + 1);
  out->has_pe = true;
  return true;
}

[[maybe_unused]] std::string_view TrimRight(std::string_view text) {
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

// Eight-byte and four-byte hex fields decoded a word at a time. Each byte of the word is
// checked against the three ranges of hex digits with no carry between bytes (every byte is
// masked to 7 bits first; the top bit of the original rejects bytes >= 0x80).
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr uint64_t kOnes = 0x0101010101010101ull;

// 0x80 in each byte whose value v has low < v < high (0 <= low <= 127, high <= 128).
inline uint64_t BytesBetween(uint64_t x, uint64_t low, uint64_t high) {
  const uint64_t seven = x & (kOnes * 127);
  return ((kOnes * (127 + high) - seven) & ~x & (seven + kOnes * (127 - low))) & (kOnes * 128);
}

// The nibble values of eight hex digits, one per byte; false if any byte is not a hex digit.
inline bool HexNibbles(uint64_t x, uint64_t used_bytes_mask, uint64_t* nibbles) {
  const uint64_t hex = BytesBetween(x, 0x2f, 0x3a) | BytesBetween(x, 0x40, 0x47) | BytesBetween(x, 0x60, 0x67);
  if ((hex & used_bytes_mask) != (kOnes * 128 & used_bytes_mask)) return false;
  *nibbles = (x & (kOnes * 0x0f)) + ((x & (kOnes * 0x40)) >> 6) * 9;
  return true;
}

// Eight hex digits ("%08X" of a host-order IPv4 address) to its four bytes in network order.
inline bool ParseHexIpv4(const char* text, Address* out) {
  uint64_t x, nibbles;
  std::memcpy(&x, text, 8);
  if (!HexNibbles(x, ~0ull, &nibbles)) return false;
  uint64_t pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff00ff00ff00ffull;  // digit pairs in even bytes
  pairs = (pairs | (pairs >> 8)) & 0x0000ffff0000ffffull;
  pairs = (pairs | (pairs >> 16)) & 0xffffffffull;
  const uint32_t bytes = static_cast<uint32_t>(pairs);
  out->family = 4;
  std::memcpy(out->bytes, &bytes, 4);
  std::memset(out->bytes + 4, 0, 12);
  return true;
}

// Four hex digits ("%04X" of a port).
inline bool ParseHexPort(const char* text, uint16_t* out) {
  uint32_t word;
  std::memcpy(&word, text, 4);
  uint64_t nibbles;
  if (!HexNibbles(word, 0xffffffffull, &nibbles)) return false;
  const uint64_t pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff00ffull;
  *out = static_cast<uint16_t>(((pairs & 0xff) << 8) | (pairs >> 16));
  return true;
}

// Bit i set for each byte i of `mask` that holds 0x80 (a BytesBetween result).
inline unsigned ByteBits(uint64_t mask) { return static_cast<unsigned>(((mask >> 7) * 0x0102040810204080ull) >> 56); }

inline uint64_t Load64(const char* text) {
  uint64_t x;
  std::memcpy(&x, text, 8);
  return x;
}

inline uint64_t Load32(const char* text) {
  uint32_t x;
  std::memcpy(&x, text, 4);
  return x;
}

// The length of a word (bytes 0x21-0x7e) padded with spaces to `width` bytes, given a bit per
// byte of each kind; 0 if the field is anything else (empty, a space inside, another byte).
inline size_t PaddedWordLength(unsigned word, unsigned space, unsigned width) {
  const unsigned all = (1u << width) - 1;
  word &= all;
  if (((word | space) & all) != all || (word & (word + 1)) != 0) return 0;
  return static_cast<size_t>(__builtin_ctz(~word));
}

// A word of at most `width` (<= 3) bytes at `text`, padded with spaces: text[width] is a space.
inline bool ParsePaddedWord3(const char* text, unsigned width, std::string_view* out) {
  const uint64_t x = Load32(text);
  const size_t length = PaddedWordLength(ByteBits(BytesBetween(x, 0x20, 0x7f)), ByteBits(BytesBetween(x, 0x1f, 0x21)), width);
  *out = std::string_view(text, length);
  return length > 0;
}

// The state column: a word of at most eleven bytes padded with spaces (text[11] is a space).
inline bool ParseStateColumn(const char* text, std::string_view* out) {
  const uint64_t low = Load64(text), high = Load32(text + 8);
  const unsigned word = ByteBits(BytesBetween(low, 0x20, 0x7f)) | (ByteBits(BytesBetween(high, 0x20, 0x7f)) << 8);
  const unsigned space = ByteBits(BytesBetween(low, 0x1f, 0x21)) | (ByteBits(BytesBetween(high, 0x1f, 0x21)) << 8);
  const size_t length = PaddedWordLength(word, space, 11);
  *out = std::string_view(text, length);
  return length > 0;
}

// " %7u": a space, then the expiry right-aligned in seven columns.
inline bool ParseSevenColumns(const char* text, uint32_t* out) {
  const uint64_t x = Load64(text);
  const unsigned digits = (ByteBits(BytesBetween(x, 0x2f, 0x3a)) >> 1) & 0x7f;
  const unsigned spaces = (ByteBits(BytesBetween(x, 0x1f, 0x21)) >> 1) & 0x7f;
  if ((digits | spaces) != 0x7f || digits == 0 || (spaces & (spaces + 1)) != 0) return false;
  uint32_t value = 0;
  for (int i = 1 + __builtin_ctz(digits); i <= 7; ++i) value = value * 10 + static_cast<uint32_t>(text[i] - '0');
  *out = value;
  return true;
}
#else
inline bool ParseHexIpv4(const char* text, Address* out) { return ParseKernelAddress(std::string_view(text, 8), out); }
inline bool ParseHexPort(const char* text, uint16_t* out) { return ParseHex16(std::string_view(text, 4), out); }

inline bool ParsePaddedWord3(const char* text, unsigned width, std::string_view* out) {
  *out = TrimRight(std::string_view(text, width));
  return IsWord(*out, width);
}

inline bool ParseStateColumn(const char* text, std::string_view* out) {
  *out = TrimRight(std::string_view(text, 11));
  return IsWord(*out, 11);
}

inline bool ParseSevenColumns(const char* text, uint32_t* out) {
  const char* field = text + 1;
  size_t i = 0;
  while (i < 7 && field[i] == ' ') ++i;
  if (i == 7) return false;
  uint32_t value = 0;
  for (; i < 7 && IsDigit(field[i]); ++i) value = value * 10 + static_cast<uint32_t>(field[i] - '0');
  if (i != 7) return false;
  *out = value;
  return true;
}
#endif

constexpr size_t kStateColumn = 46;
constexpr size_t kTailColumn = 57;
static_assert(kCommonLineBytes == kTailColumn + 8, "the common line ends with the expiry in seven columns");

// The common shape: IPv4 client and destination, a protocol name of at most three letters
// and a state of at most eleven, so printf put every field at a known column and no
// tokenizing is needed. Reads the columns up to the state of a line longer than kTailColumn;
// none of the bytes it accepts is a newline.
bool ParseFixedHead(const char* c, ConnectionRecord* out) {
  if (c[0] == ' ' || c[kStateColumn] == ' ') return false;
  if ((c[3] != ' ') | (c[12] != ' ') | (c[17] != ' ') | (c[26] != ' ') | (c[31] != ' ') | (c[40] != ' ') |
      (c[45] != ' ') | (c[57] != ' ')) {
    return false;
  }
  if (!ParsePaddedWord3(c, 3, &out->protocol)) return false;
  if (!ParseHexIpv4(c + 4, &out->client) || !ParseHexIpv4(c + 18, &out->virtual_address) ||
      !ParseHexIpv4(c + 32, &out->destination) || !ParseHexPort(c + 13, &out->client_port) ||
      !ParseHexPort(c + 27, &out->virtual_port) || !ParseHexPort(c + 41, &out->destination_port)) {
    return false;
  }
  return ParseStateColumn(c + kStateColumn, &out->state) && !IsDigit(out->state[0]);
}

// The usual tail, " %7u" and nothing after it: the expiry right-aligned in seven columns.
bool ParseSevenColumnExpiry(const char* text, ConnectionRecord* out) {
  if (!ParseSevenColumns(text, &out->expires)) return false;
  out->origin = Origin::kNone;
  out->has_pe = false;
  return true;
}

bool ParseFixedColumns(std::string_view line, ConnectionRecord* out) {
  if (line.size() <= kTailColumn || !ParseFixedHead(line.data(), out)) return false;
  if (line.size() == kCommonLineBytes && ParseSevenColumnExpiry(line.data() + kTailColumn, out)) return true;
  Cursor cursor(line.substr(kTailColumn));
  return ParseTail(cursor, out);
}

}  // namespace

bool ParseConnectionLineTokenized(std::string_view line, ConnectionRecord* out) {
  Cursor cursor(line);
  out->protocol = cursor.Token();
  if (!IsWord(out->protocol, kMaxProtocolName)) return false;
  if (!ParseKernelAddress(cursor.Token(), &out->client)) return false;
  if (!ParseHex16(cursor.Token(), &out->client_port)) return false;
  if (!ParseKernelAddress(cursor.Token(), &out->virtual_address)) return false;
  if (out->virtual_address.family != out->client.family) return false;
  if (!ParseHex16(cursor.Token(), &out->virtual_port)) return false;
  if (!ParseKernelAddress(cursor.Token(), &out->destination)) return false;
  if (!ParseHex16(cursor.Token(), &out->destination_port)) return false;
  out->state = cursor.Token();
  if (!IsWord(out->state, kMaxStateName) || IsDigit(out->state[0])) return false;
  return ParseTail(cursor, out);
}

bool ParseConnectionLine(std::string_view line, ConnectionRecord* out) {
  return ParseFixedColumns(line, out) || ParseConnectionLineTokenized(line, out);
}

bool ParseCommonLine(const char* line, ConnectionRecord* out) {
  return ParseFixedHead(line, out) && ParseSevenColumnExpiry(line + kTailColumn, out);
}

void LineScanner::NoteMalformed(std::string_view line) {
  ++stats_.malformed;
  if (stats_.first_malformed_line == 0) {
    stats_.first_malformed_line = stats_.lines;
    stats_.first_malformed_text = std::string(line.substr(0, kMaxReportedLineBytes));
  }
}

// ----- Filters and aggregation ---------------------------------------------------------

bool ConnectionFilter::Matches(const ConnectionRecord& record) const {
  if (!states.empty()) {
    bool found = false;
    for (const std::string& state : states) {
      if (record.state == state) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  if (!service_protocol.empty() && !EqualsIgnoringCase(record.protocol, service_protocol)) return false;
  if (service_port >= 0 && record.virtual_port != service_port) return false;
  if (has_service_address && !(record.virtual_address == service_address)) return false;
  return true;
}

ConnectionCounter::ConnectionCounter(GroupBy group_by, ConnectionFilter filter)
    : group_by_(group_by), filter_(std::move(filter)) {}

uint64_t ConnectionCounter::Hash(const Key& key) {
  uint32_t head;
  uint64_t low, high;
  std::memcpy(&head, &key, 4);
  std::memcpy(&low, key.bytes, 8);
  std::memcpy(&high, key.bytes + 8, 8);
  uint64_t x = low ^ (high * 0x9e3779b97f4a7c15ull) ^ (static_cast<uint64_t>(head) << 29);
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ull;
  x ^= x >> 32;
  return x * 0x9e3779b97f4a7c15ull;  // the slot is taken from the top bits
}

void ConnectionCounter::Grow() {
  std::vector<Slot> old = std::move(slots_);
  const size_t size = old.empty() ? 256 : old.size() * 2;
  slots_.assign(size, Slot{});
  shift_ = 64 - __builtin_ctzll(size);
  const size_t mask = size - 1;
  for (const Slot& slot : old) {
    if (slot.count == 0) continue;
    size_t i = static_cast<size_t>(Hash(slot.key) >> shift_);
    while (slots_[i].count != 0) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

uint8_t ConnectionCounter::NameIndex(std::string_view name) {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return static_cast<uint8_t>(i);
  }
  // Names are short words; a table with more than 255 distinct ones is not a kernel's.
  if (names_.size() >= 255) return 255;
  names_.emplace_back(name);
  return static_cast<uint8_t>(names_.size() - 1);
}

void ConnectionCounter::Add(const ConnectionRecord& record) {
  if (!filter_.Matches(record)) return;
  ++matched_;
  Key key;
  std::memset(&key, 0, sizeof(key));
  switch (group_by_) {
    case GroupBy::kClient:
      key.family = record.client.family;
      std::memcpy(key.bytes, record.client.bytes, 16);
      break;
    case GroupBy::kDestination:
      key.family = record.destination.family;
      key.port = record.destination_port;
      std::memcpy(key.bytes, record.destination.bytes, 16);
      break;
    case GroupBy::kService:
      key.family = record.virtual_address.family;
      key.port = record.virtual_port;
      key.name = NameIndex(record.protocol);
      std::memcpy(key.bytes, record.virtual_address.bytes, 16);
      break;
    case GroupBy::kState:
      key.name = NameIndex(record.state);
      break;
  }
  if (2 * (keys_ + 1) > slots_.size()) Grow();
  const size_t mask = slots_.size() - 1;
  for (size_t i = static_cast<size_t>(Hash(key) >> shift_);; i = (i + 1) & mask) {
    Slot& slot = slots_[i];
    if (slot.count == 0) {
      slot.key = key;
      slot.count = 1;
      ++keys_;
      return;
    }
    if (slot.key == key) {
      ++slot.count;
      return;
    }
  }
}

std::string ConnectionCounter::KeyText(const Key& key) const {
  Address address;
  address.family = key.family;
  std::memcpy(address.bytes, key.bytes, 16);
  std::string text;
  switch (group_by_) {
    case GroupBy::kClient:
      return FormatAddress(address);
    case GroupBy::kDestination:
    case GroupBy::kService: {
      if (group_by_ == GroupBy::kService) {
        text = LowerCase(key.name < names_.size() ? names_[key.name] : "?");
        text.push_back(' ');
      }
      if (address.family == 6) text.push_back('[');
      text += FormatAddress(address);
      if (address.family == 6) text.push_back(']');
      text.push_back(':');
      AppendDecimal(&text, key.port);
      return text;
    }
    case GroupBy::kState:
      return key.name < names_.size() ? names_[key.name] : "?";
  }
  return text;
}

std::vector<CountEntry> ConnectionCounter::Result(uint64_t min_count, size_t top) const {
  std::vector<std::pair<const Key*, uint64_t>> selected;
  selected.reserve(keys_);
  for (const Slot& slot : slots_) {
    if (slot.count != 0 && slot.count >= min_count) selected.emplace_back(&slot.key, slot.count);
  }
  std::vector<CountEntry> result;
  result.reserve(selected.size());
  for (const auto& [key, count] : selected) result.push_back({KeyText(*key), count});
  auto order = [](const CountEntry& a, const CountEntry& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  };
  if (top > 0 && top < result.size()) {
    std::partial_sort(result.begin(), result.begin() + static_cast<std::ptrdiff_t>(top), result.end(), order);
    result.resize(top);
  } else {
    std::sort(result.begin(), result.end(), order);
  }
  return result;
}

// ----- Columnar table -------------------------------------------------------------------

uint32_t StringTable::Intern(std::string_view text) {
  if (strings_.size() <= kFew) {
    for (size_t i = 0; i < strings_.size(); ++i) {
      if (strings_[i] == text) return static_cast<uint32_t>(i);
    }
    strings_.emplace_back(text);
    if (strings_.size() > kFew) {
      for (size_t i = 0; i < strings_.size(); ++i) index_.emplace(strings_[i], static_cast<uint32_t>(i));
    }
    return static_cast<uint32_t>(strings_.size() - 1);
  }
  auto [it, inserted] = index_.try_emplace(std::string(text), static_cast<uint32_t>(strings_.size()));
  if (inserted) strings_.emplace_back(text);
  return it->second;
}

void ConnectionColumns::Reserve(size_t rows) {
  protocol.reserve(rows);
  client_family.reserve(rows);
  client_address.reserve(rows * 16);
  client_port.reserve(rows);
  virtual_address.reserve(rows);
  virtual_port.reserve(rows);
  destination_address.reserve(rows);
  destination_port.reserve(rows);
  state.reserve(rows);
  origin.reserve(rows);
  expires.reserve(rows);
  pe.reserve(rows);
}

void ConnectionColumns::ShrinkToFit() {
  protocol.shrink_to_fit();
  client_family.shrink_to_fit();
  client_address.shrink_to_fit();
  client_port.shrink_to_fit();
  virtual_address.shrink_to_fit();
  virtual_port.shrink_to_fit();
  destination_address.shrink_to_fit();
  destination_port.shrink_to_fit();
  state.shrink_to_fit();
  origin.shrink_to_fit();
  expires.shrink_to_fit();
  pe.shrink_to_fit();
}

size_t ColumnarBuilder::AddressHash::operator()(const Address& a) const {
  uint64_t hash = 1469598103934665603ull ^ a.family;
  for (uint8_t b : a.bytes) {
    hash ^= b;
    hash *= 1099511628211ull;
  }
  return static_cast<size_t>(hash);
}

uint32_t ColumnarBuilder::EndpointIndex(const Address& address) {
  for (const auto& [known, index] : few_endpoints_) {
    if (known == address) return index;
  }
  if (few_endpoints_.size() < kFewEndpoints) {
    const uint32_t index = columns_->addresses.Intern(FormatAddress(address));
    few_endpoints_.emplace_back(address, index);
    return index;
  }
  auto it = endpoint_index_.find(address);
  if (it != endpoint_index_.end()) return it->second;
  uint32_t index = columns_->addresses.Intern(FormatAddress(address));
  endpoint_index_.emplace(address, index);
  return index;
}

void ColumnarBuilder::Add(const ConnectionRecord& record) {
  ConnectionColumns& c = *columns_;
  c.protocol.push_back(static_cast<uint8_t>(std::min<uint32_t>(c.protocols.Intern(record.protocol), 255)));
  c.client_family.push_back(record.client.family);
  c.client_address.insert(c.client_address.end(), record.client.bytes, record.client.bytes + 16);
  c.client_port.push_back(record.client_port);
  c.virtual_address.push_back(EndpointIndex(record.virtual_address));
  c.virtual_port.push_back(record.virtual_port);
  c.destination_address.push_back(EndpointIndex(record.destination));
  c.destination_port.push_back(record.destination_port);
  c.state.push_back(static_cast<uint16_t>(std::min<uint32_t>(c.states.Intern(record.state), 65535)));
  c.origin.push_back(static_cast<uint8_t>(record.origin));
  c.expires.push_back(record.expires);
  if (record.has_pe) {
    c.pe_names.emplace_back(record.pe_name);
    c.pe_data.emplace_back(record.pe_data);
    c.pe.push_back(static_cast<uint32_t>(c.pe_names.size()));
  } else {
    c.pe.push_back(0);
  }
}

}  // namespace ipvs::conn
