#include "record_pool.h"

#include <mutex>
#include <utility>

namespace ipvs::record_pool {
namespace {

struct Cache {
  std::mutex mutex;
  std::vector<std::vector<uint32_t>> buffers;
  size_t bytes = 0;
};

// Never destroyed: a finalizer may still give memory back while the process exits, after
// static destructors would have run.
Cache& TheCache() {
  static Cache* cache = new Cache;
  return *cache;
}

size_t BytesOf(const std::vector<uint32_t>& words) { return words.capacity() * sizeof(uint32_t); }

}  // namespace

std::vector<uint32_t> Take(size_t words) {
  Cache& cache = TheCache();
  std::vector<uint32_t> out;
  if (words < kMinCachedBytes / sizeof(uint32_t)) return out;
  std::lock_guard<std::mutex> lock(cache.mutex);
  if (cache.buffers.empty()) return out;
  size_t best = cache.buffers.size();      // the smallest that holds `words`
  size_t largest = 0;
  for (size_t i = 0; i < cache.buffers.size(); ++i) {
    const size_t capacity = cache.buffers[i].capacity();
    if (capacity > cache.buffers[largest].capacity()) largest = i;
    if (capacity >= words && (best == cache.buffers.size() || capacity < cache.buffers[best].capacity())) best = i;
  }
  const size_t chosen = best < cache.buffers.size() ? best : largest;
  out = std::move(cache.buffers[chosen]);
  cache.buffers[chosen] = std::move(cache.buffers.back());
  cache.buffers.pop_back();
  cache.bytes -= BytesOf(out);
  out.clear();
  return out;
}

void Give(std::vector<uint32_t>&& words) {
  std::vector<uint32_t> released = std::move(words);
  const size_t bytes = BytesOf(released);
  if (bytes < kMinCachedBytes) return;
  Cache& cache = TheCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  if (cache.buffers.size() >= kMaxCachedBuffers || cache.bytes + bytes > kMaxCachedBytes) return;
  cache.bytes += bytes;
  cache.buffers.push_back(std::move(released));
}

size_t CachedBuffers() {
  Cache& cache = TheCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return cache.buffers.size();
}

size_t CachedBytes() {
  Cache& cache = TheCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return cache.bytes;
}

}  // namespace ipvs::record_pool
