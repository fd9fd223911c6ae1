#include "conn_reader_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
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
// table returns about a page), and keeps at most ReadAheadReader::kChunks in flight. Every read() asks for at
// least kReadBytes, as much as cat does.
constexpr size_t kChunkBytes = 64 * 1024;
constexpr size_t kReadBytes = 128 * 1024;
constexpr size_t kChunkBufferBytes = kChunkBytes + kReadBytes;

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
  fd_ = NetnsFd(source.netns).Create([own] { return ::open(own, O_RDONLY | O_CLOEXEC); },
                                     "open the IPVS connection table", &path_);
}

TableFile::~TableFile() {
  if (fd_ >= 0) ::close(fd_);
}

size_t TableFile::Read(char* data, size_t size) {
  const ssize_t n = ReadOrError(data, size);
  if (n < 0) throw SystemError(static_cast<int>(-n), "read the IPVS connection table", "", path_);
  return static_cast<size_t>(n);
}

ssize_t TableFile::ReadOrError(char* data, size_t size) {
  for (;;) {
    ssize_t n = ::read(fd_, data, size);
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

TableReader::TableReader(const TableSource& source) : file_(source), buffer_(MappedBuffer::Map(kReadBufferBytes)) {
  if (!buffer_) throw SystemError(ENOMEM, "allocate a buffer to read the IPVS connection table", "", file_.path());
}

ReadAheadReader::ReadAheadReader(const TableSource& source) : file_(source) {
  if (int error = thread_.Start(produce_); error != 0) throw SystemError(error, "start the connection table reader thread");
}

ReadAheadReader::~ReadAheadReader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled_ = true;
  }
  changed_.notify_all();
  thread_.Join();
}

bool ReadAheadReader::Next(Chunk* chunk) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return full_count_ > 0 || finished_; });
  if (full_count_ > 0) {
    *chunk = std::move(full_[full_first_]);
    full_first_ = (full_first_ + 1) % kChunks;
    --full_count_;
    return true;
  }
  if (error_ != 0) throw SystemError(error_, "read the IPVS connection table", "", file_.path());
  return false;
}

void ReadAheadReader::Recycle(Buffer&& buffer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    free_[free_count_++] = std::move(buffer);
  }
  changed_.notify_all();
}

void ReadAheadReader::Produce() {
  for (;;) {
    Buffer buffer;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return free_count_ > 0 || allocated_ < kChunks || cancelled_; });
      if (cancelled_) return;
      if (free_count_ > 0) {
        buffer = std::move(free_[--free_count_]);
      } else {
        ++allocated_;
      }
    }
    size_t size = 0;
    int error = 0;
    bool eof = false;
    if (!buffer) buffer = MappedBuffer::Map(kChunkBufferBytes);
    if (!buffer) error = ENOMEM;
    while (buffer && size < kChunkBytes) {
      const ssize_t n = file_.ReadOrError(buffer.data() + size, kChunkBufferBytes - size);
      if (n < 0) {
        error = static_cast<int>(-n);
        break;
      }
      if (n == 0) {
        eof = true;
        break;
      }
      size += static_cast<size_t>(n);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (size > 0) {
        full_[(full_first_ + full_count_) % kChunks] = Chunk{std::move(buffer), size};
        ++full_count_;
      }
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
