#include "genl_socket.h"

#include <linux/netlink.h>
#include <netinet/in.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "fault_hooks.h"
#include "ip_vs_constants.h"
#include "ipvs_codec.h"
#include "netlink_ack.h"
#include "system_error.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

namespace ipvs {
namespace {

// Points `count` receive slots of `slot_size` bytes each, laid out back to back from `base`, at
// their buffers, for recvmmsg().
void PrepareSlots(mmsghdr* messages, iovec* vectors, uint8_t* base, size_t slot_size, size_t count) {
  std::memset(messages, 0, count * sizeof(mmsghdr));
  for (size_t k = 0; k < count; ++k) {
    vectors[k].iov_base = base + k * slot_size;
    vectors[k].iov_len = slot_size;
    messages[k].msg_hdr.msg_iov = &vectors[k];
    messages[k].msg_hdr.msg_iovlen = 1;
  }
}

// What we ask recv() for. The kernel sizes each dump datagram by the largest length the
// socket has ever asked for (up to 32 KiB), and kernels built with init_on_alloc (Debian's)
// clear every allocation, so a long receive makes every datagram of every dump allocate and
// clear that much. A page, at most 8 KiB, still holds every datagram: the kernel makes none
// larger than max(NLMSG_GOODSIZE, this length), and NLMSG_GOODSIZE is under a page and under
// 8 KiB. A larger one would fail loudly (EMSGSIZE), not be cut short.
size_t ReceiveLength() {
  const long page = sysconf(_SC_PAGESIZE);
  return page > 0 && page < 8192 ? static_cast<size_t>(page) : 8192;
}
// recvmmsg() slots for acks. Acks are well under 1 KiB; a longer datagram is still read (its
// header and errno come first), only the ext-ack text would be cut. No larger than
// ReceiveLength(): the socket's longest receive sizes the kernel's dump datagrams.
constexpr size_t kAckSlots = 64;
constexpr size_t kAckSlotSize = 4 * 1024;
// Socket buffers we ask for; SO_RCVBUFFORCE goes past rmem_max when we have CAP_NET_ADMIN.
constexpr int kSocketBufferSize = 4 * 1024 * 1024;

const char* CommandName(Command command) {
  static const char* const names[] = {
      "unspec", "new service", "set service", "delete service", "get service", "new destination",
      "set destination", "delete destination", "get destinations", "new daemon", "delete daemon",
      "get daemons", "set config", "get config", "set info", "get info", "zero", "flush"};
  return command <= IPVS_CMD_MAX ? names[command] : "unknown command";
}

std::string ExtAckText(const nlmsghdr* hdr, size_t available) {
  return std::string(netlink::ExtAckMessage(reinterpret_cast<const uint8_t*>(hdr), available));
}

}  // namespace

// A batch's encodings come to 100-300 bytes a request; the wire grows past this if needed.
constexpr size_t kWireBytesPerRequest = 160;

BatchBuffers::BatchBuffers(size_t count) : offsets(count + 1), seen(count, 0), results(count) {
  wire.reserve(count * kWireBytesPerRequest);
}

GenlSocket::GenlSocket(std::string netns_path) : netns_path_(std::move(netns_path)) {
  prepared_ = nl_socket_alloc();
  request_.reserve(1024);
  acks_.reserve(kAckSlots);
}

std::shared_ptr<GenlSocket> GenlSocket::Prepare(std::string netns_path) {
  return std::shared_ptr<GenlSocket>(new GenlSocket(std::move(netns_path)));
}

std::shared_ptr<GenlSocket> GenlSocket::Open(std::string netns_path) {
  std::shared_ptr<GenlSocket> socket = Prepare(std::move(netns_path));
  socket->Connect();
  return socket;
}

void GenlSocket::Connect() {
  if (!netns_open_) {
    netns_ = NetnsFd(std::move(netns_path_));
    netns_open_ = true;
  }
  if (!slots_) {
    slots_ = MappedBuffer::Map(std::max(kReceiveSlots * ReceiveLength(), kAckSlots * kAckSlotSize));
    if (!slots_) throw SystemError(ENOMEM, "map the netlink receive buffers");
  }
  // The socket belongs to the namespace it is created in, for its whole life. Binding it
  // assigns its port id, which libnl reads when it adopts the descriptor.
  int fd = netns_.Create(
      [] {
        int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
        if (fd < 0) return -1;
        sockaddr_nl local{};
        local.nl_family = AF_NETLINK;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
          int err = errno;
          ::close(fd);
          errno = err;
          return -1;
        }
        return fd;
      },
      "create a generic netlink socket");
  nl_sock* sock = std::exchange(prepared_, nullptr);
  if (!sock) sock = nl_socket_alloc();
  if (!sock) {
    ::close(fd);
    throw SystemError(ENOMEM, "allocate a netlink socket");
  }
  int rc = nl_socket_set_fd(sock, NETLINK_GENERIC, fd);
  if (rc < 0) {
    nl_socket_free(sock);
    ::close(fd);
    throw SystemError(EPROTO, std::string("adopt a netlink socket: ") + nl_geterror(rc));
  }
  // From here nl_socket_free() closes fd.
  // libnl's own reads (resolving the family) ask for 16 KiB by default, which would set the
  // kernel's dump size for this socket for good (see ReceiveLength); peeking first still
  // lets it read a larger answer.
  nl_socket_set_msg_buf_size(sock, ReceiveLength());
  nl_socket_enable_msg_peek(sock);
  int on = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof(on));
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof(on));
  int size = kSocketBufferSize;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  int rcvbuf = 0;
  socklen_t len = sizeof(rcvbuf);
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len);

  int family = genl_ctrl_resolve(sock, kGenlFamilyName);
  if (family < 0) {
    nl_socket_free(sock);
    // libnl folds errnos together; the controller answers ENOENT for an unknown family.
    if (family == -NLE_OBJ_NOTFOUND) throw SystemError(ENOENT, "resolve the IPVS generic netlink family");
    if (family == -NLE_PERM) throw SystemError(EPERM, "resolve the IPVS generic netlink family");
    throw SystemError(EPROTO, std::string("resolve the IPVS generic netlink family: ") + nl_geterror(family));
  }
  sock_ = sock;
  fd_ = fd;
  rcvbuf_ = rcvbuf;
  family_ = family;
  slot_size_ = ReceiveLength();
}

void GenlSocket::Disconnect() {
  if (sock_) nl_socket_free(sock_);
  sock_ = nullptr;
  fd_ = -1;
}

void GenlSocket::EnsureConnected() {
  if (closed_) throw SystemError(EBADF, "use a closed IPVS handle");
  if (!sock_) {
    Connect();  // the socket was given up on after a failure; throws if the namespace is gone
    ++faults::reconnects;
  }
}

GenlSocket::~GenlSocket() {
  Close();
  if (prepared_) nl_socket_free(prepared_);
}

void GenlSocket::Close() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
  Disconnect();
  if (info_fd_ >= 0) ::close(info_fd_);
  info_fd_ = -2;
}

int64_t GenlSocket::ServiceCount() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) throw SystemError(EBADF, "use a closed IPVS handle");
  if (info_fd_ == -1) {
    try {
      info_fd_ = netns_.Create([] { return ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); }, "create an IPv4 socket");
    } catch (const SystemError&) {
      info_fd_ = -2;  // e.g. a kernel without IPv4: dumps go unchecked
    }
  }
  if (info_fd_ < 0) return -1;
  IpVsGetInfo info{};
  socklen_t length = sizeof(info);
  if (::getsockopt(info_fd_, IPPROTO_IP, IP_VS_SO_GET_INFO, &info, &length) != 0 || length != sizeof(info)) return -1;
  return static_cast<int64_t>(info.num_services) + faults::service_count_bias.load(std::memory_order_relaxed);
}

void GenlSocket::Send(const void* data, size_t len) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t sent = ::sendto(fd_, data, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
    if (sent >= 0) return;
    if (errno == EINTR) continue;
    throw SystemError(errno, "send a netlink request");
  }
}

bool GenlSocket::WaitReadable(int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    int rc = ::poll(&pfd, 1, static_cast<int>(left));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) throw SystemError(errno, "wait for a netlink reply");
  }
}

size_t GenlSocket::Receive(const char* operation) {
  // Try first, wait only when nothing is queued: a doit's answer is queued while the request
  // is sent, and a dump's next datagram while the last one is read, so a poll() before every
  // read would mostly be a wasted system call. Each slot asks for ReceiveLength() bytes: the
  // socket's longest read sizes the kernel's dump datagrams (see ReceiveLength).
  for (;;) {
    PrepareSlots(messages_, vectors_, SlotBytes(), slot_size_, kReceiveSlots);
    int got = ::recvmmsg(fd_, messages_, kReceiveSlots, MSG_TRUNC | MSG_DONTWAIT, nullptr);
    if (got > 0) {
      size_t kept = 0;
      for (int k = 0; k < got; ++k) {
        const size_t len = messages_[k].msg_len;
        if (len > slot_size_ || (messages_[k].msg_hdr.msg_flags & MSG_TRUNC))
          throw SystemError(EMSGSIZE, "receive a netlink reply");
        slot_lengths_[k] = faults::DropAck(SlotBytes() + k * slot_size_, len) ? 0 : len;
        if (slot_lengths_[k]) ++kept;
      }
      if (kept) return static_cast<size_t>(got);
      continue;  // every datagram was an ack the tests chose to lose
    }
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) throw SystemError(errno, "receive a netlink reply");
    if (!WaitReadable(faults::reply_timeout_ms.load(std::memory_order_relaxed)))
      throw SystemError(ETIMEDOUT, operation);
  }
}

const nlmsghdr* GenlSocket::Slot(size_t k) const {
  return reinterpret_cast<const nlmsghdr*>(SlotBytes() + k * slot_size_);
}

bool GenlSocket::DumpEndsIn(uint32_t seq, size_t from, size_t count) const {
  for (size_t k = from; k < count; ++k) {
    const nlmsghdr* hdr = Slot(k);
    int remaining = static_cast<int>(slot_lengths_[k]);
    for (; nlmsg_ok(hdr, remaining); hdr = nlmsg_next(const_cast<nlmsghdr*>(hdr), &remaining)) {
      if (hdr->nlmsg_seq == seq && (hdr->nlmsg_type == NLMSG_DONE || hdr->nlmsg_type == NLMSG_ERROR)) return true;
    }
  }
  return false;
}

void GenlSocket::Execute(const Request& request, const std::function<void(const nlmsghdr*)>& on_reply) {
  std::lock_guard<std::mutex> lock(mutex_);
  EnsureConnected();
  const bool dump = request.IsDump();
  const uint32_t seq = next_seq_++;
  const char* operation = CommandName(request.command);
  request_.clear();
  try {
    AppendRequestMessage(request_, request, static_cast<uint16_t>(family_), seq,
                         NLM_F_REQUEST | (dump ? NLM_F_DUMP : NLM_F_ACK));
  } catch (const std::runtime_error& e) {
    throw SystemError(EMSGSIZE, std::string("encode a request: ") + e.what());
  }
  Send(request_.data(), request_.size());

  bool answered = false;  // the kernel's last word (ack, error or NLMSG_DONE) was read
  size_t replies = 0;
  size_t count = 0;    // datagrams in the slots
  size_t current = 0;  // the slot being walked
  try {
    for (;;) {
      count = Receive(operation);
      for (current = 0; current < count; ++current) {
        const nlmsghdr* hdr = Slot(current);
        int remaining = static_cast<int>(SlotLength(current));
        for (; nlmsg_ok(hdr, remaining); hdr = nlmsg_next(const_cast<nlmsghdr*>(hdr), &remaining)) {
          if (hdr->nlmsg_seq != seq) continue;  // a stale answer to an abandoned request
          if (hdr->nlmsg_type == NLMSG_ERROR) {
            answered = true;
            if (hdr->nlmsg_len < NLMSG_HDRLEN + sizeof(int)) throw SystemError(EPROTO, operation);
            const auto* err = static_cast<const nlmsgerr*>(nlmsg_data(hdr));
            if (err->error != 0) throw SystemError(-err->error, operation, ExtAckText(hdr, hdr->nlmsg_len));
            return;  // the ack that ends a doit request
          }
          if (hdr->nlmsg_type == NLMSG_DONE) {
            answered = true;
            int error = 0;
            if (hdr->nlmsg_len >= NLMSG_HDRLEN + sizeof(int))
              std::memcpy(&error, nlmsg_data(hdr), sizeof(int));
            if (error < 0) throw SystemError(-error, operation, ExtAckText(hdr, hdr->nlmsg_len));
            return;  // the end of a dump
          }
          if (hdr->nlmsg_type == NLMSG_NOOP || hdr->nlmsg_type == NLMSG_OVERRUN) continue;
          if (dump && faults::FailDumpNow(replies)) throw SystemError(EBADMSG, std::string(operation) + ": injected fault");
          ++replies;
          try {
            on_reply(hdr);
          } catch (const std::runtime_error& e) {
            throw SystemError(EBADMSG, std::string(operation) + ": " + e.what());
          }
        }
      }
    }
  } catch (...) {
    // A doit's late ack is skipped by its sequence number; a dump still running would make
    // the kernel refuse the next dump on this socket with EBUSY. Its end may already be in a
    // slot read with the failing datagram (or be that datagram, after the failing message).
    if (dump && !answered) FinishAbandonedDump(seq, current, count);
    throw;
  }
}

void GenlSocket::FinishAbandonedDump(uint32_t seq, size_t read_from, size_t read_count) {
  if (!faults::skip_drain.exchange(false)) {
    if (DumpEndsIn(seq, read_from, read_count)) {
      ++faults::drained_dumps;
      return;
    }
    try {
      for (;;) {
        const size_t count = Receive("finish an abandoned dump");
        if (DumpEndsIn(seq, 0, count)) {
          ++faults::drained_dumps;
          return;
        }
      }
    } catch (const SystemError&) {
      // Timed out or the socket failed: start again with a new one.
    }
  }
  Disconnect();
  try {
    Connect();
    ++faults::reconnects;
  } catch (const SystemError&) {
    // Left disconnected: the next call tries again, and reports why if it still cannot.
  }
}

// ---- batches --------------------------------------------------------------------------------
//
// The kernel runs every message of one sendmsg() in a loop (netlink_rcv_skb), answering each
// with its own ack or error and carrying on after an error, all before sendmsg() returns. The
// acks are queued to our socket without blocking: one that does not fit the receive buffer is
// dropped, the socket is marked congested (so every later ack of the chunk is dropped too) and
// the next recv() fails with ENOBUFS. So each chunk is sized for all its acks to fit at once.

namespace {

// Size a chunk's acks at 2 KiB each and fill at most half the receive buffer. Each ack is its
// own skb charged at its truesize: with NETLINK_CAP_ACK the message is 36 bytes (nlmsghdr +
// nlmsgerr with only the request's header), plus a few hundred bytes of ext-ack TLVs on an
// error; the head is slab-rounded and includes skb_shared_info (320 B), and the sk_buff adds
// ~256 B, so truesize is ~768 B on 6.1 (kmalloc-512 head), ~1 KiB on 6.3+ (small-head cache)
// and up to ~1.3 KiB for an error with a message. rcvbuf_ is sk_rcvbuf, the kernel's doubled
// value: 8 MiB after SO_RCVBUFFORCE(4 MiB), so (8 MiB / 2) / 2 KiB = 2048 requests per chunk
// (~4x headroom over the real cost); 104 per chunk at the default rmem_max of 212992.
constexpr size_t kAckCost = 2048;
// netlink_sendmsg() refuses a datagram longer than sk_sndbuf - 32 with EMSGSIZE.
constexpr size_t kSendOverhead = 32;

int SocketBuffer(int fd, int option) {
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, option, &value, &len) != 0) return 0;
  return value;
}

}  // namespace

size_t GenlSocket::AcksPerChunk() const {
  size_t budget = static_cast<size_t>(rcvbuf_ > 0 ? rcvbuf_ : 0) / 2;
  return std::max<size_t>(1, budget / kAckCost);
}

size_t GenlSocket::SendBudget() const {
  int sndbuf = SocketBuffer(fd_, SO_SNDBUF);
  if (sndbuf <= static_cast<int>(kSendOverhead) + 4096) return 4096;
  return static_cast<size_t>(sndbuf) - kSendOverhead;
}

void GenlSocket::CollectAcks(uint32_t first_seq, size_t first, size_t end, BatchBuffers& batch, bool& overrun) {
  std::vector<RequestResult>& results = batch.results;
  std::vector<uint8_t>& seen = batch.seen;
  std::vector<netlink::Ack>& acks = acks_;
  uint8_t* const arena = SlotBytes();
  size_t pending = end - first;
  mmsghdr msgs[kAckSlots];
  iovec iovs[kAckSlots];
  int lost_errno = 0;  // a receive failure other than an overrun
  // The kernel answers a whole chunk inside sendmsg(), so its acks are normally queued by the
  // time we read: read first, and wait (bounded) only when nothing is there. After an overrun
  // we only drain: every ack that survived is already queued.
  bool wait = false;
  while (pending > 0) {
    if (wait && !overrun && !WaitReadable(faults::reply_timeout_ms.load(std::memory_order_relaxed))) {
      lost_errno = ETIMEDOUT;
      break;
    }
    wait = false;
    PrepareSlots(msgs, iovs, arena, kAckSlotSize, kAckSlots);
    int got = ::recvmmsg(fd_, msgs, kAckSlots, MSG_DONTWAIT, nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        overrun = true;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (overrun) break;
        wait = true;
        continue;
      }
      lost_errno = errno;
      break;
    }
    for (int k = 0; k < got; ++k) {
      const uint8_t* data = arena + static_cast<size_t>(k) * kAckSlotSize;
      const size_t available = std::min<size_t>(msgs[k].msg_len, kAckSlotSize);
      if (faults::DropAck(data, available)) continue;
      acks.clear();
      netlink::ParseAcks(data, available, &acks);
      for (const netlink::Ack& ack : acks) {
        // Only an ack of this chunk counts; anything else (a stale reply) is skipped.
        const uint32_t index = ack.seq - first_seq;
        if (index < first || index >= end || seen[index]) continue;
        results[index].error = ack.error;
        if (ack.error != 0) results[index].kernel_message.assign(ack.message);
        seen[index] = 1;
        --pending;
      }
    }
  }
  if (pending == 0) return;
  // Never guess: a request whose ack was not read may or may not have been applied.
  for (size_t i = first; i < end; ++i) {
    if (seen[i]) continue;
    results[i].unknown = true;
    results[i].error = lost_errno ? lost_errno : ENOBUFS;
  }
}

void GenlSocket::ExecuteBatch(const BatchEncoder& encode, BatchBuffers& batch, const BatchOptions& options,
                              BatchStats* stats_out) {
  std::lock_guard<std::mutex> lock(mutex_);
  EnsureConnected();
  const size_t n = batch.results.size();
  if (n == 0) return;
  std::vector<RequestResult>& results = batch.results;
  std::vector<uint8_t>& wire = batch.wire;
  std::vector<size_t>& offsets = batch.offsets;

  // Encode everything first, back to back as the kernel walks them (NLMSG_ALIGNed), each with
  // NLM_F_ACK and its own sequence number: a request that cannot be encoded fails the whole
  // batch before anything is sent.
  const uint32_t first_seq = next_seq_;
  next_seq_ += static_cast<uint32_t>(n);
  for (size_t i = 0; i < n; ++i) {
    offsets[i] = wire.size();
    try {
      encode(i, static_cast<uint16_t>(family_), first_seq + static_cast<uint32_t>(i), wire);
    } catch (const SystemError&) {
      throw;
    } catch (const std::runtime_error& e) {
      throw SystemError(EMSGSIZE, std::string("encode batch request ") + std::to_string(i) + ": " + e.what());
    }
  }
  offsets[n] = wire.size();

  // A test may shrink the receive buffer for this batch; put the real size back afterwards.
  struct RestoreReceiveBuffer {
    GenlSocket* self;
    int original;
    ~RestoreReceiveBuffer() {
      if (!original) return;
      int half = original / 2;  // the kernel doubles what it is given
      if (setsockopt(self->fd_, SOL_SOCKET, SO_RCVBUFFORCE, &half, sizeof(half)) != 0)
        setsockopt(self->fd_, SOL_SOCKET, SO_RCVBUF, &half, sizeof(half));
      self->rcvbuf_ = SocketBuffer(self->fd_, SO_RCVBUF);
    }
  } restore{this, 0};
  if (options.receive_buffer > 0) {
    restore.original = rcvbuf_;
    int size = options.receive_buffer;
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0)
      throw SystemError(errno, "set the receive buffer size");
    rcvbuf_ = SocketBuffer(fd_, SO_RCVBUF);
  }

  const size_t send_budget = SendBudget();
  size_t per_chunk = options.acks_per_chunk ? options.acks_per_chunk : AcksPerChunk();
  BatchStats stats;
  for (size_t start = 0; start < n;) {
    size_t end = start + 1;  // a chunk always takes at least one request
    while (end < n && end - start < per_chunk && offsets[end + 1] - offsets[start] <= send_budget) ++end;
    try {
      Send(wire.data() + offsets[start], offsets[end] - offsets[start]);
    } catch (const SystemError& e) {
      // sendmsg() fails before the kernel sees any of the datagram: nothing here was applied.
      for (size_t i = start; i < end; ++i) results[i].error = e.error_number();
      start = end;
      continue;
    }
    ++stats.send_calls;
    bool overrun = false;
    CollectAcks(first_seq, start, end, batch, overrun);
    if (overrun) {
      ++stats.overruns;
      // Our estimate was wrong for this kernel: halve the chunk for the rest of the batch.
      if (!options.acks_per_chunk) per_chunk = std::max<size_t>(1, per_chunk / 2);
    }
    start = end;
  }
  if (stats_out) *stats_out = stats;
}

}  // namespace ipvs
