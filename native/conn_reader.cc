#include "conn_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <thread>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "conn_parser.h"
#include "netns.h"
#include "promise_worker.h"
#include "system_error.h"

namespace ipvs {

namespace {

using conn::ColumnarBuilder;
using conn::ConnectionColumns;
using conn::ConnectionCounter;
using conn::ConnectionFilter;
using conn::ConnectionRecord;
using conn::LineScanner;
using conn::ScanStats;

// Before Linux 6.14 every read() of the table rescans the kernel hash table from the start
// and returns at most a page, so a small buffer multiplies the kernel's work; a large one
// costs nothing and lets each read() return everything the kernel will give.
constexpr size_t kReadBufferBytes = 256 * 1024;

struct ReadRequest {
  std::string netns;   // empty = the calling thread's namespace
  std::string path;    // empty = the kernel's table
  bool sync = false;
  bool strict = false;
  ConnectionFilter filter;
};

std::string TablePath(const ReadRequest& request) {
  if (!request.path.empty()) return request.path;
  // thread-self, not self: the namespace entered is the worker thread's, not the process's.
  return request.sync ? "/proc/thread-self/net/ip_vs_conn_sync" : "/proc/thread-self/net/ip_vs_conn";
}

// An explicit path is a saved copy and is opened where we are; the kernel's table is opened
// from inside the requested namespace.
int OpenTable(const ReadRequest& request) {
  const std::string path = TablePath(request);
  int fd;
  if (request.path.empty()) {
    ScopedNetns guard(request.netns);
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } else {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) throw SystemError(errno, "open the IPVS connection table", "", path);
  return fd;
}

// Owns the descriptor and a buffer; feeds the scanner until a sink or strict mode stops it
// or the file ends.
class TableReader {
 public:
  TableReader(int fd, std::string path) : fd_(fd), path_(std::move(path)), buffer_(kReadBufferBytes) {}
  ~TableReader() { ::close(fd_); }
  TableReader(const TableReader&) = delete;
  TableReader& operator=(const TableReader&) = delete;

  template <typename Sink>
  void Run(LineScanner& scanner, Sink&& sink) {
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
      ssize_t n;
      do {
        n = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
      } while (n < 0 && errno == EINTR);
      if (n < 0) throw SystemError(errno, "read the IPVS connection table", "", path_);
      if (n == 0) {
        at_eof_ = true;
      } else {
        end_ += static_cast<size_t>(n);
      }
    }
  }

  bool finished() const { return finished_; }

 private:
  int fd_;
  std::string path_;
  std::vector<char> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool at_eof_ = false;
  bool finished_ = false;
};

// Reads a whole table on a second thread while the caller parses, so parsing overlaps the
// kernel's formatting (which is most of the cost) instead of adding to it.
class ReadAheadThread {
 public:
  static constexpr size_t kChunkBytes = 64 * 1024;
  static constexpr size_t kChunks = 8;

  ReadAheadThread(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
    try {
      for (size_t i = 0; i < kChunks; ++i) free_.emplace_back(kReadBufferBytes);
      thread_ = std::thread([this] { Produce(); });
    } catch (...) {
      ::close(fd_);
      throw;
    }
  }
  ~ReadAheadThread() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cancelled_ = true;
    }
    changed_.notify_all();
    thread_.join();
    ::close(fd_);
  }
  ReadAheadThread(const ReadAheadThread&) = delete;
  ReadAheadThread& operator=(const ReadAheadThread&) = delete;

  // Scans everything the thread reads; stops early when the scanner stops.
  template <typename Sink>
  void Scan(LineScanner& scanner, Sink&& sink) {
    std::vector<char> window;
    window.reserve(kReadBufferBytes + LineScanner::kMaxLineBytes + 1);
    size_t pending = 0;  // unconsumed bytes at the front of window
    for (;;) {
      Chunk chunk;
      bool at_end;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this] { return !full_.empty() || finished_; });
        at_end = full_.empty();
        if (!at_end) {
          chunk = std::move(full_.front());
          full_.pop_front();
        } else if (error_ != 0) {
          throw SystemError(error_, "read the IPVS connection table", "", path_);
        }
      }
      if (!at_end) {
        window.resize(pending + chunk.size);
        std::memcpy(window.data() + pending, chunk.data.data(), chunk.size);
        Recycle(std::move(chunk.data));
      }
      size_t used = scanner.Scan(window.data(), window.size(), at_end, sink);
      if (scanner.stopped() || at_end) return;
      pending = window.size() - used;
      std::memmove(window.data(), window.data() + used, pending);
      window.resize(pending);
    }
  }

 private:
  struct Chunk {
    std::vector<char> data;
    size_t size = 0;
  };

  void Recycle(std::vector<char>&& buffer) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      free_.push_back(std::move(buffer));
    }
    changed_.notify_all();
  }

  void Produce() {
    for (;;) {
      std::vector<char> buffer;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this] { return !free_.empty() || cancelled_; });
        if (cancelled_) return;
        buffer = std::move(free_.back());
        free_.pop_back();
      }
      // A read of the kernel's table returns about a page; gather a few before handing over.
      size_t size = 0;
      int error = 0;
      bool eof = false;
      while (size < kChunkBytes) {
        ssize_t n = ::read(fd_, buffer.data() + size, buffer.size() - size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          error = errno;
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

  int fd_;
  std::string path_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Chunk> full_;
  std::vector<std::vector<char>> free_;
  bool finished_ = false;
  bool cancelled_ = false;
  int error_ = 0;
};

// ----- JS conversions ---------------------------------------------------------------------

std::string OptionalString(const Napi::Object& options, const char* name) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined() || value.IsNull()) return "";
  if (!value.IsString()) throw Napi::TypeError::New(options.Env(), std::string(name) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

bool OptionalBool(const Napi::Object& options, const char* name) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined() || value.IsNull()) return false;
  if (!value.IsBoolean()) throw Napi::TypeError::New(options.Env(), std::string(name) + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

double OptionalNumber(const Napi::Object& options, const char* name, double fallback) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined() || value.IsNull()) return fallback;
  if (!value.IsNumber()) throw Napi::TypeError::New(options.Env(), std::string(name) + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

// The TypeScript layer has validated everything; these checks only keep a direct caller of
// the addon from crashing the process.
ReadRequest ParseRequest(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object options = value.As<Napi::Object>();
  ReadRequest request;
  request.netns = OptionalString(options, "netns");
  request.path = OptionalString(options, "path");
  request.sync = OptionalBool(options, "sync");
  request.strict = OptionalBool(options, "strict");
  Napi::Value states = options.Get("states");
  if (states.IsArray()) {
    Napi::Array array = states.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      Napi::Value state = array.Get(i);
      if (!state.IsString()) throw Napi::TypeError::New(env, "states must be strings");
      request.filter.states.push_back(state.As<Napi::String>().Utf8Value());
    }
  } else if (!states.IsUndefined() && !states.IsNull()) {
    throw Napi::TypeError::New(env, "states must be an array");
  }
  request.filter.service_protocol = OptionalString(options, "serviceProtocol");
  std::string address = OptionalString(options, "serviceAddress");
  if (!address.empty()) {
    if (!conn::ParseAddressText(address, &request.filter.service_address)) {
      throw Napi::TypeError::New(env, "serviceAddress must be an IP address");
    }
    request.filter.has_service_address = true;
  }
  double port = OptionalNumber(options, "servicePort", -1);
  if (port != -1 && !(port >= 0 && port <= 65535)) throw Napi::RangeError::New(env, "servicePort out of range");
  request.filter.service_port = static_cast<int32_t>(port);
  return request;
}

template <typename T>
void FinalizeColumn(napi_env env, void* /*data*/, void* hint) {
  auto* owner = static_cast<std::vector<T>*>(hint);
  const int64_t bytes = static_cast<int64_t>(owner->capacity() * sizeof(T));
  delete owner;
  int64_t ignored;
  napi_adjust_external_memory(env, -bytes, &ignored);
}

// Hands a column to JS without copying: the ArrayBuffer takes over the vector's storage.
template <typename T>
Napi::TypedArrayOf<T> ToTypedArray(Napi::Env env, std::vector<T>&& column) {
  const size_t length = column.size();
  const size_t bytes = length * sizeof(T);
  if (bytes == 0) return Napi::TypedArrayOf<T>::New(env, 0);
  auto* owner = new std::vector<T>(std::move(column));
  napi_value buffer;
  napi_status status =
      napi_create_external_arraybuffer(env, owner->data(), bytes, FinalizeColumn<T>, owner, &buffer);
  if (status != napi_ok) {
    // Runtimes with a V8 memory cage refuse external buffers: copy into a V8-owned one.
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
    Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, bytes);
    std::memcpy(copy.Data(), owner->data(), bytes);
    delete owner;
    return Napi::TypedArrayOf<T>::New(env, length, copy, 0);
  }
  int64_t ignored;
  napi_adjust_external_memory(env, static_cast<int64_t>(owner->capacity() * sizeof(T)), &ignored);
  return Napi::TypedArrayOf<T>::New(env, length, Napi::ArrayBuffer(env, buffer), 0);
}

Napi::Array ToStringArray(Napi::Env env, const std::vector<std::string>& strings) {
  Napi::Array array = Napi::Array::New(env, strings.size());
  for (size_t i = 0; i < strings.size(); ++i) array.Set(static_cast<uint32_t>(i), Napi::String::New(env, strings[i]));
  return array;
}

void SetStats(Napi::Object& result, const ScanStats& stats, bool strict) {
  Napi::Env env = result.Env();
  result.Set("lines", Napi::Number::New(env, static_cast<double>(stats.lines)));
  result.Set("connections", Napi::Number::New(env, static_cast<double>(stats.connections)));
  result.Set("malformed", Napi::Number::New(env, static_cast<double>(stats.malformed)));
  result.Set("syncLayout", Napi::Boolean::New(env, stats.sync_layout));
  if (stats.first_malformed_line != 0) {
    result.Set("firstMalformedLine", Napi::Number::New(env, static_cast<double>(stats.first_malformed_line)));
    result.Set("firstMalformedText", Napi::String::New(env, stats.first_malformed_text));
  }
  result.Set("failed", Napi::Boolean::New(env, strict && stats.malformed > 0));
}

// Columns to a plain object of typed arrays and string tables (see lib/connections.ts).
Napi::Object ColumnsToJs(Napi::Env env, ConnectionColumns&& c) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("length", Napi::Number::New(env, static_cast<double>(c.size())));
  result.Set("protocol", ToTypedArray(env, std::move(c.protocol)));
  result.Set("clientFamily", ToTypedArray(env, std::move(c.client_family)));
  result.Set("clientAddress", ToTypedArray(env, std::move(c.client_address)));
  result.Set("clientPort", ToTypedArray(env, std::move(c.client_port)));
  result.Set("virtualAddress", ToTypedArray(env, std::move(c.virtual_address)));
  result.Set("virtualPort", ToTypedArray(env, std::move(c.virtual_port)));
  result.Set("destinationAddress", ToTypedArray(env, std::move(c.destination_address)));
  result.Set("destinationPort", ToTypedArray(env, std::move(c.destination_port)));
  result.Set("state", ToTypedArray(env, std::move(c.state)));
  result.Set("origin", ToTypedArray(env, std::move(c.origin)));
  result.Set("expires", ToTypedArray(env, std::move(c.expires)));
  result.Set("pe", ToTypedArray(env, std::move(c.pe)));
  result.Set("protocols", ToStringArray(env, c.protocols.strings()));
  result.Set("states", ToStringArray(env, c.states.strings()));
  result.Set("addresses", ToStringArray(env, c.addresses.strings()));
  result.Set("peNames", ToStringArray(env, c.pe_names));
  result.Set("peData", ToStringArray(env, c.pe_data));
  return result;
}

conn::GroupBy ParseGroupBy(const Napi::Object& options) {
  std::string by = OptionalString(options, "by");
  if (by == "client") return conn::GroupBy::kClient;
  if (by == "destination") return conn::GroupBy::kDestination;
  if (by == "service") return conn::GroupBy::kService;
  if (by == "state") return conn::GroupBy::kState;
  throw Napi::TypeError::New(options.Env(), "by must be client, destination, service or state");
}

// ----- Whole-table workers ------------------------------------------------------------

class CountWorker : public PromiseWorker {
 public:
  CountWorker(Napi::Env env, ReadRequest request, conn::GroupBy by, uint64_t min_count, size_t top)
      : PromiseWorker(env, "ipvs-netlink:countConnections"),
        request_(std::move(request)), counter_(by, request_.filter), min_count_(min_count), top_(top) {}

 protected:
  void Run() override {
    scanner_.set_strict(request_.strict);
    ReadAheadThread reader(OpenTable(request_), TablePath(request_));
    reader.Scan(scanner_, [this](const ConnectionRecord& record) {
      counter_.Add(record);
      return true;
    });
    if (!scanner_.failed()) entries_ = counter_.Result(min_count_, top_);
  }

  Napi::Value Resolve(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    SetStats(result, scanner_.stats(), request_.strict);
    Napi::Array keys = Napi::Array::New(env, entries_.size());
    Napi::Float64Array counts = Napi::Float64Array::New(env, entries_.size());
    for (size_t i = 0; i < entries_.size(); ++i) {
      keys.Set(static_cast<uint32_t>(i), Napi::String::New(env, entries_[i].key));
      counts[i] = static_cast<double>(entries_[i].count);
    }
    result.Set("keys", keys);
    result.Set("counts", counts);
    result.Set("matched", Napi::Number::New(env, static_cast<double>(counter_.matched())));
    return result;
  }

 private:
  ReadRequest request_;
  LineScanner scanner_;
  ConnectionCounter counter_;
  uint64_t min_count_;
  size_t top_;
  std::vector<conn::CountEntry> entries_;
};

class TableWorker : public PromiseWorker {
 public:
  TableWorker(Napi::Env env, ReadRequest request)
      : PromiseWorker(env, "ipvs-netlink:readConnectionTable"), request_(std::move(request)) {}

 protected:
  void Run() override {
    scanner_.set_strict(request_.strict);
    ColumnarBuilder builder(&columns_);
    const ConnectionFilter& filter = request_.filter;
    ReadAheadThread reader(OpenTable(request_), TablePath(request_));
    reader.Scan(scanner_, [&](const ConnectionRecord& record) {
      if (filter.Matches(record)) builder.Add(record);
      return true;
    });
  }

  Napi::Value Resolve(Napi::Env env) override {
    Napi::Object result = ColumnsToJs(env, std::move(columns_));
    SetStats(result, scanner_.stats(), request_.strict);
    return result;
  }

 private:
  ReadRequest request_;
  LineScanner scanner_;
  ConnectionColumns columns_;
};

// ----- Streaming ----------------------------------------------------------------------

// Shared by the JS object and its in-flight worker, so either may go first.
struct StreamState {
  ReadRequest request;
  std::mutex mutex;  // held by the worker for a whole batch
  std::unique_ptr<TableReader> reader;
  LineScanner scanner;
  std::atomic<bool> closed{false};
  std::atomic<bool> busy{false};  // a batch is queued or running
  bool done = false;  // guarded by mutex
};

class StreamBatchWorker : public PromiseWorker {
 public:
  StreamBatchWorker(Napi::Env env, std::shared_ptr<StreamState> state, size_t batch_size)
      : PromiseWorker(env, "ipvs-netlink:connections"), state_(std::move(state)), batch_size_(batch_size) {}

 protected:
  void Run() override {
    // Cleared however Run ends: a failed batch rejects without reaching Resolve.
    struct ClearBusy {
      std::atomic<bool>& busy;
      ~ClearBusy() { busy = false; }
    } clear_busy{state_->busy};
    std::lock_guard<std::mutex> lock(state_->mutex);
    StreamState& s = *state_;
    if (s.closed || s.done) return;
    if (!s.reader) {
      s.scanner.set_strict(s.request.strict);
      s.reader = std::make_unique<TableReader>(OpenTable(s.request), TablePath(s.request));
    }
    columns_.Reserve(batch_size_);
    ColumnarBuilder builder(&columns_);
    const ConnectionFilter& filter = s.request.filter;
    s.reader->Run(s.scanner, [&](const ConnectionRecord& record) {
      if (filter.Matches(record)) builder.Add(record);
      return columns_.size() < batch_size_;
    });
    stats_ = s.scanner.stats();
    if (s.reader->finished() || s.scanner.failed()) {
      s.done = true;
      s.reader.reset();  // close the file as soon as it is exhausted
    }
    done_ = s.done;
  }

  Napi::Value Resolve(Napi::Env env) override {
    if (state_->closed) {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->reader.reset();
    }
    Napi::Object result = ColumnsToJs(env, std::move(columns_));
    SetStats(result, stats_, state_->request.strict);
    result.Set("done", Napi::Boolean::New(env, done_ || state_->closed));
    return result;
  }

 private:
  std::shared_ptr<StreamState> state_;
  size_t batch_size_;
  ConnectionColumns columns_;
  ScanStats stats_;
  bool done_ = false;
};

class ConnectionStream : public Napi::ObjectWrap<ConnectionStream> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ConnectionStream",
                       {InstanceMethod<&ConnectionStream::Read>("read"),
                        InstanceMethod<&ConnectionStream::Close>("close")});
  }

  explicit ConnectionStream(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ConnectionStream>(info) {
    state_ = std::make_shared<StreamState>();
    state_->request = ParseRequest(info[0]);
  }

 private:
  // read(batchSize) -> Promise<batch>; one read at a time.
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "batchSize must be a number");
    double batch_size = info[0].As<Napi::Number>().DoubleValue();
    if (!(batch_size >= 1 && batch_size <= 1e7)) throw Napi::RangeError::New(env, "batchSize out of range");
    if (state_->busy) throw Napi::Error::New(env, "a read of this connection stream is already in progress");
    state_->busy = true;
    auto* worker = new StreamBatchWorker(env, state_, static_cast<size_t>(batch_size));
    return worker->Queue();
  }

  // Closes the file; a read in flight finishes its batch first.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    state_->closed = true;
    if (!state_->busy) {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->reader.reset();
    }  // else the batch in flight closes it when it resolves
    return info.Env().Undefined();
  }

  std::shared_ptr<StreamState> state_;
};

// countConnections({ ...request, by, minCount, top }) -> Promise<counts>
Napi::Value CountConnections(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReadRequest request = ParseRequest(info[0]);
  Napi::Object options = info[0].As<Napi::Object>();
  conn::GroupBy by = ParseGroupBy(options);
  double min_count = OptionalNumber(options, "minCount", 1);
  double top = OptionalNumber(options, "top", 0);
  if (!(min_count >= 0 && min_count <= 9007199254740991.0)) throw Napi::RangeError::New(env, "minCount out of range");
  if (!(top >= 0 && top <= 4294967295.0)) throw Napi::RangeError::New(env, "top out of range");
  auto* worker = new CountWorker(env, std::move(request), by, static_cast<uint64_t>(min_count), static_cast<size_t>(top));
  return worker->Queue();
}

// readConnectionTable(request) -> Promise<columns>
Napi::Value ReadConnectionTable(const Napi::CallbackInfo& info) {
  auto* worker = new TableWorker(info.Env(), ParseRequest(info[0]));
  return worker->Queue();
}

}  // namespace

void InitConnectionReader(Napi::Env env, Napi::Object exports) {
  exports.Set("countConnections", Napi::Function::New(env, CountConnections, "countConnections"));
  exports.Set("readConnectionTable", Napi::Function::New(env, ReadConnectionTable, "readConnectionTable"));
  exports.Set("ConnectionStream", ConnectionStream::Define(env));
}

}  // namespace ipvs
