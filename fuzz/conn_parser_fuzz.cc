// libFuzzer target for the connection-table parser (native/conn_parser.*).
//
// Each input is scanned twice, in chunks of two size sequences (one chosen by the input),
// feeding the columnar builder and every counter. Beyond "no crash, no sanitizer report",
// the two scans must agree (splitting the stream differently must not change what is
// parsed), the fixed-column fast path must agree with the tokenizing parser line by line, and
// the common-line parser (which lets the scanner skip the search for a line's end) must accept
// no newline and agree with the full parser.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <string>
#include <vector>

#include "../native/conn_parser.h"

using namespace ipvs::conn;

namespace {

struct ScanResult {
  ScanStats stats;
  ConnectionColumns columns;
};

// Scans `data` the way TableReader does: a window that keeps the unconsumed tail.
ScanResult ScanInChunks(const uint8_t* data, size_t size, size_t chunk_seed, bool strict) {
  ScanResult result;
  LineScanner scanner;
  scanner.set_strict(strict);
  ColumnarBuilder builder(&result.columns);
  ConnectionFilter filter;
  filter.states = {"ESTABLISHED"};
  ConnectionCounter counters[] = {
      ConnectionCounter(GroupBy::kClient, ConnectionFilter()),
      ConnectionCounter(GroupBy::kDestination, ConnectionFilter()),
      ConnectionCounter(GroupBy::kService, filter),
      ConnectionCounter(GroupBy::kState, ConnectionFilter()),
  };
  auto sink = [&](const ConnectionRecord& record) {
    builder.Add(record);
    for (auto& counter : counters) counter.Add(record);
    FormatAddress(record.client);
    FormatAddress(record.destination);
    return true;
  };

  std::string window;
  size_t offset = 0;
  size_t chunk = chunk_seed;
  while (offset < size) {
    chunk = (chunk * 1103515245u + 12345u) % 97 + 1;  // 1..97 bytes per read
    size_t take = chunk < size - offset ? chunk : size - offset;
    window.append(reinterpret_cast<const char*>(data) + offset, take);
    offset += take;
    size_t used = scanner.Scan(window.data(), window.size(), false, sink);
    window.erase(0, used);
    if (scanner.stopped()) break;
  }
  if (!scanner.stopped()) scanner.Scan(window.data(), window.size(), true, sink);
  for (auto& counter : counters) counter.Result(2, 3);
  result.stats = scanner.stats();
  return result;
}

bool SameRecord(const ConnectionRecord& a, const ConnectionRecord& b) {
  return a.protocol == b.protocol && a.client == b.client && a.client_port == b.client_port &&
         a.virtual_address == b.virtual_address && a.virtual_port == b.virtual_port &&
         a.destination == b.destination && a.destination_port == b.destination_port && a.state == b.state &&
         a.origin == b.origin && a.expires == b.expires && a.has_pe == b.has_pe &&
         (!a.has_pe || (a.pe_name == b.pe_name && a.pe_data == b.pe_data));
}

// The fixed-column fast path must accept exactly the lines the tokenizer accepts, with the
// same fields.
void CheckFastPath(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  while (!text.empty()) {
    size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    ConnectionRecord fast, general;
    bool fast_ok = ParseConnectionLine(line, &fast);
    bool general_ok = ParseConnectionLineTokenized(line, &general);
    if (fast_ok != general_ok || (fast_ok && !SameRecord(fast, general))) std::abort();
    if (newline == std::string_view::npos) break;
    text.remove_prefix(newline + 1);
  }
}

// Wherever the common-line parser accepts kCommonLineBytes, they must hold no newline (the
// scanner then skips the search for the line's end) and parse the same in full.
void CheckCommonLine(const uint8_t* data, size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  for (size_t at = 0; at + kCommonLineBytes <= size; ++at) {
    ConnectionRecord common, full;
    if (!ParseCommonLine(text + at, &common)) continue;
    const std::string_view line(text + at, kCommonLineBytes);
    if (line.find('\n') != std::string_view::npos) std::abort();
    if (!ParseConnectionLine(line, &full) || !SameRecord(common, full)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  CheckFastPath(data + 1, size - 1);
  CheckCommonLine(data + 1, size - 1);
  const size_t seed = data[0];
  const bool strict = (data[0] & 1) != 0;
  ScanResult whole = ScanInChunks(data + 1, size - 1, 0, strict);
  ScanResult chunked = ScanInChunks(data + 1, size - 1, seed, strict);
  // Over-long lines are cut where the window first exceeds the limit, so their reported
  // text may differ; every count and every parsed row must not.
  if (whole.stats.lines != chunked.stats.lines || whole.stats.connections != chunked.stats.connections ||
      whole.stats.malformed != chunked.stats.malformed ||
      whole.stats.first_malformed_line != chunked.stats.first_malformed_line ||
      whole.columns.expires != chunked.columns.expires || whole.columns.client_address != chunked.columns.client_address ||
      whole.columns.pe_data != chunked.columns.pe_data || whole.columns.states.strings() != chunked.columns.states.strings()) {
    std::abort();
  }
  return 0;
}
