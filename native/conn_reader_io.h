// Reading the connection table: opening it (inside a namespace, see netns.h), a synchronous
// reader for streams that stop after each batch, and a read-ahead thread for whole-table scans
// so that the kernel's formatting of the next chunk overlaps the parsing of this one.
#pragma once

#include <sys/types.h>

#include <array>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>

#include "bare_thread.h"
#include "conn_parser.h"
#include "mapped_buffer.h"

namespace ipvs {

// Where to read: the kernel's table in a namespace, or a saved copy of it.
struct TableSource {
  std::string netns;  // empty = the caller's namespace
  std::string path;   // empty = the kernel's table
  bool sync = false;  // ip_vs_conn_sync instead of ip_vs_conn
};

// The file a source names, as errors report it.
std::string TablePath(const TableSource& source);

// An open table; closes it on destruction.
class TableFile {
 public:
  // Opens the table. The kernel's table is opened inside the source's namespace; a saved copy
  // where we are. Throws SystemError naming the path.
  explicit TableFile(const TableSource& source);
  ~TableFile();
  TableFile(const TableFile&) = delete;
  TableFile& operator=(const TableFile&) = delete;

  // read(2) without EINTR; throws SystemError on failure; 0 at the end.
  size_t Read(char* data, size_t size);
  // The same, returning -errno on failure instead of throwing (it allocates nothing).
  ssize_t ReadOrError(char* data, size_t size);
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Reads on the calling thread and feeds the scanner until a sink or strict mode stops it or
// the file ends, keeping its place between calls.
class TableReader {
 public:
  explicit TableReader(const TableSource& source);

  template <typename Sink>
  void Run(conn::LineScanner& scanner, Sink&& sink);
  bool finished() const { return finished_; }

 private:
  TableFile file_;
  MappedBuffer buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool at_eof_ = false;
  bool finished_ = false;
};

// Reads a whole table on a second thread while the caller parses the chunks it has read, in
// place: only a line cut by a chunk boundary is copied. Chunk buffers are mapped as the reader
// needs them (one for a small table), recycled, and unmapped at the end. The reading thread
// allocates nothing from malloc, so it leaves nothing in an arena of its own (bare_thread.h).
class ReadAheadReader {
 public:
  explicit ReadAheadReader(const TableSource& source);
  ~ReadAheadReader();
  ReadAheadReader(const ReadAheadReader&) = delete;
  ReadAheadReader& operator=(const ReadAheadReader&) = delete;

  // Scans everything the thread reads; stops early when the scanner stops.
  template <typename Sink>
  void Scan(conn::LineScanner& scanner, Sink&& sink);

 private:
  static constexpr size_t kChunks = 8;
  using Buffer = MappedBuffer;
  struct Chunk {
    Buffer data;
    size_t size = 0;
  };
  // Waits for the next chunk; false at the end of the file. Throws the reader's error.
  bool Next(Chunk* chunk);
  void Recycle(Buffer&& buffer);
  void Produce();

  TableFile file_;
  std::mutex mutex_;
  std::condition_variable changed_;
  // Read chunks in order, as a ring, and recycled buffers; at most kChunks buffers exist.
  std::array<Chunk, kChunks> full_;
  size_t full_first_ = 0;
  size_t full_count_ = 0;
  std::array<Buffer, kChunks> free_;
  size_t free_count_ = 0;
  size_t allocated_ = 0;
  bool finished_ = false;
  bool cancelled_ = false;
  int error_ = 0;
  struct Producer {
    ReadAheadReader* reader;
    void operator()() const { reader->Produce(); }
  } produce_{this};
  BareThread thread_;  // last: joined before the state above is destroyed
};

// ----- templates ------------------------------------------------------------------------

template <typename Sink>
void TableReader::Run(conn::LineScanner& scanner, Sink&& sink) {
  for (;;) {
    if (begin_ < end_ || at_eof_) {
      begin_ += scanner.Scan(buffer_.data() + begin_, end_ - begin_, at_eof_, sink);
      if (scanner.stopped()) return;
      if (at_eof_) {
        finished_ = true;
        return;
      }
    }
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    size_t n = file_.Read(buffer_.data() + end_, buffer_.size() - end_);
    if (n == 0) {
      at_eof_ = true;
    } else {
      end_ += n;
    }
  }
}

template <typename Sink>
void ReadAheadReader::Scan(conn::LineScanner& scanner, Sink&& sink) {
  std::string carry;  // a line cut by the end of the previous chunk
  Chunk chunk;
  while (Next(&chunk)) {
    const char* data = chunk.data.data();
    size_t size = chunk.size;
    if (!carry.empty()) {
      const void* newline = std::memchr(data, '\n', size);
      const size_t take = newline ? static_cast<size_t>(static_cast<const char*>(newline) - data) + 1 : size;
      carry.append(data, take);
      data += take;
      size -= take;
      carry.erase(0, scanner.Scan(carry.data(), carry.size(), false, sink));
      if (scanner.stopped()) return;
    }
    const size_t used = scanner.Scan(data, size, false, sink);
    if (scanner.stopped()) return;
    carry.append(data + used, size - used);
    Recycle(std::move(chunk.data));
  }
  scanner.Scan(carry.data(), carry.size(), true, sink);
}

}  // namespace ipvs
