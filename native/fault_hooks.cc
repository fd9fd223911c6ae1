#include "fault_hooks.h"

#include <linux/netlink.h>

#include <cstring>

#include "genl_socket.h"

namespace ipvs::faults {

std::atomic<int> reply_timeout_ms{kDefaultReplyTimeoutMs};
std::atomic<int> drop_acks{0};
std::atomic<int> fail_dump_after{-1};
std::atomic<bool> skip_drain{false};
std::atomic<int> service_count_bias{0};
std::atomic<uint64_t> drained_dumps{0};
std::atomic<uint64_t> reconnects{0};
std::atomic<uint64_t> repeated_services{0};
std::atomic<uint64_t> repeated_dumps{0};

bool DropAck(const uint8_t* datagram, size_t length) {
  if (drop_acks.load(std::memory_order_relaxed) <= 0 || length < NLMSG_HDRLEN) return false;
  nlmsghdr hdr;
  std::memcpy(&hdr, datagram, sizeof(hdr));
  if (hdr.nlmsg_type != NLMSG_ERROR) return false;
  int left = drop_acks.load();
  while (left > 0 && !drop_acks.compare_exchange_weak(left, left - 1)) {
  }
  return left > 0;
}

bool FailDumpNow(size_t replies) {
  int after = fail_dump_after.load(std::memory_order_relaxed);
  if (after < 0 || replies < static_cast<size_t>(after)) return false;
  return fail_dump_after.compare_exchange_strong(after, -1);
}

}  // namespace ipvs::faults
