// The probe transport's wire format between TypeScript and the probe thread
// (lib/director/checks/probe-codec.ts writes and reads the same layout). All integers are
// little-endian.
//
// A batch of probes is a sequence of records, each a 52-byte header followed by its payload:
//   u32 id
//   u8  family        4 or 6
//   u8  flags         kProbeBind: bind the source address; kProbeFirstLine: the reply is
//                     complete at its first CRLF
//   u16 port          1-65535
//   u32 timeout_ms    1-kMaxProbeTimeoutMs
//   u32 max_reply     reply bytes kept, 0-kMaxProbeReply (the socket is closed at the limit)
//   u32 payload_len   bytes sent after connect, 0-kMaxProbePayload (0: connect only)
//   u8  address[16]   the destination (IPv4 in the first 4 bytes)
//   u8  source[16]    the source address to bind (when kProbeBind)
//   u8  payload[payload_len]
//
// A completion is a 24-byte record; the reply bytes of a batch of completions are one buffer:
//   u32 id
//   u8  outcome       kOutcomeOk, kOutcomeError, kOutcomeTimeout, kOutcomeNotStarted (it waited
//                     for a descriptor slot, see ProbeEngine, for its whole timeout)
//   u8  phase         kPhaseConnect (socket, bind, connect), kPhaseSend, kPhaseReceive
//   u8  flags         kReplyLimit: stopped at max_reply; kReplyLine: stopped at the first CRLF
//   u8  reserved      0
//   i32 error         errno (kOutcomeError), else 0
//   u32 latency_us    from the socket's creation to the outcome
//   u32 reply_offset  into the batch's reply buffer
//   u32 reply_length
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ipvs::probe {

constexpr size_t kProbeHeaderBytes = 52;
constexpr size_t kCompletionBytes = 24;
constexpr uint8_t kProbeBind = 1;
constexpr uint8_t kProbeFirstLine = 2;
constexpr uint8_t kProbeFlagsMask = kProbeBind | kProbeFirstLine;
constexpr uint32_t kMaxProbeTimeoutMs = 86'400'000;
constexpr uint32_t kMaxProbeReply = 16u << 20;
constexpr uint32_t kMaxProbePayload = 1u << 20;

enum Outcome : uint8_t { kOutcomeOk = 0, kOutcomeError = 1, kOutcomeTimeout = 2, kOutcomeNotStarted = 3 };
enum Phase : uint8_t { kPhaseConnect = 0, kPhaseSend = 1, kPhaseReceive = 2 };
constexpr uint8_t kReplyLimit = 1;
constexpr uint8_t kReplyLine = 2;

struct ProbeRequest {
  uint32_t id = 0;
  uint8_t family = 4;
  uint8_t flags = 0;
  uint16_t port = 0;
  uint32_t timeout_ms = 0;
  uint32_t max_reply = 0;
  uint8_t address[16] = {};
  uint8_t source[16] = {};
  std::string payload;
};

struct Completion {
  uint32_t id = 0;
  uint8_t outcome = kOutcomeOk;
  uint8_t phase = kPhaseConnect;
  uint8_t flags = 0;
  int32_t error = 0;
  uint32_t latency_us = 0;
  std::string reply;
};

// Decodes a whole batch. On malformed input returns false with `error` naming the record and
// field, and leaves `out` empty: a batch is taken whole or not at all.
bool DecodeProbeBatch(const uint8_t* data, size_t size, std::vector<ProbeRequest>* out, std::string* error);

// The inverse of DecodeProbeBatch (for the fuzz round trip; JS writes batches in production).
void EncodeProbe(const ProbeRequest& probe, std::vector<uint8_t>* out);

// Appends completions as records plus their concatenated replies. Replies above 4 GiB in one
// batch cannot occur: each is capped at kMaxProbeReply and a batch is cut before that.
void EncodeCompletion(const Completion& completion, std::vector<uint8_t>* records, std::vector<uint8_t>* replies);

// The inverse of EncodeCompletion (fuzz round trip); false when the records are malformed.
bool DecodeCompletions(const uint8_t* records, size_t size, const uint8_t* replies, size_t replies_size,
                       std::vector<Completion>* out);

}  // namespace ipvs::probe
