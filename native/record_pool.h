// Memory for packed records that JS has let go of, kept for the next listing. A listing's
// records are handed to JS without a copy (their memory becomes an external ArrayBuffer), so
// each listing would otherwise write its ~1.6 MiB of records into new memory and fault in
// every page of it (about 450 faults for 1,000 x 10, each a trip through the kernel, and far
// dearer in an emulated guest). Memory is only taken back when its ArrayBuffer's finalizer
// runs, that is when no JS value can reach it any more; the cache is bounded, so a process
// keeps at most kMaxCachedBytes of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace ipvs::record_pool {

// At most this much record memory is kept, in at most kMaxCachedBuffers vectors; smaller
// vectors than kMinCachedBytes are not worth keeping (a few pages, or none).
constexpr size_t kMaxCachedBytes = 4 * 1024 * 1024;
constexpr size_t kMaxCachedBuffers = 32;
constexpr size_t kMinCachedBytes = 64 * 1024;

// Take's argument when the size is not known yet.
constexpr size_t kLargest = std::numeric_limits<size_t>::max();
// An empty vector, with the capacity of a kept one when there is one: the smallest that holds
// `words` words, else (none that large) the largest. Requests under kMinCachedBytes get a new
// vector: they would take a large buffer for a few pages. Any thread.
std::vector<uint32_t> Take(size_t words);
// Keeps `words`' memory for a later Take, or frees it (too small, or the cache is full). Any thread.
void Give(std::vector<uint32_t>&& words);
// What is kept, for tests: buffers and bytes.
size_t CachedBuffers();
size_t CachedBytes();

}  // namespace ipvs::record_pool
