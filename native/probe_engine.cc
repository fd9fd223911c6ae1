#include "probe_engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "system_error.h"

namespace ipvs::probe {

struct ProbeEngine::Probe {
  ProbeRequest request;  // its payload is released once sent
  int fd = -1;
  bool started = false;  // holds one of the max_in_flight slots
  uint8_t phase = kPhaseConnect;
  size_t sent = 0;
  std::string reply;
  Clock::time_point submitted;
  Clock::time_point started_at;
  Clock::time_point deadline;  // the one live entry of deadlines_ for this probe
};

namespace {

constexpr int kMaxEvents = 256;

// Probes started per wake-up at most, so that a flood of submissions cannot keep the thread
// from reading replies and enforcing timeouts (under overload each start costs a handshake).
constexpr size_t kStartsPerWake = 64;

// Builds the socket address of `family` from 16 address bytes; returns its length.
socklen_t MakeAddress(uint8_t family, const uint8_t* bytes, uint16_t port, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  if (family == 4) {
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, bytes, 4);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  std::memcpy(&in6->sin6_addr, bytes, 16);
  return sizeof(sockaddr_in6);
}

uint32_t MicrosSince(ProbeEngine::Clock::time_point start, ProbeEngine::Clock::time_point now) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - start).count();
  return us <= 0 ? 0 : us >= UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(us);
}

}  // namespace

size_t ProbeEngine::MaxInFlightFor(uint64_t descriptor_limit) {
  const uint64_t limit = std::min<uint64_t>(descriptor_limit, uint64_t{1} << 30);
  const uint64_t reserve = std::max<uint64_t>(limit / 4, std::min<uint64_t>(128, limit / 2));
  return static_cast<size_t>(std::max<uint64_t>(1, limit - reserve));
}

namespace {

size_t DefaultMaxInFlight() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) < 0) return ProbeEngine::MaxInFlightFor(1024);
  return ProbeEngine::MaxInFlightFor(limit.rlim_cur == RLIM_INFINITY ? uint64_t{1} << 30 : limit.rlim_cur);
}

}  // namespace

ProbeEngine::ProbeEngine(std::function<bool()> notify, Options options)
    : notify_(std::move(notify)),
      delivery_delay_(options.delivery_delay),
      max_in_flight_(options.max_in_flight != 0 ? options.max_in_flight : DefaultMaxInFlight()) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw SystemError(errno, "epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int err = errno;
    ::close(epoll_fd_);
    throw SystemError(err, "eventfd");
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = 0;  // key 0 is the wake-up descriptor; probes count from 1
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event) < 0) {
    const int err = errno;
    ::close(wake_fd_);
    ::close(epoll_fd_);
    throw SystemError(err, "epoll_ctl");
  }
  thread_ = std::thread([this] { Run(); });
}

ProbeEngine::~ProbeEngine() { Stop(); }

std::vector<Completion> ProbeEngine::Submit(std::vector<ProbeRequest>&& probes, Clock::time_point submitted) {
  std::vector<Completion> done;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return done;
    for (auto& probe : probes) incoming_.push_back(Queued{std::move(probe), submitted});
    done.swap(done_);
    notified_ = false;
    // Awake, the thread looks at incoming_ before it sleeps again.
    wake = asleep_;
    asleep_ = false;
  }
  if (wake) {
    const uint64_t one = 1;
    // The eventfd counter cannot overflow here (it would take 2^64 - 1 writes), so this succeeds.
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
  return done;
}

std::vector<Completion> ProbeEngine::TakeCompletions() {
  std::lock_guard<std::mutex> lock(mutex_);
  notified_ = false;
  std::vector<Completion> out;
  out.swap(done_);
  return out;
}

void ProbeEngine::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    incoming_.clear();
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
  for (auto& [key, probe] : probes_) {
    if (probe.fd >= 0) ::close(probe.fd);
  }
  probes_.clear();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_.clear();
  }
  ::close(wake_fd_);
  ::close(epoll_fd_);
  wake_fd_ = epoll_fd_ = -1;
}

void ProbeEngine::Run() {
  // Named for top -H, perf and /proc/PID/task/*/comm (the benchmark reads its CPU there).
  ::pthread_setname_np(::pthread_self(), "ipvs-probe");
  epoll_event events[kMaxEvents];
  std::vector<Queued> batch;
  constexpr auto kNever = Clock::time_point::max();
  Clock::time_point deliver_at = kNever;  // when the completions in done_ are due to the owner
  int wait_ms = 0;
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, wait_ms);
    if (n < 0 && errno != EINTR) break;  // cannot happen with a valid epoll descriptor
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof count);
      } else {
        Advance(events[i].data.u64, events[i].events);
      }
    }
    const auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      asleep_ = false;
      batch.swap(incoming_);
    }
    for (auto& queued : batch) Accept(std::move(queued));
    batch.clear();
    ExpireDue(now);
    const bool more_to_start = StartWaiting(now);

    bool notify = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      if (!finished_.empty()) {
        if (done_.empty()) deliver_at = now + delivery_delay_;
        for (auto& c : finished_) done_.push_back(std::move(c));
      } else if (done_.empty()) {
        deliver_at = kNever;  // the owner took them
      }
      if (!done_.empty() && !notified_ && now >= deliver_at) notify = notified_ = true;
    }
    finished_.clear();
    if (notify && !notify_()) {
      std::lock_guard<std::mutex> lock(mutex_);
      notified_ = false;
      deliver_at = now + std::max(delivery_delay_, std::chrono::milliseconds(10));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      if (!incoming_.empty() || more_to_start) {
        wait_ms = 0;
        continue;
      }
      asleep_ = true;
      wait_ms = WaitMs(now, !done_.empty() && !notified_ ? deliver_at : kNever);
    }
  }
}

void ProbeEngine::Accept(Queued&& queued) {
  const uint64_t key = next_key_++;
  Probe& probe = probes_[key];
  probe.request = std::move(queued.request);
  probe.submitted = queued.submitted;
  // Waits for a slot and for its turn, at most its timeout (counted from submission).
  probe.deadline = probe.submitted + std::chrono::milliseconds(probe.request.timeout_ms);
  deadlines_.emplace(probe.deadline, key);
  waiting_.push_back(key);
}

bool ProbeEngine::StartWaiting(Clock::time_point now) {
  size_t started = 0;
  while (open_ < max_in_flight_ && !waiting_.empty()) {
    if (started == kStartsPerWake) return true;
    const uint64_t key = waiting_.front();
    waiting_.pop_front();
    if (probes_.count(key) == 0) continue;  // it ended waiting
    Start(key, now);
    ++started;
  }
  return false;
}

void ProbeEngine::Start(uint64_t key, Clock::time_point now) {
  Probe& probe = probes_[key];
  const ProbeRequest& request = probe.request;
  probe.started = true;
  ++open_;
  probe.started_at = now;
  probe.deadline = now + std::chrono::milliseconds(request.timeout_ms);
  deadlines_.emplace(probe.deadline, key);

  const int domain = request.family == 4 ? AF_INET : AF_INET6;
  // EMFILE, ENFILE, ENOBUFS and the like end this probe only.
  probe.fd = ::socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe.fd < 0) return Finish(key, kOutcomeError, kPhaseConnect, errno);
  sockaddr_storage address;
  if (request.flags & kProbeBind) {
    const socklen_t length = MakeAddress(request.family, request.source, 0, &address);
    if (::bind(probe.fd, reinterpret_cast<sockaddr*>(&address), length) < 0) {
      return Finish(key, kOutcomeError, kPhaseConnect, errno);
    }
  }
  const socklen_t length = MakeAddress(request.family, request.address, request.port, &address);
  const bool connected = ::connect(probe.fd, reinterpret_cast<sockaddr*>(&address), length) == 0;
  if (!connected && errno != EINPROGRESS) return Finish(key, kOutcomeError, kPhaseConnect, errno);
  if (request.payload.empty()) {
    if (connected) return Finish(key, kOutcomeOk, kPhaseConnect, 0);
  } else {
    // On a local network the handshake completes inside connect(), so the request can go now
    // and the wake-up for the connection's EPOLLOUT is saved; a connection still being made
    // refuses it with EAGAIN (the probe stays in the connect phase, and the EPOLLOUT edge
    // sends it).
    const ssize_t sent = ::send(probe.fd, request.payload.data(), request.payload.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      // A refused or reset handshake (ECONNREFUSED...) is the connection's error.
      const int error = errno;
      return Finish(key, kOutcomeError, error == EPIPE || error == ECONNRESET ? kPhaseSend : kPhaseConnect, error);
    }
    if (sent > 0) {
      probe.sent = static_cast<size_t>(sent);
      probe.phase = kPhaseSend;
      if (probe.sent == request.payload.size()) {
        probe.request.payload = std::string();
        probe.phase = kPhaseReceive;
      }
    }
  }
  // Edge-triggered for both directions from the start: no EPOLL_CTL_MOD between the phases,
  // and close() takes the socket out of the set.
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = key;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, probe.fd, &event) < 0) {
    return Finish(key, kOutcomeError, kPhaseConnect, errno);
  }
}

void ProbeEngine::Advance(uint64_t key, uint32_t events) {
  auto found = probes_.find(key);
  if (found == probes_.end()) return;
  Probe& probe = found->second;
  if (probe.phase == kPhaseConnect) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      int error = 0;
      socklen_t length = sizeof error;
      if (::getsockopt(probe.fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) error = errno;
      return Finish(key, kOutcomeError, kPhaseConnect, error != 0 ? error : ECONNRESET);
    }
    if (!(events & EPOLLOUT)) return;
    if (probe.request.payload.empty()) return Finish(key, kOutcomeOk, kPhaseConnect, 0);
    probe.phase = kPhaseSend;
  }
  if (probe.phase == kPhaseSend) {
    const std::string& payload = probe.request.payload;
    while (probe.sent < payload.size()) {
      const ssize_t n = ::send(probe.fd, payload.data() + probe.sent, payload.size() - probe.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // the next EPOLLOUT edge resumes
        return Finish(key, kOutcomeError, kPhaseSend, errno);
      }
      probe.sent += static_cast<size_t>(n);
    }
    probe.request.payload = std::string();
    probe.phase = kPhaseReceive;
    // Nothing can have been answered yet: the next EPOLLIN edge starts the reading (this
    // saves a recv() that would only say EAGAIN).
    if (!(events & EPOLLIN)) return;
  }
  // Receive: read until the peer closes, the limit, or (kProbeFirstLine) the first CRLF. An
  // edge of EPOLLOUT alone (the connection became writable after an early send) has nothing
  // to read.
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  const uint32_t max_reply = probe.request.max_reply;
  char buffer[16384];
  for (;;) {
    // With no room at all (a limit of 0) one byte is asked for: EOF or a reply over the limit.
    const size_t room = max_reply - probe.reply.size();
    const ssize_t n = ::recv(probe.fd, buffer, room == 0 ? 1 : std::min(room, sizeof buffer), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return Finish(key, kOutcomeError, kPhaseReceive, errno);
    }
    if (n == 0) return Finish(key, kOutcomeOk, kPhaseReceive, 0);
    if (room == 0) return Finish(key, kOutcomeOk, kPhaseReceive, 0, kReplyLimit);
    const size_t before = probe.reply.size();
    probe.reply.append(buffer, static_cast<size_t>(n));
    if (probe.request.flags & kProbeFirstLine) {
      // A CR that ended the previous read may pair with this read's LF.
      const size_t from = before == 0 ? 0 : before - 1;
      if (probe.reply.find("\r\n", from) != std::string::npos) return Finish(key, kOutcomeOk, kPhaseReceive, 0, kReplyLine);
    }
    if (probe.reply.size() == max_reply) return Finish(key, kOutcomeOk, kPhaseReceive, 0, kReplyLimit);
  }
}

void ProbeEngine::Finish(uint64_t key, uint8_t outcome, uint8_t phase, int error, uint8_t flags) {
  auto found = probes_.find(key);
  if (found == probes_.end()) return;
  Probe& probe = found->second;
  if (probe.fd >= 0) ::close(probe.fd);
  if (probe.started) --open_;
  Completion completion;
  completion.id = probe.request.id;
  completion.outcome = outcome;
  completion.phase = phase;
  completion.flags = flags;
  completion.error = outcome == kOutcomeError ? error : 0;
  completion.latency_us = MicrosSince(probe.started ? probe.started_at : probe.submitted, Clock::now());
  completion.reply = std::move(probe.reply);
  finished_.push_back(std::move(completion));
  probes_.erase(found);  // its deadline entry is dropped lazily, its waiting_ entry when reached
}

void ProbeEngine::ExpireDue(Clock::time_point now) {
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    const auto [deadline, key] = deadlines_.top();
    deadlines_.pop();
    auto found = probes_.find(key);
    if (found == probes_.end() || found->second.deadline != deadline) continue;  // ended, or started since
    if (found->second.started) {
      Finish(key, kOutcomeTimeout, found->second.phase, 0);
    } else {
      Finish(key, kOutcomeNotStarted, kPhaseConnect, 0);
    }
  }
}

int ProbeEngine::WaitMs(Clock::time_point now, Clock::time_point deliver_at) {
  // Deadlines of probes that ended or started since would only cause empty wake-ups.
  while (!deadlines_.empty()) {
    auto found = probes_.find(deadlines_.top().second);
    if (found != probes_.end() && found->second.deadline == deadlines_.top().first) break;
    deadlines_.pop();
  }
  Clock::time_point until = deliver_at;
  if (!deadlines_.empty()) until = std::min(until, deadlines_.top().first);
  if (until == Clock::time_point::max()) return -1;
  if (until <= now) return 0;
  // Rounded up: waking a little after a deadline is fine, before it costs a wasted wake-up.
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(until - now).count();
  return static_cast<int>(std::min<int64_t>((us + 999) / 1000, 60'000));
}

}  // namespace ipvs::probe
