// The probe thread: one dedicated thread with its own epoll set that runs probes (connect,
// optionally send bytes and read the reply) on non-blocking sockets, enforces each probe's
// timeout, and hands finished probes to the owner in batches. It knows nothing about what a
// reply means: that is TypeScript's (lib/director/checks/).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <vector>

#include "probe_codec.h"

namespace ipvs::probe {

class ProbeEngine {
 public:
  using Clock = std::chrono::steady_clock;

  // `notify` runs on the probe thread when completions are waiting and no earlier
  // notification is still unanswered (TakeCompletions answers it): one call per wake-up
  // at most, however many probes finished. It returns false when the notification could not
  // be queued (the next completion then tries again). Throws SystemError when epoll or the
  // eventfd cannot be created.
  explicit ProbeEngine(std::function<bool()> notify);
  ~ProbeEngine();  // Stop()
  ProbeEngine(const ProbeEngine&) = delete;
  ProbeEngine& operator=(const ProbeEngine&) = delete;

  // Queues probes for the thread; their timeouts and latencies count from `submitted`.
  void Submit(std::vector<ProbeRequest>&& probes, Clock::time_point submitted);

  // The probes finished since the last call (re-arms the notification).
  std::vector<Completion> TakeCompletions();

  // Closes every socket, drops queued probes and completions, joins the thread. Idempotent.
  void Stop();

 private:
  struct Probe;
  struct Queued {
    ProbeRequest request;
    Clock::time_point submitted;
  };

  void Run();
  void Start(Queued&& queued);
  void Advance(uint64_t key, uint32_t events);
  void Finish(uint64_t key, uint8_t outcome, uint8_t phase, int error, uint8_t flags = 0);
  void ExpireDue(Clock::time_point now);
  int WaitMs(Clock::time_point now);

  std::function<bool()> notify_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;

  // Shared with the owner's thread.
  std::mutex mutex_;
  std::vector<Queued> incoming_;
  std::vector<Completion> done_;
  bool notified_ = false;
  bool stopping_ = false;

  // Probe thread only.
  std::unordered_map<uint64_t, Probe> probes_;
  uint64_t next_key_ = 1;
  using Deadline = std::pair<Clock::time_point, uint64_t>;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> deadlines_;
  std::vector<Completion> finished_;  // moved to done_ once per wake-up
};

}  // namespace ipvs::probe
