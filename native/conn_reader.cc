#include "conn_reader.h"

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "conn_parser.h"
#include "conn_reader_io.h"
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

// A stream reserves at most this many rows up front, whatever its batch size: the columns
// grow with the rows a batch really has.
constexpr size_t kStreamReserveRows = 4096;

struct ReadRequest {
  TableSource source;
  bool strict = false;
  ConnectionFilter filter;
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
  request.source.netns = OptionalString(options, "netns");
  request.source.path = OptionalString(options, "path");
  request.source.sync = OptionalBool(options, "sync");
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
    ReadAheadReader reader(request_.source);
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
    {
      ReadAheadReader reader(request_.source);
      reader.Scan(scanner_, [&](const ConnectionRecord& record) {
        if (filter.Matches(record)) builder.Add(record);
        return true;
      });
    }
    columns_.ShrinkToFit();
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

// Shared by the JS object and its in-flight worker, so either may go first. The file is
// closed as soon as the table is exhausted, a batch fails or the stream is closed.
struct StreamState {
  ReadRequest request;
  std::mutex mutex;  // held by the worker for a whole batch
  std::unique_ptr<TableReader> reader;
  LineScanner scanner;
  std::atomic<bool> closed{false};
  std::atomic<bool> busy{false};  // a batch is queued or running
  bool done = false;  // guarded by mutex: no more batches (the end, a failure, or close)
};

class StreamBatchWorker : public PromiseWorker {
 public:
  StreamBatchWorker(Napi::Env env, std::shared_ptr<StreamState> state, size_t batch_size)
      : PromiseWorker(env, "ipvs-netlink:connections"), state_(std::move(state)), batch_size_(batch_size) {}

 protected:
  void Run() override {
    // However Run ends (a failed batch rejects without reaching Resolve): a close() that came
    // while the lock was held could not release the file, so do it here.
    struct ClearBusy {
      StreamState& s;
      ~ClearBusy() {
        if (s.closed) {
          std::unique_lock<std::mutex> lock(s.mutex, std::try_to_lock);
          if (lock.owns_lock()) {
            s.done = true;
            s.reader.reset();
          }
        }
        s.busy = false;
      }
    } clear_busy{*state_};
    std::lock_guard<std::mutex> lock(state_->mutex);
    StreamState& s = *state_;
    // Whatever ends this batch without more to come releases the file at once.
    struct CloseWhenDone {
      StreamState& s;
      bool ok = false;
      ~CloseWhenDone() {
        if (!ok || s.closed) s.done = true;
        if (s.done) s.reader.reset();
      }
    } close_when_done{s};
    if (!s.closed && !s.done) {
      if (!s.reader) {
        s.scanner.set_strict(s.request.strict);
        s.reader = std::make_unique<TableReader>(s.request.source);
      }
      columns_.Reserve(std::min(batch_size_, kStreamReserveRows));
      ColumnarBuilder builder(&columns_);
      const ConnectionFilter& filter = s.request.filter;
      s.reader->Run(s.scanner, [&](const ConnectionRecord& record) {
        if (filter.Matches(record)) builder.Add(record);
        return columns_.size() < batch_size_;
      });
      columns_.ShrinkToFit();
      if (s.reader->finished() || s.scanner.failed()) s.done = true;
    }
    close_when_done.ok = true;
    stats_ = s.scanner.stats();
    done_ = s.done || s.closed;
  }

  Napi::Value Resolve(Napi::Env env) override {
    Napi::Object result = ColumnsToJs(env, std::move(columns_));
    SetStats(result, stats_, state_->request.strict);
    result.Set("done", Napi::Boolean::New(env, done_));
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

  // Closes the file now, or (with a batch in flight) as soon as that batch ends: never waits
  // on the JS thread for a read.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    state_->closed = true;
    std::unique_lock<std::mutex> lock(state_->mutex, std::try_to_lock);
    if (lock.owns_lock()) {
      state_->done = true;
      state_->reader.reset();
    }
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
