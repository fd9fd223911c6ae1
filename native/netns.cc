#include "netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <utility>

#include "bare_thread.h"
#include "system_error.h"

namespace ipvs {

NetnsFd::NetnsFd(std::string path) : path_(std::move(path)) {
  if (path_.empty()) return;
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw SystemError(errno, "open the network namespace", "", path_);
}

NetnsFd::~NetnsFd() {
  if (fd_ >= 0) ::close(fd_);
}

NetnsFd::NetnsFd(NetnsFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

NetnsFd& NetnsFd::operator=(NetnsFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

int NetnsFd::Create(const std::function<int()>& create, const char* operation, const std::string* error_path) const {
  const std::string& failed_path = error_path ? *error_path : path_;
  if (fd_ < 0) {
    int fd = create();
    if (fd < 0) throw SystemError(errno, operation, "", failed_path);
    return fd;
  }
  int fd = -1;
  int error = 0;
  bool entered = false;
  std::exception_ptr thrown;
  // The thread never leaves the namespace: it ends instead. Nothing here allocates unless
  // `create` throws (see bare_thread.h).
  auto work = [&] {
    try {
      if (::setns(fd_, CLONE_NEWNET) != 0) {
        error = errno;
        return;
      }
      entered = true;
      fd = create();
      if (fd < 0) error = errno;
    } catch (...) {
      thrown = std::current_exception();
    }
  };
  BareThread worker;
  if (int start_error = worker.Start(work); start_error != 0)
    throw SystemError(start_error, "start a thread to enter the network namespace", "", path_);
  worker.Join();
  if (thrown) {
    if (fd >= 0) ::close(fd);
    std::rethrow_exception(thrown);
  }
  if (!entered) throw SystemError(error, "enter the network namespace", "", path_);
  if (fd < 0) throw SystemError(error, operation, "", failed_path);
  return fd;
}

}  // namespace ipvs
