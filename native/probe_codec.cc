#include "probe_codec.h"

#include <cstring>

namespace ipvs::probe {
namespace {

uint32_t ReadU32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
uint16_t ReadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

void PutU32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

bool Fail(std::vector<ProbeRequest>* out, std::string* error, size_t index, const char* what) {
  out->clear();
  *error = "probe " + std::to_string(index) + ": " + what;
  return false;
}

}  // namespace

bool DecodeProbeBatch(const uint8_t* data, size_t size, std::vector<ProbeRequest>* out, std::string* error) {
  out->clear();
  size_t at = 0;
  for (size_t index = 0; at < size; ++index) {
    if (size - at < kProbeHeaderBytes) return Fail(out, error, index, "truncated header");
    const uint8_t* p = data + at;
    ProbeRequest probe;
    probe.id = ReadU32(p);
    probe.family = p[4];
    probe.flags = p[5];
    probe.port = ReadU16(p + 6);
    probe.timeout_ms = ReadU32(p + 8);
    probe.max_reply = ReadU32(p + 12);
    const uint32_t payload_len = ReadU32(p + 16);
    std::memcpy(probe.address, p + 20, 16);
    std::memcpy(probe.source, p + 36, 16);
    if (probe.family != 4 && probe.family != 6) return Fail(out, error, index, "family must be 4 or 6");
    if (probe.flags & ~kProbeFlagsMask) return Fail(out, error, index, "unknown flags");
    if (probe.port == 0) return Fail(out, error, index, "port must be 1-65535");
    if (probe.timeout_ms == 0 || probe.timeout_ms > kMaxProbeTimeoutMs) return Fail(out, error, index, "timeout out of range");
    if (probe.max_reply > kMaxProbeReply) return Fail(out, error, index, "reply limit out of range");
    if (payload_len > kMaxProbePayload) return Fail(out, error, index, "payload too long");
    at += kProbeHeaderBytes;
    if (size - at < payload_len) return Fail(out, error, index, "truncated payload");
    probe.payload.assign(reinterpret_cast<const char*>(data + at), payload_len);
    at += payload_len;
    out->push_back(std::move(probe));
  }
  return true;
}

void EncodeProbe(const ProbeRequest& probe, std::vector<uint8_t>* out) {
  const size_t at = out->size();
  out->resize(at + kProbeHeaderBytes + probe.payload.size());
  uint8_t* p = out->data() + at;
  PutU32(p, probe.id);
  p[4] = probe.family;
  p[5] = probe.flags;
  p[6] = static_cast<uint8_t>(probe.port);
  p[7] = static_cast<uint8_t>(probe.port >> 8);
  PutU32(p + 8, probe.timeout_ms);
  PutU32(p + 12, probe.max_reply);
  PutU32(p + 16, static_cast<uint32_t>(probe.payload.size()));
  std::memcpy(p + 20, probe.address, 16);
  std::memcpy(p + 36, probe.source, 16);
  if (!probe.payload.empty()) std::memcpy(p + kProbeHeaderBytes, probe.payload.data(), probe.payload.size());
}

void EncodeCompletion(const Completion& completion, std::vector<uint8_t>* records, std::vector<uint8_t>* replies) {
  const size_t at = records->size();
  records->resize(at + kCompletionBytes);
  uint8_t* p = records->data() + at;
  PutU32(p, completion.id);
  p[4] = completion.outcome;
  p[5] = completion.phase;
  p[6] = completion.flags;
  p[7] = 0;
  PutU32(p + 8, static_cast<uint32_t>(completion.error));
  PutU32(p + 12, completion.latency_us);
  PutU32(p + 16, static_cast<uint32_t>(replies->size()));
  PutU32(p + 20, static_cast<uint32_t>(completion.reply.size()));
  replies->insert(replies->end(), completion.reply.begin(), completion.reply.end());
}

bool DecodeCompletions(const uint8_t* records, size_t size, const uint8_t* replies, size_t replies_size,
                       std::vector<Completion>* out) {
  out->clear();
  if (size % kCompletionBytes != 0) return false;
  for (size_t at = 0; at < size; at += kCompletionBytes) {
    const uint8_t* p = records + at;
    Completion c;
    c.id = ReadU32(p);
    c.outcome = p[4];
    c.phase = p[5];
    c.flags = p[6];
    c.error = static_cast<int32_t>(ReadU32(p + 8));
    c.latency_us = ReadU32(p + 12);
    const uint32_t offset = ReadU32(p + 16);
    const uint32_t length = ReadU32(p + 20);
    if (offset > replies_size || length > replies_size - offset) return false;
    c.reply.assign(reinterpret_cast<const char*>(replies + offset), length);
    out->push_back(std::move(c));
  }
  return true;
}

}  // namespace ipvs::probe
