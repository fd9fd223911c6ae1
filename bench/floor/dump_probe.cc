// A probe, not the floor: where listTable's job spends the time dump_floor does not. Runs in a
// plain single-threaded process (no node, no thread pool, no hand-offs), alternating in one
// process, and prints the median time of each variant as JSON:
//   floor       dump_floor's loop (recv() of a page per datagram), nothing decoded
//   mmsg        the same dumps read as the addon reads them: recvmmsg() of 16 page slots with
//               MSG_DONTWAIT, poll() only when nothing is queued; nothing decoded
//   socket      GenlSocket::Execute (the addon's transport), replies counted, not decoded
//   decode      GenlSocket::Execute and the job's decoding into packed records (fresh vectors
//               each listing, as the job has)
//   decode-reuse  the same with the record vectors kept between listings (no fresh pages)
//   decode-thread the decode variant on a second, long-lived thread while this one waits on a
//               condition variable (as node's thread pool runs the job)
//   decode-busy the decode variant while a second thread spins (as when the event loop builds a
//               part's objects meanwhile): both vCPUs busy
// With DUMP_PROBE_FRESH=1 in the environment, malloc maps every block over 64 KiB afresh (no
// dynamic threshold), so the record vectors fault their pages in on every listing.
//
//   g++ -std=c++17 -O2 -I/usr/include/libnl3 bench/floor/dump_probe.cc native/{genl_socket,
//       fault_hooks,ipvs_codec,records,netns,netlink_ack,mapped_buffer}.cc -lnl-3 -lnl-genl-3
//       -lpthread -o .cache/floor/dump_probe
//   dump_probe ROUNDS variant...
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <functional>
#include <malloc.h>
#include <map>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "../../native/genl_socket.h"
#include "../../native/ipvs_codec.h"
#include "../../native/records.h"

using namespace ipvs;

namespace {

double NowMs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

long MinorFaults() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// The raw variants: a socket set up as dump_floor's (and the addon's) is.
struct Raw {
  int fd = -1;
  uint16_t family = 0;
  uint32_t seq = 100;
  std::vector<uint8_t> page = std::vector<uint8_t>(4096);
  std::vector<uint8_t> slots = std::vector<uint8_t>(16 * 4096);
  std::vector<uint8_t> request = std::vector<uint8_t>(512);
};

void Die(const char* what) {
  std::fprintf(stderr, "%s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

size_t RawRequest(Raw& r, uint8_t cmd, const Service* key) {
  Request req;
  req.command = static_cast<Command>(cmd);
  if (key) req.service = *key;
  std::vector<uint8_t> out;
  AppendRequestMessage(out, req, r.family, ++r.seq, NLM_F_REQUEST | NLM_F_DUMP);
  r.request = out;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(r.fd, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) Die("sendto");
  return out.size();
}

// Returns replies; with services != null, decodes service replies into it.
size_t RawDump(Raw& r, bool mmsg, uint8_t cmd, const Service* key, std::vector<Service>* services) {
  RawRequest(r, cmd, key);
  size_t replies = 0;
  for (;;) {
    size_t count = 1;
    size_t lengths[16];
    uint8_t* base;
    size_t slot;
    if (!mmsg) {
      ssize_t got = ::recv(r.fd, r.page.data(), r.page.size(), MSG_TRUNC);
      if (got < 0) Die("recv");
      lengths[0] = static_cast<size_t>(got);
      base = r.page.data();
      slot = r.page.size();
    } else {
      mmsghdr messages[16];
      iovec vectors[16];
      std::memset(messages, 0, sizeof(messages));
      for (size_t k = 0; k < 16; ++k) {
        vectors[k].iov_base = r.slots.data() + k * 4096;
        vectors[k].iov_len = 4096;
        messages[k].msg_hdr.msg_iov = &vectors[k];
        messages[k].msg_hdr.msg_iovlen = 1;
      }
      int got = ::recvmmsg(r.fd, messages, 16, MSG_TRUNC | MSG_DONTWAIT, nullptr);
      if (got < 0) {
        if (errno != EAGAIN) Die("recvmmsg");
        pollfd p{r.fd, POLLIN, 0};
        ::poll(&p, 1, 10000);
        continue;
      }
      count = static_cast<size_t>(got);
      for (size_t k = 0; k < count; ++k) lengths[k] = messages[k].msg_len;
      base = r.slots.data();
      slot = 4096;
    }
    for (size_t k = 0; k < count; ++k) {
      int remaining = static_cast<int>(lengths[k]);
      for (auto* h = reinterpret_cast<nlmsghdr*>(base + k * slot); NLMSG_OK(h, remaining); h = NLMSG_NEXT(h, remaining)) {
        if (h->nlmsg_seq != r.seq) continue;
        if (h->nlmsg_type == NLMSG_DONE) return replies;
        if (h->nlmsg_type == NLMSG_ERROR) Die("dump error");
        ++replies;
        if (services) services->push_back(DecodeService(h));
      }
    }
  }
}

double RawListing(Raw& r, bool mmsg, size_t& total) {
  const double start = NowMs();
  std::vector<Service> services;
  RawDump(r, mmsg, IPVS_CMD_GET_SERVICE, nullptr, &services);
  total = services.size();
  for (const Service& s : services) {
    Service key = KeyOf(s);
    total += RawDump(r, mmsg, IPVS_CMD_GET_DEST, &key, nullptr);
  }
  return NowMs() - start;
}

// The job's ListAll, without parts: `decode` false counts replies only.
double SocketListing(GenlSocket& socket, bool decode, PackedTable* kept, size_t& total) {
  const double start = NowMs();
  PackedTable fresh;
  PackedTable& table = kept ? *kept : fresh;
  if (kept) {
    kept->services.clear();
    kept->destinations.clear();
  }
  std::vector<Service> services;
  Request dump_services;
  dump_services.command = IPVS_CMD_GET_SERVICE;
  socket.Execute(dump_services, [&](const nlmsghdr* reply) { services.push_back(DecodeService(reply)); });
  total = services.size();
  if (decode) table.services.reserve(services.size() * record::service::kWords);
  constexpr uint32_t kCountAt = record::service::At(record::service::destinationCount);
  for (const Service& service : services) {
    Request dump_destinations;
    dump_destinations.command = IPVS_CMD_GET_DEST;
    dump_destinations.service = KeyOf(service);
    uint32_t count = 0;
    if (!decode) {
      socket.Execute(dump_destinations, [&](const nlmsghdr*) { ++count; });
    } else {
      const size_t record = table.services.size();
      table.AddService(service, 0);
      socket.Execute(dump_destinations, [&](const nlmsghdr* reply) {
        std::vector<uint32_t>& words = table.destinations;
        words.resize(words.size() + record::destination::kWords);
        DecodeDestinationRecord(reply, words.data() + words.size() - record::destination::kWords);
        ++count;
      });
      table.services[record + kCountAt] = count;
    }
    total += count;
  }
  return NowMs() - start;
}

// One long-lived thread that runs jobs handed to it, as a libuv pool thread does.
class Worker {
 public:
  Worker() : thread_([this] { Loop(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void Run(std::function<void()> job) {
    std::unique_lock<std::mutex> lock(mutex_);
    job_ = std::move(job);
    done_ = false;
    wake_.notify_all();
    finished_.wait(lock, [this] { return done_; });
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || job_; });
      if (stop_) return;
      std::function<void()> job = std::move(job_);
      job_ = nullptr;
      lock.unlock();
      job();
      lock.lock();
      done_ = true;
      finished_.notify_all();
    }
  }
  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  std::function<void()> job_;
  bool done_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: dump_probe ROUNDS variant...\n");
    return 2;
  }
  const int rounds = std::atoi(argv[1]);
  if (const char* fresh = std::getenv("DUMP_PROBE_FRESH"); fresh && *fresh == '1') mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  Worker worker;
  std::vector<std::string> variants(argv + 2, argv + argc);
  std::shared_ptr<GenlSocket> socket = GenlSocket::Open("");
  // The raw variants' socket: a second one with dump_floor's options.
  Raw raw;
  raw.fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (raw.fd < 0 || ::bind(raw.fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) Die("raw socket");
  int on = 1, size = 4 << 20;
  setsockopt(raw.fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof(on));
  setsockopt(raw.fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof(on));
  if (setsockopt(raw.fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) setsockopt(raw.fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (setsockopt(raw.fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0) setsockopt(raw.fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  // Resolve the family on the raw socket with the controller (as dump_floor does).
  {
    std::vector<uint8_t> buf(4096, 0);
    auto* h = reinterpret_cast<nlmsghdr*>(buf.data());
    h->nlmsg_type = GENL_ID_CTRL;
    h->nlmsg_flags = NLM_F_REQUEST;
    h->nlmsg_seq = 1;
    auto* g = reinterpret_cast<genlmsghdr*>(buf.data() + NLMSG_HDRLEN);
    g->cmd = CTRL_CMD_GETFAMILY;
    g->version = 1;
    size_t len = NLMSG_HDRLEN + GENL_HDRLEN;
    auto* a = reinterpret_cast<nlattr*>(buf.data() + len);
    a->nla_type = CTRL_ATTR_FAMILY_NAME;
    a->nla_len = NLA_HDRLEN + sizeof("IPVS");
    std::memcpy(buf.data() + len + NLA_HDRLEN, "IPVS", sizeof("IPVS"));
    len += NLA_ALIGN(a->nla_len);
    h->nlmsg_len = static_cast<uint32_t>(len);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(raw.fd, buf.data(), len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) Die("sendto family");
    ssize_t got = ::recv(raw.fd, buf.data(), buf.size(), 0);
    if (got < 0) Die("recv family");
    size_t at = NLMSG_HDRLEN + GENL_HDRLEN;
    while (at + NLA_HDRLEN <= h->nlmsg_len) {
      auto* attr = reinterpret_cast<nlattr*>(buf.data() + at);
      if (attr->nla_len < NLA_HDRLEN) break;
      if ((attr->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID) raw.family = *reinterpret_cast<uint16_t*>(buf.data() + at + NLA_HDRLEN);
      at += NLA_ALIGN(attr->nla_len);
    }
    if (!raw.family) Die("no IPVS family");
  }
  std::map<std::string, std::vector<double>> times;
  std::map<std::string, std::vector<long>> faults;
  std::map<std::string, size_t> totals;
  PackedTable kept;
  for (int round = -1; round < rounds; ++round) {  // round -1: untimed warm-up of each
    for (size_t v = 0; v < variants.size(); ++v) {
      const std::string& name = variants[(v + static_cast<size_t>(round + 1)) % variants.size()];
      size_t total = 0;
      const long f0 = MinorFaults();
      double ms;
      if (name == "floor") ms = RawListing(raw, false, total);
      else if (name == "mmsg") ms = RawListing(raw, true, total);
      else if (name == "socket") ms = SocketListing(*socket, false, nullptr, total);
      else if (name == "decode") ms = SocketListing(*socket, true, nullptr, total);
      else if (name == "decode-reuse") ms = SocketListing(*socket, true, &kept, total);
      else if (name == "decode-thread") {
        const double start = NowMs();
        worker.Run([&] { SocketListing(*socket, true, nullptr, total); });
        ms = NowMs() - start;
      } else if (name == "decode-busy") {
        std::atomic<bool> stop{false};
        std::thread spinner([&] {
          volatile uint64_t n = 0;
          while (!stop.load(std::memory_order_relaxed)) n = n + 1;
        });
        ms = SocketListing(*socket, true, nullptr, total);
        stop = true;
        spinner.join();
      }
      else {
        std::fprintf(stderr, "unknown variant %s\n", name.c_str());
        return 2;
      }
      if (round < 0) continue;
      times[name].push_back(ms);
      faults[name].push_back(MinorFaults() - f0);
      totals[name] = total;
    }
  }
  std::printf("{");
  bool first = true;
  for (auto& [name, ms] : times) {
    std::vector<double> sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    std::vector<long> f = faults[name];
    std::sort(f.begin(), f.end());
    std::printf("%s\"%s\":{\"ms\":%.2f,\"min\":%.2f,\"faults\":%ld,\"records\":%zu}", first ? "" : ",", name.c_str(),
                sorted[sorted.size() / 2], sorted[0], f[f.size() / 2], totals[name]);
    first = false;
  }
  std::printf("}\n");
  return 0;
}
