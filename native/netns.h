// Network namespaces without touching the calling thread: a socket or a /proc/net file is
// created on a short-lived thread of its own that enters the namespace, and only the file
// descriptor comes back. A socket keeps the namespace it was created in, and an open /proc/net
// file the namespace it was opened in, so nothing ever has to leave a namespace again: no
// thread-pool thread calls setns, and there is no restore step that could fail.
#pragma once

#include <functional>
#include <string>

namespace ipvs {

// An open descriptor of a network namespace (e.g. /run/netns/NAME or /proc/PID/ns/net).
// Holding it keeps the namespace alive, so a handle can create a new socket in it later even
// if the path has been unmounted since.
class NetnsFd {
 public:
  NetnsFd() = default;
  // Opens `path`; an empty path means the caller's own namespace (no descriptor).
  // Throws SystemError naming the path.
  explicit NetnsFd(std::string path);
  ~NetnsFd();
  NetnsFd(NetnsFd&& other) noexcept;
  NetnsFd& operator=(NetnsFd&& other) noexcept;
  NetnsFd(const NetnsFd&) = delete;
  NetnsFd& operator=(const NetnsFd&) = delete;

  bool current() const { return fd_ < 0; }
  const std::string& path() const { return path_; }

  // Runs `create` (which returns a new descriptor, or -1 with errno set) inside this namespace
  // and returns its descriptor. In the caller's own namespace it runs on the calling thread;
  // otherwise on a dedicated thread that enters the namespace and then ends (bare_thread.h:
  // `create` should not allocate). Throws SystemError(errno, operation, path) when the thread
  // cannot start, the namespace cannot be entered or `create` fails; a failure of `create` names
  // `error_path` instead of the namespace when given.
  int Create(const std::function<int()>& create, const char* operation, const std::string* error_path = nullptr) const;

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace ipvs
