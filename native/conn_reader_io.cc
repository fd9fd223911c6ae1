#include "conn_reader_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <system_error>
#include <utility>

#include "netns.h"
#include "system_error.h"

namespace ipvs {

namespace {

// Before Linux 6.14 every read() of the table rescans the kernel hash table from the start
// and returns at most a page, so a small buffer multiplies the kernel's work; a large one
// costs nothing and lets each read() return everything the kernel will give.
constexpr size_t kReadBufferBytes = 256 * 1024;
// The read-ahead thread hands over a chunk once it holds this much (a read of the kernel's
// table returns about a page), and keeps at most kChunks in flight. Every read() asks for at
// least kReadBytes, as much as cat does.
constexpr size_t kChunkBytes = 64 * 1024;
constexpr size_t kReadBytes = 128 * 1024;
constexpr size_t kChunkBufferBytes = kChunkBytes + kReadBytes;
constexpr size_t kChunks = 8;

}  // namespace

std::string TablePath(const TableSource& source) {
  if (!source.path.empty()) return source.path;
  return source.sync ? "/proc/net/ip_vs_conn_sync" : "/proc/net/ip_vs_conn";
}

TableFile::TableFile(const TableSource& source) : path_(TablePath(source)) {
  if (!source.path.empty()) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw SystemError(errno, "open the IPVS connection table", "", path_);
    return;
  }
  // thread-self, not self: /proc/self/net is the namespace of the process's main thread, and
  // the file is opened by a thread that entered the namespace.
  const char* own = source.sync ? "/proc/thread-self/net/ip_vs_conn_sync" : "/proc/thread-self/net/ip_vs_conn";
  const std::string& path = path_;
  fd_ = NetnsFd(source.netns).Create(
      [own, &path] {
        int fd = ::open(own, O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw SystemError(errno, "open the IPVS connection table", "", path);
        return fd;
      },
      "open the IPVS connection table");
}

TableFile::~TableFile() {
  if (fd_ >= 0) ::close(fd_);
}

size_t TableFile::Read(char* data, size_t size) {
  for (;;) {
    ssize_t n = ::read(fd_, data, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) throw SystemError(errno, "read the IPVS connection table", "", path_);
  }
}

TableReader::TableReader(const TableSource& source) : file_(source), buffer_(kReadBufferBytes) {}

ReadAheadReader::ReadAheadReader(const TableSource& source) : file_(source) {
  try {
    thread_ = std::thread([this] { Produce(); });
  } catch (const std::system_error& e) {
    throw SystemError(e.code().value() ? e.code().value() : EAGAIN, "start the connection table reader thread");
  }
}

ReadAheadReader::~ReadAheadReader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

bool ReadAheadReader::Next(Chunk* chunk) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !full_.empty() || finished_; });
  if (!full_.empty()) {
    *chunk = std::move(full_.front());
    full_.pop_front();
    return true;
  }
  if (error_ != 0) throw SystemError(error_, "read the IPVS connection table", "", file_.path());
  return false;
}

void ReadAheadReader::Recycle(Buffer&& buffer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(buffer));
  }
  changed_.notify_all();
}

void ReadAheadReader::Produce() {
  for (;;) {
    Buffer buffer;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return !free_.empty() || allocated_ < kChunks || cancelled_; });
      if (cancelled_) return;
      if (!free_.empty()) {
        buffer = std::move(free_.back());
        free_.pop_back();
      } else {
        ++allocated_;
      }
    }
    size_t size = 0;
    int error = 0;
    bool eof = false;
    if (!buffer) buffer.reset(new (std::nothrow) char[kChunkBufferBytes]);
    if (!buffer) error = ENOMEM;
    while (buffer && size < kChunkBytes) {
      try {
        size_t n = file_.Read(buffer.get() + size, kChunkBufferBytes - size);
        if (n == 0) {
          eof = true;
          break;
        }
        size += n;
      } catch (const SystemError& e) {
        error = e.error_number();
        break;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (size > 0) full_.push_back(Chunk{std::move(buffer), size});
      if (error != 0 || eof) {
        error_ = error;
        finished_ = true;
      }
    }
    changed_.notify_all();
    if (error != 0 || eof) return;
  }
}

}  // namespace ipvs
