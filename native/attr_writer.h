// Writes netlink attributes straight into a byte vector (no message allocation per request):
// a batch encodes thousands of requests back to back. The writer keeps its own end and grows
// the vector a message's worth at a time, not once per attribute; Finish() trims it to what
// was written. Shared by the codec (typed records) and the packed-record encoder.
#pragma once

#include <netlink/attr.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <arpa/inet.h>

namespace ipvs {

class AttrWriter {
 public:
  explicit AttrWriter(std::vector<uint8_t>& out) : out_(out), end_(out.size()) {}

  void Put(uint16_t type, const void* data, size_t size) {
    if (size > 0xffff - NLA_HDRLEN) throw std::runtime_error("netlink attribute too large");
    const size_t total = NLA_ALIGN(NLA_HDRLEN + size);
    if (end_ + total > out_.size()) out_.resize(end_ + total + kSlack);
    uint8_t* at = out_.data() + end_;
    nlattr header{static_cast<uint16_t>(NLA_HDRLEN + size), type};
    std::memcpy(at, &header, sizeof(header));
    if (size) std::memcpy(at + NLA_HDRLEN, data, size);
    std::memset(at + NLA_HDRLEN + size, 0, total - NLA_HDRLEN - size);
    end_ += total;
  }
  size_t BeginNest(uint16_t type) {
    const size_t at = end_;
    Put(type | NLA_F_NESTED, nullptr, 0);
    return at;
  }
  void EndNest(size_t at) {
    const size_t len = end_ - at;
    if (len > 0xffff) throw std::runtime_error("netlink attribute too large");
    const uint16_t nla_len = static_cast<uint16_t>(len);
    std::memcpy(out_.data() + at, &nla_len, sizeof(nla_len));
  }
  void Finish() { out_.resize(end_); }

  template <typename T>
  void Put(uint16_t type, const std::optional<T>& v) {
    if (v) Put(type, &*v, sizeof(T));
  }
  template <typename T>
  void PutValue(uint16_t type, T v) {
    Put(type, &v, sizeof(T));
  }
  void PutBe16(uint16_t type, const std::optional<uint16_t>& v) {
    if (v) PutValue(type, htons(*v));
  }
  void PutString(uint16_t type, const std::optional<std::string>& v) {
    if (v) PutString(type, *v);
  }
  void PutString(uint16_t type, const std::string& v) { Put(type, v.c_str(), v.size() + 1); }
  template <size_t N>
  void Put(uint16_t type, const std::optional<std::array<uint8_t, N>>& v) {
    if (v) Put(type, v->data(), N);
  }

 private:
  // Room for a whole request's attributes but its strings (a service and a destination come
  // to about 260 bytes).
  static constexpr size_t kSlack = 512;
  std::vector<uint8_t>& out_;
  size_t end_;
};

}  // namespace ipvs
