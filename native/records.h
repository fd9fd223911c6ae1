// Codec records <-> packed records (record_layout.h), packer and unpacker in pairs. Pure C++,
// no N-API: the addon's workers use them on the thread pool and fuzz/records_fuzz.cc feeds
// them arbitrary words. Unpacking checks what the kernel encoding needs (ranges, string
// indexes, command numbers) and throws RecordError; policy stays in TypeScript.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ipvs_codec.h"
#include "record_layout.h"

namespace ipvs {

class RecordError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The strings records refer to by index (schedulers, persistence engines), deduplicated.
class StringTable {
 public:
  uint32_t IndexOf(const std::string& text);
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::vector<std::string> strings_;
};

// `record` points at record::service::kWords words, zeroed by the caller.
void PackService(const Service& service, uint32_t destination_count, StringTable& strings, uint32_t* record);
Service UnpackService(const uint32_t* record, const std::vector<std::string>& strings);

// `record` points at record::destination::kWords words, zeroed by the caller.
void PackDestination(const Destination& destination, uint32_t* record);
Destination UnpackDestination(const uint32_t* record);

// `record` points at record::request::kWords words. Dump requests are refused: a record is one
// acknowledged change (or a GET of one service, which UnpackQuery takes).
void PackRequest(const Request& request, StringTable& strings, uint32_t* record);
Request UnpackRequest(const uint32_t* record, const std::vector<std::string>& strings);
// A GET_SERVICE (one service, or every service with no service record) or GET_DEST request.
Request UnpackQuery(const uint32_t* record, const std::vector<std::string>& strings);

// Appends the netlink message of a request record to `out`: the bytes
// AppendRequestMessage(out, UnpackRequest(record, strings), ...) appends, with the same checks
// (RecordError) and the same encoder errors (std::runtime_error), without the Request in
// between: a batch encodes one per operation.
void AppendRequestRecord(std::vector<uint8_t>& out, const uint32_t* record, const std::vector<std::string>& strings,
                         uint16_t family, uint32_t seq, uint16_t flags);

// Packed replies: records appended as the kernel's answers are decoded.
struct PackedTable {
  std::vector<uint32_t> services;
  std::vector<uint32_t> destinations;
  StringTable strings;

  void AddService(const Service& service, uint32_t destination_count);
  void AddDestination(const Destination& destination);
};

}  // namespace ipvs
