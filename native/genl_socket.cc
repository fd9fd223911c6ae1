#include "genl_socket.h"

#include <linux/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <sys/socket.h>

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

// Dump replies are at most 32 KiB per datagram (the kernel's cap); this leaves headroom.
constexpr size_t kReceiveBufferSize = 64 * 1024;
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
  socket->buffer_.resize(kReceiveBufferSize);
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

std::vector<RequestResult> GenlSocket::ExecuteBatch(const std::vector<Request>& requests) {
  std::vector<RequestResult> results(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      Execute(requests[i], [](const nlmsghdr*) {});
    } catch (const SystemError& e) {
      results[i].error = e.error_number();
      results[i].kernel_message = e.kernel_message();
    }
  }
  return results;
}

}  // namespace ipvs
