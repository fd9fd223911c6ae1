#include "probe_engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "system_error.h"

namespace ipvs::probe {

struct ProbeEngine::Probe {
  int fd = -1;
  uint32_t id = 0;
  uint8_t phase = kPhaseConnect;
  uint8_t flags = 0;
  uint32_t max_reply = 0;
  std::string payload;
  size_t sent = 0;
  std::string reply;
  Clock::time_point submitted;
  Clock::time_point deadline;
};

namespace {

constexpr int kMaxEvents = 256;

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

ProbeEngine::ProbeEngine(std::function<bool()> notify) : notify_(std::move(notify)) {
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

void ProbeEngine::Submit(std::vector<ProbeRequest>&& probes, Clock::time_point submitted) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    for (auto& probe : probes) incoming_.push_back(Queued{std::move(probe), submitted});
  }
  const uint64_t one = 1;
  // The eventfd counter cannot overflow here (it would take 2^64 - 1 writes), so this succeeds.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
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
  for (auto& [key, probe] : probes_) ::close(probe.fd);
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
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, WaitMs(Clock::now()));
    if (n < 0 && errno != EINTR) break;  // cannot happen with a valid epoll descriptor
    bool woken = false;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) {
        woken = true;
      } else {
        Advance(events[i].data.u64, events[i].events);
      }
    }
    if (woken) {
      uint64_t count;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof count);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) return;
        batch.swap(incoming_);
      }
      for (auto& queued : batch) Start(std::move(queued));
      batch.clear();
    }
    ExpireDue(Clock::now());
    if (finished_.empty()) continue;
    bool notify = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      for (auto& c : finished_) done_.push_back(std::move(c));
      notify = !notified_;
      notified_ = true;
    }
    finished_.clear();
    if (notify && !notify_()) {
      std::lock_guard<std::mutex> lock(mutex_);
      notified_ = false;
    }
  }
}

void ProbeEngine::Start(Queued&& queued) {
  ProbeRequest& request = queued.request;
  const uint64_t key = next_key_++;
  Probe& probe = probes_[key];
  probe.id = request.id;
  probe.flags = request.flags;
  probe.max_reply = request.max_reply;
  probe.payload = std::move(request.payload);
  probe.submitted = queued.submitted;
  probe.deadline = queued.submitted + std::chrono::milliseconds(request.timeout_ms);
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
  if (::connect(probe.fd, reinterpret_cast<sockaddr*>(&address), length) < 0 && errno != EINPROGRESS) {
    return Finish(key, kOutcomeError, kPhaseConnect, errno);
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
    if (probe.payload.empty()) return Finish(key, kOutcomeOk, kPhaseConnect, 0);
    probe.phase = kPhaseSend;
  }
  if (probe.phase == kPhaseSend) {
    while (probe.sent < probe.payload.size()) {
      const ssize_t n = ::send(probe.fd, probe.payload.data() + probe.sent, probe.payload.size() - probe.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // the next EPOLLOUT edge resumes
        return Finish(key, kOutcomeError, kPhaseSend, errno);
      }
      probe.sent += static_cast<size_t>(n);
    }
    probe.payload = std::string();
    probe.phase = kPhaseReceive;
    // Nothing can have been answered yet: the next EPOLLIN edge starts the reading (this
    // saves a recv() that would only say EAGAIN).
    if (!(events & EPOLLIN)) return;
  }
  // Receive: read until the peer closes, the limit, or (kProbeFirstLine) the first CRLF.
  char buffer[16384];
  for (;;) {
    // With no room at all (a limit of 0) one byte is asked for: EOF or a reply over the limit.
    const size_t room = probe.max_reply - probe.reply.size();
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
    if (probe.flags & kProbeFirstLine) {
      // A CR that ended the previous read may pair with this read's LF.
      const size_t from = before == 0 ? 0 : before - 1;
      if (probe.reply.find("\r\n", from) != std::string::npos) return Finish(key, kOutcomeOk, kPhaseReceive, 0, kReplyLine);
    }
    if (probe.reply.size() == probe.max_reply) return Finish(key, kOutcomeOk, kPhaseReceive, 0, kReplyLimit);
  }
}

void ProbeEngine::Finish(uint64_t key, uint8_t outcome, uint8_t phase, int error, uint8_t flags) {
  auto found = probes_.find(key);
  if (found == probes_.end()) return;
  Probe& probe = found->second;
  if (probe.fd >= 0) ::close(probe.fd);
  Completion completion;
  completion.id = probe.id;
  completion.outcome = outcome;
  completion.phase = phase;
  completion.flags = flags;
  completion.error = outcome == kOutcomeError ? error : 0;
  completion.latency_us = MicrosSince(probe.submitted, Clock::now());
  completion.reply = std::move(probe.reply);
  finished_.push_back(std::move(completion));
  probes_.erase(found);  // its deadline entry is dropped lazily
}

void ProbeEngine::ExpireDue(Clock::time_point now) {
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    const uint64_t key = deadlines_.top().second;
    deadlines_.pop();
    auto found = probes_.find(key);
    if (found != probes_.end()) Finish(key, kOutcomeTimeout, found->second.phase, 0);
  }
}

int ProbeEngine::WaitMs(Clock::time_point now) {
  // Deadlines of probes that already finished would only cause empty wake-ups.
  while (!deadlines_.empty() && probes_.find(deadlines_.top().second) == probes_.end()) deadlines_.pop();
  if (deadlines_.empty()) return -1;
  const auto until = deadlines_.top().first;
  if (until <= now) return 0;
  // Rounded up: waking a little after a deadline is fine, before it costs a wasted wake-up.
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(until - now).count();
  return static_cast<int>(std::min<int64_t>((us + 999) / 1000, 60'000));
}

}  // namespace ipvs::probe
