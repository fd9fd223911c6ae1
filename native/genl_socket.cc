#include "genl_socket.h"

#include <linux/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "ipvs_codec.h"
#include "netns.h"
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
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif
#ifndef NLMSGERR_ATTR_MSG
#define NLMSGERR_ATTR_MSG 1
#endif

namespace ipvs {
namespace {

// What we ask recv() for. The kernel sizes each dump datagram by the largest length the
// socket has ever asked for (up to 32 KiB), and kernels built with init_on_alloc (Debian's)
// clear every allocation: asking for 64 KiB made each destination dump (two datagrams, ~2 KiB
// of data) allocate and clear 64 KiB. A page, at most 8 KiB, still holds every datagram: the
// kernel makes none larger than max(NLMSG_GOODSIZE, this length), and NLMSG_GOODSIZE is under
// a page and under 8 KiB. A larger one would fail loudly (EMSGSIZE), not be cut short.
size_t ReceiveLength() {
  const long page = sysconf(_SC_PAGESIZE);
  return page > 0 && page < 8192 ? static_cast<size_t>(page) : 8192;
}
// Socket buffers we ask for; SO_RCVBUFFORCE goes past rmem_max when we have CAP_NET_ADMIN.
constexpr int kSocketBufferSize = 4 * 1024 * 1024;

const char* CommandName(Command command) {
  static const char* const names[] = {
      "unspec", "new service", "set service", "delete service", "get service", "new destination",
      "set destination", "delete destination", "get destinations", "new daemon", "delete daemon",
      "get daemons", "set config", "get config", "set info", "get info", "zero", "flush"};
  return command <= IPVS_CMD_MAX ? names[command] : "unknown command";
}

// The kernel's extended-ack message, if an error or NLMSG_DONE carries one. The TLVs follow
// the error code, and for an uncapped error also the echoed request.
std::string ExtAckMessage(const nlmsghdr* hdr) {
  if (!(hdr->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  size_t payload = hdr->nlmsg_len - NLMSG_HDRLEN;
  size_t offset = sizeof(int);
  if (hdr->nlmsg_type == NLMSG_ERROR) {
    if (payload < sizeof(nlmsgerr)) return "";
    const auto* err = static_cast<const nlmsgerr*>(nlmsg_data(hdr));
    offset = sizeof(nlmsgerr);
    if (!(hdr->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - NLMSG_HDRLEN;
  }
  if (offset >= payload) return "";
  auto* attrs = reinterpret_cast<nlattr*>(static_cast<uint8_t*>(nlmsg_data(hdr)) + offset);
  int remaining = static_cast<int>(payload - offset);
  nlattr* attr;
  int rem;
  nla_for_each_attr(attr, attrs, remaining, rem) {
    if (nla_type(attr) == NLMSGERR_ATTR_MSG && nla_len(attr) > 0) {
      const char* text = static_cast<const char*>(nla_data(attr));
      return std::string(text, strnlen(text, nla_len(attr)));
    }
  }
  return "";
}

}  // namespace

std::shared_ptr<GenlSocket> GenlSocket::Open(const std::string& netns_path) {
  std::shared_ptr<GenlSocket> socket(new GenlSocket());
  {
    // The socket belongs to the namespace it is created in, for its whole life.
    ScopedNetns in_namespace(netns_path);
    socket->sock_ = nl_socket_alloc();
    if (!socket->sock_) throw SystemError(ENOMEM, "allocate a netlink socket");
    // libnl's own reads (resolving the family) ask for 16 KiB by default, which would set the
    // kernel's dump size for this socket for good (see ReceiveLength); peeking first still
    // lets it read a larger answer.
    nl_socket_set_msg_buf_size(socket->sock_, ReceiveLength());
    nl_socket_enable_msg_peek(socket->sock_);
    int rc = genl_connect(socket->sock_);
    if (rc < 0) throw SystemError(errno ? errno : EPROTO, "connect a generic netlink socket");
  }
  socket->fd_ = nl_socket_get_fd(socket->sock_);
  int on = 1;
  setsockopt(socket->fd_, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof(on));
  setsockopt(socket->fd_, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof(on));
  int size = kSocketBufferSize;
  if (setsockopt(socket->fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(socket->fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (setsockopt(socket->fd_, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(socket->fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  socklen_t len = sizeof(socket->rcvbuf_);
  getsockopt(socket->fd_, SOL_SOCKET, SO_RCVBUF, &socket->rcvbuf_, &len);

  int family = genl_ctrl_resolve(socket->sock_, kGenlFamilyName);
  if (family < 0) {
    // libnl folds errnos together; the controller answers ENOENT for an unknown family.
    if (family == -NLE_OBJ_NOTFOUND) throw SystemError(ENOENT, "resolve the IPVS generic netlink family");
    if (family == -NLE_PERM) throw SystemError(EPERM, "resolve the IPVS generic netlink family");
    throw SystemError(EPROTO, std::string("resolve the IPVS generic netlink family: ") + nl_geterror(family));
  }
  socket->family_ = family;
  socket->buffer_.resize(ReceiveLength());
  return socket;
}

GenlSocket::~GenlSocket() { Close(); }

void GenlSocket::Close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (sock_) {
    nl_socket_free(sock_);
    sock_ = nullptr;
    fd_ = -1;
  }
}

nl_msg* GenlSocket::Build(const Request& request, uint32_t seq, bool want_ack) {
  nl_msg* msg = nlmsg_alloc();
  if (!msg) throw SystemError(ENOMEM, "allocate a netlink message");
  int flags = NLM_F_REQUEST | (request.IsDump() ? NLM_F_DUMP : 0) | (want_ack ? NLM_F_ACK : 0);
  if (!genlmsg_put(msg, NL_AUTO_PORT, seq, family_, 0, flags, request.command, kGenlVersion)) {
    nlmsg_free(msg);
    throw SystemError(ENOMEM, "build a netlink message");
  }
  try {
    EncodeRequest(msg, request);
  } catch (...) {
    nlmsg_free(msg);
    throw;
  }
  return msg;
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

size_t GenlSocket::Receive() {
  for (;;) {
    ssize_t got = ::recv(fd_, buffer_.data(), buffer_.size(), MSG_TRUNC);
    if (got >= 0) {
      if (static_cast<size_t>(got) > buffer_.size()) throw SystemError(EMSGSIZE, "receive a netlink reply");
      return static_cast<size_t>(got);
    }
    if (errno == EINTR) continue;
    throw SystemError(errno, "receive a netlink reply");
  }
}

void GenlSocket::Execute(const Request& request, const std::function<void(const nlmsghdr*)>& on_reply) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!sock_) throw SystemError(EBADF, "use a closed IPVS handle");
  const bool dump = request.IsDump();
  const uint32_t seq = next_seq_++;
  const char* operation = CommandName(request.command);
  nl_msg* msg = Build(request, seq, !dump);
  try {
    Send(nlmsg_hdr(msg), nlmsg_hdr(msg)->nlmsg_len);
  } catch (...) {
    nlmsg_free(msg);
    throw;
  }
  nlmsg_free(msg);

  for (;;) {
    size_t len = Receive();
    auto* hdr = reinterpret_cast<nlmsghdr*>(buffer_.data());
    int remaining = static_cast<int>(len);
    for (; nlmsg_ok(hdr, remaining); hdr = nlmsg_next(hdr, &remaining)) {
      if (hdr->nlmsg_seq != seq) continue;  // a stale answer to an abandoned request
      if (hdr->nlmsg_type == NLMSG_ERROR) {
        if (hdr->nlmsg_len < NLMSG_HDRLEN + sizeof(int)) throw SystemError(EPROTO, operation);
        const auto* err = static_cast<const nlmsgerr*>(nlmsg_data(hdr));
        if (err->error != 0) throw SystemError(-err->error, operation, ExtAckMessage(hdr));
        return;  // the ack that ends a doit request
      }
      if (hdr->nlmsg_type == NLMSG_DONE) {
        int error = 0;
        if (hdr->nlmsg_len >= NLMSG_HDRLEN + sizeof(int)) std::memcpy(&error, nlmsg_data(hdr), sizeof(int));
        if (error < 0) throw SystemError(-error, operation, ExtAckMessage(hdr));
        return;  // the end of a dump
      }
      if (hdr->nlmsg_type == NLMSG_NOOP || hdr->nlmsg_type == NLMSG_OVERRUN) continue;
      try {
        on_reply(hdr);
      } catch (const std::runtime_error& e) {
        throw SystemError(EBADMSG, std::string(operation) + ": " + e.what());
      }
    }
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
// recvmmsg() slots for acks. Acks are well under 1 KiB; a longer datagram is still read (its
// header and errno come first), only the ext-ack text would be cut. No larger than
// ReceiveLength(): the socket's longest receive sizes the kernel's dump datagrams.
constexpr size_t kAckSlots = 64;
constexpr size_t kAckSlotSize = 4 * 1024;
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

void GenlSocket::CollectAcks(uint32_t first_seq, size_t first, size_t end, std::vector<RequestResult>& results,
                             std::vector<uint8_t>& seen, std::vector<uint8_t>& arena, bool& overrun) {
  size_t pending = end - first;
  mmsghdr msgs[kAckSlots];
  iovec iovs[kAckSlots];
  int lost_errno = 0;  // a receive failure other than an overrun
  while (pending > 0) {
    std::memset(msgs, 0, sizeof(msgs));
    for (size_t k = 0; k < kAckSlots; ++k) {
      iovs[k].iov_base = arena.data() + k * kAckSlotSize;
      iovs[k].iov_len = kAckSlotSize;
      msgs[k].msg_hdr.msg_iov = &iovs[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    // Block for the first datagram, then take whatever else is queued. After an overrun we only
    // drain: sendmsg() has returned, so every ack that survived is already queued.
    int got = ::recvmmsg(fd_, msgs, kAckSlots, overrun ? MSG_DONTWAIT : MSG_WAITFORONE, nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        overrun = true;
        continue;
      }
      if (overrun && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      lost_errno = errno;
      break;
    }
    for (int k = 0; k < got; ++k) {
      const uint8_t* data = arena.data() + static_cast<size_t>(k) * kAckSlotSize;
      size_t available = std::min<size_t>(msgs[k].msg_len, kAckSlotSize);
      while (available >= NLMSG_HDRLEN) {
        nlmsghdr hdr;
        std::memcpy(&hdr, data, sizeof(hdr));
        if (hdr.nlmsg_len < NLMSG_HDRLEN) break;
        const bool complete = hdr.nlmsg_len <= available;
        // Only an ack of this chunk counts; anything else (a stale reply) is skipped.
        const uint32_t index = hdr.nlmsg_seq - first_seq;
        if (hdr.nlmsg_type == NLMSG_ERROR && index >= first && index < end && !seen[index] &&
            available >= NLMSG_HDRLEN + sizeof(int)) {
          int error = 0;
          std::memcpy(&error, data + NLMSG_HDRLEN, sizeof(int));
          results[index].error = error <= 0 ? -error : EPROTO;
          if (error != 0 && complete) {
            results[index].kernel_message = ExtAckMessage(reinterpret_cast<const nlmsghdr*>(data));
          }
          seen[index] = 1;
          --pending;
        }
        if (!complete) break;
        size_t step = NLMSG_ALIGN(hdr.nlmsg_len);
        if (step >= available) break;
        data += step;
        available -= step;
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

std::vector<RequestResult> GenlSocket::ExecuteBatch(const std::vector<Request>& requests,
                                                    const BatchOptions& options, BatchStats* stats_out) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!sock_) throw SystemError(EBADF, "use a closed IPVS handle");
  const size_t n = requests.size();
  std::vector<RequestResult> results(n);
  if (n == 0) return results;

  // Encode everything first, back to back as the kernel walks them (NLMSG_ALIGNed), each with
  // NLM_F_ACK and its own sequence number: a request that cannot be encoded fails the whole
  // batch before anything is sent.
  const uint32_t first_seq = next_seq_;
  next_seq_ += static_cast<uint32_t>(n);
  std::vector<uint8_t> wire;
  std::vector<size_t> offsets(n + 1);
  wire.reserve(n * 160);
  for (size_t i = 0; i < n; ++i) {
    if (requests[i].IsDump()) throw SystemError(EINVAL, "a batch cannot contain dump requests");
    offsets[i] = wire.size();
    try {
      AppendRequestMessage(wire, requests[i], static_cast<uint16_t>(family_), first_seq + static_cast<uint32_t>(i),
                           NLM_F_REQUEST | NLM_F_ACK);
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
  std::vector<uint8_t> seen(n, 0);
  std::vector<uint8_t> arena(kAckSlots * kAckSlotSize);
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
    CollectAcks(first_seq, start, end, results, seen, arena, overrun);
    if (overrun) {
      ++stats.overruns;
      // Our estimate was wrong for this kernel: halve the chunk for the rest of the batch.
      if (!options.acks_per_chunk) per_chunk = std::max<size_t>(1, per_chunk / 2);
    }
    start = end;
  }
  if (stats_out) *stats_out = stats;
  return results;
}

}  // namespace ipvs
