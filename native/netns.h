// Entering a network namespace on the current thread, and leaving it again.
//
// Thread-pool threads are shared with the rest of the process, so a worker that enters a
// namespace must restore the thread's original one before it returns.
#pragma once

#include <string>

namespace ipvs {

class ScopedNetns {
 public:
  // Enters the namespace at `path` (e.g. /run/netns/NAME or /proc/PID/ns/net).
  // An empty path stays in the current namespace. Throws SystemError on failure.
  explicit ScopedNetns(const std::string& path);
  // Restores the thread's original namespace; aborts the process if it cannot, since a
  // thread-pool thread left in a foreign namespace would silently misdirect other work.
  ~ScopedNetns();

  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

 private:
  int original_fd_ = -1;
};

}  // namespace ipvs
