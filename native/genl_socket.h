// The transport: one generic-netlink socket bound to the IPVS family, in the network
// namespace it was opened in. Sends requests, reads replies and acks itself (so the kernel's
// errno and extended-ack message reach the caller intact), and never runs on the JS thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <sys/socket.h>

#include "mapped_buffer.h"
#include "netlink_ack.h"
#include "netns.h"

struct nl_sock;
struct nlmsghdr;

namespace ipvs {

struct Request;

// The outcome of one request in a batch: 0 or a positive errno, and the kernel's message.
struct RequestResult {
  int error = 0;
  std::string kernel_message;
  bool unknown = false;  // no answer could be read (the receive buffer overflowed)
};

// Knobs for ExecuteBatch. The defaults are what production uses; the others exist so tests
// can force many chunks, or a real receive-buffer overrun, with a small batch.
struct BatchOptions {
  size_t acks_per_chunk = 0;  // 0: derived from the receive buffer; otherwise exactly this many
  int receive_buffer = 0;     // >0: SO_RCVBUF for this batch only (restored afterwards)
};

// A batch's memory: its encoded requests, where each starts, which were answered, and their
// results. Sized where the batch is queued (the JS thread), so that the thread-pool thread
// that runs it allocates nothing for it (a request past the estimated size still grows `wire`).
struct BatchBuffers {
  explicit BatchBuffers(size_t count);
  std::vector<uint8_t> wire;
  std::vector<size_t> offsets;
  std::vector<uint8_t> seen;
  std::vector<RequestResult> results;  // one per request
};

// What a batch cost, for benchmarks and tests.
struct BatchStats {
  size_t send_calls = 0;  // sendmsg()/sendto() calls that carried requests
  size_t overruns = 0;    // chunks whose acks were partly lost (ENOBUFS)
};

// Every wait for the kernel is bounded. The kernel queues a request's answer before sendmsg()
// returns, and produces each further dump datagram inside recvmsg(), so a reply that takes
// this long is lost: the call fails with ETIMEDOUT.
constexpr int kDefaultReplyTimeoutMs = 10000;

class GenlSocket {
 public:
  // Opens the socket inside the network namespace at `netns_path` (empty: the caller's) and
  // resolves the IPVS family. Throws SystemError; ENOENT means IPVS is not in this kernel.
  // The namespace stays open with the socket, so the socket can be replaced in it later.
  static std::shared_ptr<GenlSocket> Open(std::string netns_path);
  // Open in two steps: Prepare makes no system call and allocates what lives as long as the
  // socket, on the calling thread (the JS thread); Connect then opens the namespace and the
  // socket and resolves the family (on a thread-pool thread, before the socket is shared).
  // Memory kept past a call on a pool thread would sit in that thread's malloc arena and pin
  // what is allocated around it.
  static std::shared_ptr<GenlSocket> Prepare(std::string netns_path);
  void Connect();
  ~GenlSocket();

  GenlSocket(const GenlSocket&) = delete;
  GenlSocket& operator=(const GenlSocket&) = delete;

  // Sends one request and waits for its answer. Every reply message (the dump's entries, or a
  // doit's single reply) is passed to `on_reply`. Throws SystemError with the kernel's errno,
  // ETIMEDOUT when no answer comes, or EBADMSG when `on_reply` throws. A dump left unfinished
  // (by an error of ours, not the kernel's) is read to its end before this returns, or the
  // socket is replaced, so the next dump does not meet EBUSY.
  void Execute(const Request& request, const std::function<void(const nlmsghdr*)>& on_reply);

  // Writes request `index` of a batch, its message with this family and sequence number, at
  // the end of `out`. Throws SystemError to refuse the request (the whole batch fails), or
  // std::runtime_error when it cannot be encoded (EMSGSIZE).
  using BatchEncoder = std::function<void(size_t index, uint16_t family, uint32_t seq, std::vector<uint8_t>& out)>;

  // Sends `batch.results.size()` non-dump requests, written by `encode`, in as few sendmsg()
  // calls as the buffers allow and fills one result per request, in order. Every request is
  // encoded before the first is sent. Never throws for a request's own failure; throws
  // SystemError only before anything was sent (a request that is refused or cannot be encoded).
  void ExecuteBatch(const BatchEncoder& encode, BatchBuffers& batch, const BatchOptions& options = {},
                    BatchStats* stats = nullptr);

  // How many IPv4 services the namespace has (IP_VS_SO_GET_INFO, on an AF_INET socket made in
  // the namespace on first use; that interface predates IPv6 and counts no IPv6 service), or -1
  // when it does not answer.
  int64_t ServiceCount();

  void Close();
  bool closed() const { return closed_; }

 private:
  explicit GenlSocket(std::string netns_path);
  void Disconnect();  // frees sock_
  void EnsureConnected();  // throws EBADF once closed; replaces a socket given up on
  // `read_from`..`read_count`: the slots of the last Receive not yet looked at.
  void FinishAbandonedDump(uint32_t seq, size_t read_from, size_t read_count);
  void Send(const void* data, size_t len);
  bool WaitReadable(int timeout_ms);  // false when the time ran out
  // Every datagram already queued, at least one (waiting for it up to the reply timeout),
  // into the receive slots; returns how many. Reading a dump's datagram makes the kernel queue
  // the next one (or its NLMSG_DONE) at once, so one call usually takes a dump to its end.
  size_t Receive(const char* operation);
  uint8_t* SlotBytes() const { return reinterpret_cast<uint8_t*>(slots_.data()); }
  const nlmsghdr* Slot(size_t k) const;  // the first message of slot k of the last Receive
  size_t SlotLength(size_t k) const { return slot_lengths_[k]; }
  // Whether slots [from, count) of the last Receive hold the end of the dump `seq`.
  bool DumpEndsIn(uint32_t seq, size_t from, size_t count) const;
  // Batch helpers (mutex_ held).
  size_t AcksPerChunk() const;
  size_t SendBudget() const;
  void CollectAcks(uint32_t first_seq, size_t first, size_t end, BatchBuffers& batch, bool& overrun);

  std::mutex mutex_;  // the handle's queue already orders calls; this guards against misuse
  std::string netns_path_;  // until Connect opens it
  NetnsFd netns_;
  bool netns_open_ = false;
  nl_sock* prepared_ = nullptr;  // allocated by Prepare, adopted by the first Connect
  bool closed_ = false;
  nl_sock* sock_ = nullptr;  // null after Close, or after a failed replacement (retried on use)
  int fd_ = -1;
  int info_fd_ = -1;  // ServiceCount's socket; -2 once it could not be made
  int family_ = 0;
  uint32_t next_seq_ = 1;
  int rcvbuf_ = 0;
  static constexpr size_t kReceiveSlots = 16;
  // kReceiveSlots datagrams of slot_size_ bytes for replies, or a batch's ack slots; mapped
  // once per socket.
  MappedBuffer slots_;
  size_t slot_size_ = 0;
  size_t slot_lengths_[kReceiveSlots] = {};
  mmsghdr messages_[kReceiveSlots];
  iovec vectors_[kReceiveSlots];
  std::vector<uint8_t> request_;  // the request being sent, encoded (reused)
  std::vector<netlink::Ack> acks_;  // one ack datagram's acks (reused)
};

}  // namespace ipvs
