// libFuzzer target for the probe transport's batch decoder (native/probe_codec.cc), which reads
// bytes the JS side packed. Per input:
//  1. arbitrary bytes as a batch: DecodeProbeBatch refuses them with a message and no probes,
//     or every probe it returns is within the limits, and encoding them again gives the input
//     back byte for byte;
//  2. arbitrary bytes as completion records over the input as replies: DecodeCompletions
//     refuses them, or encoding what it returned and decoding that again changes nothing.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../native/probe_codec.h"

using namespace ipvs::probe;

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "probe codec: %s\n", what);
  std::abort();
}

bool SameCompletion(const Completion& a, const Completion& b) {
  return a.id == b.id && a.outcome == b.outcome && a.phase == b.phase && a.flags == b.flags && a.error == b.error &&
         a.latency_us == b.latency_us && a.reply == b.reply;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<ProbeRequest> probes;
  std::string error;
  if (DecodeProbeBatch(data, size, &probes, &error)) {
    if (!error.empty()) Fail("an accepted batch carries an error");
    std::vector<uint8_t> again;
    for (const ProbeRequest& p : probes) {
      if (p.family != 4 && p.family != 6) Fail("family out of range");
      if (p.port == 0 || p.timeout_ms == 0 || p.timeout_ms > kMaxProbeTimeoutMs) Fail("port or timeout out of range");
      if (p.max_reply > kMaxProbeReply || p.payload.size() > kMaxProbePayload) Fail("limit out of range");
      if (p.flags & ~kProbeFlagsMask) Fail("unknown flags accepted");
      EncodeProbe(p, &again);
    }
    if (again.size() != size || (size > 0 && std::memcmp(again.data(), data, size) != 0)) Fail("batch round trip changed bytes");
  } else {
    if (!probes.empty()) Fail("a refused batch left probes");
    if (error.empty()) Fail("a refused batch has no message");
  }

  const size_t split = size / 2;
  std::vector<Completion> completions;
  if (DecodeCompletions(data, split - split % kCompletionBytes, data + split, size - split, &completions)) {
    std::vector<uint8_t> records, replies;
    for (const Completion& c : completions) EncodeCompletion(c, &records, &replies);
    std::vector<Completion> back;
    if (!DecodeCompletions(records.data(), records.size(), replies.data(), replies.size(), &back)) Fail("re-encoded completions refused");
    if (back.size() != completions.size()) Fail("completion count changed");
    for (size_t i = 0; i < back.size(); ++i) {
      if (!SameCompletion(back[i], completions[i])) Fail("completion round trip changed a field");
    }
  }
  return 0;
}
