// The probe thread: one dedicated thread with its own epoll set that runs probes (connect,
// optionally send bytes and read the reply) on non-blocking sockets, enforces each probe's
// timeout, and hands finished probes to the owner in batches. It knows nothing about what a
// reply means: that is TypeScript's (lib/director/checks/).
//
// Wake-ups are what a probe costs most where threads are expensive to wake (a VM; under qemu's
// TCG a cross-thread wake-up costs about a millisecond of CPU), so the engine avoids them:
// the request is sent right after connect() when the connection is already established (a
// local network completes the handshake inside the call), the owner is told about completions
// only after they have waited `delivery_delay` (the owner takes them meanwhile at its next
// Submit), and a Submit wakes the thread only when it is asleep.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
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

  struct Options {
    // How long completions may wait for the owner's next Submit (or TakeCompletions) before
    // `notify` is called; 0 notifies at once.
    std::chrono::milliseconds delivery_delay{0};
    // Sockets open at once; 0: derived from RLIMIT_NOFILE (MaxInFlightFor). Probes beyond it
    // wait in submission order for one to finish.
    size_t max_in_flight = 0;
  };

  // The cap on sockets open at once for a descriptor limit: three quarters of it, leaving the
  // rest (at least 128, or half of a smaller limit) to the process.
  static size_t MaxInFlightFor(uint64_t descriptor_limit);

  // `notify` runs on the probe thread when completions are waiting and no earlier
  // notification is still unanswered (TakeCompletions answers it): one call per wake-up
  // at most, however many probes finished. It returns false when the notification could not
  // be queued (the next completion then tries again). Throws SystemError when epoll or the
  // eventfd cannot be created.
  ProbeEngine(std::function<bool()> notify, Options options);
  ~ProbeEngine();  // Stop()
  ProbeEngine(const ProbeEngine&) = delete;
  ProbeEngine& operator=(const ProbeEngine&) = delete;

  // Queues probes for the thread and returns the completions waiting (as TakeCompletions). A
  // probe's timeout counts from its socket's creation; one still waiting (for a slot, or for
  // the thread, which starts a bounded number per wake-up) when its timeout has passed since
  // `submitted` ends as kOutcomeNotStarted.
  std::vector<Completion> Submit(std::vector<ProbeRequest>&& probes, Clock::time_point submitted);

  // The probes finished since the last call (re-arms the notification).
  std::vector<Completion> TakeCompletions();

  size_t max_in_flight() const { return max_in_flight_; }

  // Closes every socket, drops queued probes and completions, joins the thread. Idempotent.
  void Stop();

 private:
  struct Probe;
  struct Queued {
    ProbeRequest request;
    Clock::time_point submitted;
  };

  void Run();
  void Accept(Queued&& queued);
  void Start(uint64_t key, Clock::time_point now);
  // Starts waiting probes while slots are free, a bounded number per wake-up; true when more
  // could start now.
  bool StartWaiting(Clock::time_point now);
  void Advance(uint64_t key, uint32_t events);
  void Finish(uint64_t key, uint8_t outcome, uint8_t phase, int error, uint8_t flags = 0);
  void ExpireDue(Clock::time_point now);
  int WaitMs(Clock::time_point now, Clock::time_point deliver_at);

  std::function<bool()> notify_;
  const std::chrono::milliseconds delivery_delay_;
  const size_t max_in_flight_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;

  // Shared with the owner's thread.
  std::mutex mutex_;
  std::vector<Queued> incoming_;
  std::vector<Completion> done_;
  bool notified_ = false;
  bool stopping_ = false;
  bool asleep_ = false;  // in epoll_wait, having seen `incoming_` empty: a Submit must wake it

  // Probe thread only.
  std::unordered_map<uint64_t, Probe> probes_;  // open sockets and probes waiting for a slot
  size_t open_ = 0;                               // probes with a socket
  std::deque<uint64_t> waiting_;                  // keys of probes waiting for a slot, oldest first
  uint64_t next_key_ = 1;
  using Deadline = std::pair<Clock::time_point, uint64_t>;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> deadlines_;
  std::vector<Completion> finished_;  // moved to done_ once per wake-up
};

}  // namespace ipvs::probe
