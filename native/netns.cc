#include "netns.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "system_error.h"

namespace ipvs {

ScopedNetns::ScopedNetns(const std::string& path) {
  if (path.empty()) return;
  original_fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original_fd_ < 0) throw SystemError(errno, "open the current network namespace", "", "/proc/thread-self/ns/net");
  int target = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int err = errno;
    ::close(original_fd_);
    throw SystemError(err, "open the network namespace", "", path);
  }
  int rc = ::setns(target, CLONE_NEWNET);
  int err = errno;
  ::close(target);
  if (rc != 0) {
    ::close(original_fd_);
    throw SystemError(err, "enter the network namespace", "", path);
  }
}

ScopedNetns::~ScopedNetns() {
  if (original_fd_ < 0) return;
  if (::setns(original_fd_, CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "ipvs-netlink: cannot restore a thread's network namespace: %s\n", std::strerror(errno));
    std::abort();
  }
  ::close(original_fd_);
}

}  // namespace ipvs
