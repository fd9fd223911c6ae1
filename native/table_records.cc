#include "table_records.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "conversion.h"
#include "promise_worker.h"
#include "record_pool.h"
#include "records.h"
#include "service_dump.h"

namespace ipvs {
namespace {

class TableWorker : public PromiseWorker {
 protected:
  TableWorker(Napi::Env env, const char* name, std::shared_ptr<GenlSocket> socket)
      : PromiseWorker(env, name), socket_(std::move(socket)) {}

  Napi::Value Resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("services", WordsToJs(env, std::move(table_.services)));
    out.Set("destinations", WordsToJs(env, std::move(table_.destinations)));
    out.Set("strings", StringsToJs(env, table_.strings.strings()));
    return out;
  }

  std::shared_ptr<GenlSocket> socket_;
  PackedTable table_;
};

// One service dump, then one destination dump per service (the kernel dumps destinations one
// service at a time, and a socket runs one dump at a time), in a single thread-pool job. A
// service that disappears between the two dumps is listed with no destinations: the kernel
// answers an empty dump for it.
//
// Given a callback, the job hands the table over in parts of whole services while it runs, so
// that JS can build objects from one part while the next is dumped. Every part reaches the
// callback, in order, before the promise resolves with the last one: parts queue here, and
// both the thread-safe function's calls and the completion take whatever has queued.
class ListTableWorker : public TableWorker {
 public:
  ListTableWorker(Napi::Env env, std::shared_ptr<GenlSocket> socket, Napi::Function on_part)
      : TableWorker(env, "ipvs-netlink:listTable", std::move(socket)) {
    TakeParts(env, on_part);
  }
  // Without a handle: opens a socket in `netns_path` for this one listing, on the worker's thread.
  ListTableWorker(Napi::Env env, std::string netns_path, Napi::Function on_part)
      : TableWorker(env, "ipvs-netlink:listTableIn", nullptr), netns_path_(std::move(netns_path)) {
    TakeParts(env, on_part);
  }

 protected:
  void Run() override {
    struct Release {
      Napi::ThreadSafeFunction& notify;
      ~Release() {
        if (notify) notify.Release();
      }
    } release{notify_};
    if (!socket_) {
      socket_ = GenlSocket::Open(netns_path_);
      ListAll();
      socket_->Close();
      return;
    }
    ListAll();
  }

  Napi::Value Resolve(Napi::Env env) override {
    if (parts_) Deliver(env, on_part_.Value(), *parts_);
    return TableWorker::Resolve(env);
  }

 private:
  void ListAll() {
    const std::vector<Service> services = DumpServices(*socket_);
    // A part every eighth of the table, of at least kMinPartServices services.
    const size_t part_services = std::max<size_t>(kMinPartServices, (services.size() + 7) / 8);
    const size_t first_services = parts_ ? std::min(part_services, services.size()) : services.size();
    // How many destinations a service has is unknown until the first are dumped: the largest
    // memory kept from an earlier listing, if any, takes them.
    TakeRecordMemory(first_services * record::service::kWords, record_pool::kLargest);
    size_t destination_words = 0;  // of every service listed so far, parts handed over included
    // Each destination is packed as it is decoded; its service's count is written after.
    constexpr uint32_t kCountAt = record::service::At(record::service::destinationCount);
    for (size_t i = 0; i < services.size(); ++i) {
      const Service& service = services[i];
      Request dump_destinations;
      dump_destinations.command = IPVS_CMD_GET_DEST;
      dump_destinations.service = KeyOf(service);
      const size_t record = table_.services.size();
      table_.AddService(service, 0);
      uint32_t count = 0;
      socket_->Execute(dump_destinations, [&](const nlmsghdr* reply) {
        std::vector<uint32_t>& words = table_.destinations;
        words.resize(words.size() + record::destination::kWords);  // value-initialised: zeros
        DecodeDestinationRecord(reply, words.data() + words.size() - record::destination::kWords);
        ++count;
      });
      table_.services[record + kCountAt] = count;
      destination_words += count * record::destination::kWords;
      if ((i + 1) % part_services == 0 && i + 1 < services.size()) {
        const size_t upcoming = parts_ ? std::min(part_services, services.size() - i - 1) : services.size() - i - 1;
        // The next services' destinations at the average so far, plus an eighth.
        const size_t estimate = destination_words / (i + 1) * upcoming / 8 * 9;
        if (parts_) {
          HandOver();
          TakeRecordMemory(upcoming * record::service::kWords, estimate);
        }
        ReserveDestinations(table_.destinations.size() + estimate);
      }
    }
  }

  // Fresh record vectors, in memory an earlier listing's arrays gave back where there is some
  // (its pages already in memory): services for `service_words` words, and destinations for
  // about `destination_words` (record_pool::Take).
  void TakeRecordMemory(size_t service_words, size_t destination_words) {
    table_.services = record_pool::Take(service_words);
    table_.services.reserve(service_words);
    table_.destinations = record_pool::Take(destination_words);
  }

  // Room for `words` words of destination records, reserved ahead: a vector grown by doubling
  // copies its records about once more, into fresh pages each time. Reserved pages left
  // untouched are never faulted in. An estimate the allocator refuses (a skewed table) leaves
  // the vector to grow as it would have.
  void ReserveDestinations(size_t words) {
    try {
      table_.destinations.reserve(words);
    } catch (const std::bad_alloc&) {
    } catch (const std::length_error&) {
    }
  }

  static constexpr size_t kMinPartServices = 64;

  void TakeParts(Napi::Env env, Napi::Function on_part) {
    if (on_part.IsEmpty()) return;
    on_part_ = Napi::Persistent(on_part);
    parts_ = std::make_shared<Parts>();
    auto parts = parts_;
    notify_ = Napi::ThreadSafeFunction::New(env, on_part, "ipvs-netlink:listTable part", 0, 1);
    notify_call_ = [parts](Napi::Env env, Napi::Function callback) { Deliver(env, callback, *parts); };
  }

  struct Part {
    std::vector<uint32_t> services, destinations;
    std::vector<std::string> strings;
  };
  struct Parts {
    std::mutex mutex;
    std::deque<Part> queue;
  };

  // Queues the services packed so far (with the strings they refer to) and wakes the JS thread.
  void HandOver() {
    Part part{std::move(table_.services), std::move(table_.destinations), table_.strings.strings()};
    table_.services.clear();
    table_.destinations.clear();
    {
      std::lock_guard<std::mutex> lock(parts_->mutex);
      parts_->queue.push_back(std::move(part));
    }
    notify_.NonBlockingCall(notify_call_);
  }

  // JS thread: passes every queued part to the callback, oldest first.
  static void Deliver(Napi::Env env, Napi::Function callback, Parts& parts) {
    for (;;) {
      Part part;
      {
        std::lock_guard<std::mutex> lock(parts.mutex);
        if (parts.queue.empty()) return;
        part = std::move(parts.queue.front());
        parts.queue.pop_front();
      }
      Napi::Object out = Napi::Object::New(env);
      out.Set("services", WordsToJs(env, std::move(part.services)));
      out.Set("destinations", WordsToJs(env, std::move(part.destinations)));
      out.Set("strings", StringsToJs(env, part.strings));
      callback.Call({out});
    }
  }

  Napi::FunctionReference on_part_;
  std::shared_ptr<Parts> parts_;
  Napi::ThreadSafeFunction notify_;
  std::function<void(Napi::Env, Napi::Function)> notify_call_;
  std::string netns_path_;
};

// One or more query records, answered in order into one packed table.
class QueryWorker : public TableWorker {
 public:
  QueryWorker(Napi::Env env, std::shared_ptr<GenlSocket> socket, std::vector<uint32_t> words, std::vector<std::string> strings,
              bool counted)
      : TableWorker(env, counted ? "ipvs-netlink:queryMany" : "ipvs-netlink:query", std::move(socket)),
        words_(std::move(words)), strings_(std::move(strings)), counted_(counted) {}

 protected:
  void Run() override {
    const size_t count = words_.size() / record::request::kWords;
    std::vector<Request> requests(count);
    for (size_t i = 0; i < count; ++i) {
      try {
        requests[i] = UnpackQuery(&words_[i * record::request::kWords], strings_);
      } catch (const RecordError& e) {
        throw SystemError(EINVAL, "query record " + std::to_string(i) + ": " + e.what());
      }
    }
    counts_.reserve(count);
    for (const Request& request : requests) {
      uint32_t replies = 0;
      if (request.command == IPVS_CMD_GET_DEST) {
        socket_->Execute(request, [&](const nlmsghdr* reply) {
          std::vector<uint32_t>& words = table_.destinations;
          words.resize(words.size() + record::destination::kWords);  // value-initialised: zeros
          DecodeDestinationRecord(reply, words.data() + words.size() - record::destination::kWords);
          ++replies;
        });
      } else if (!request.service) {
        for (const Service& service : DumpServices(*socket_)) {
          table_.AddService(service, 0);
          ++replies;
        }
      } else {
        socket_->Execute(request, [&](const nlmsghdr* reply) { table_.AddService(DecodeService(reply), 0); ++replies; });
      }
      counts_.push_back(replies);
    }
  }

  Napi::Value Resolve(Napi::Env env) override {
    Napi::Value out = TableWorker::Resolve(env);
    if (counted_) out.As<Napi::Object>().Set("counts", WordsToJs(env, counts_));
    return out;
  }

 private:
  std::vector<uint32_t> words_;
  std::vector<std::string> strings_;
  bool counted_;
  std::vector<uint32_t> counts_;
};

// The optional onPart argument at `index`: empty when absent or undefined.
Napi::Function OnPartArgument(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined()) return Napi::Function();
  if (!info[index].IsFunction()) throw Napi::TypeError::New(info.Env(), "onPart must be a function");
  return info[index].As<Napi::Function>();
}

}  // namespace

Napi::Value QueueListTable(const Napi::CallbackInfo& info, std::shared_ptr<GenlSocket> socket) {
  auto* worker = new ListTableWorker(info.Env(), std::move(socket), OnPartArgument(info, 0));
  return worker->Queue();
}

Napi::Value ListTableIn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "netns must be a string ('' for the current namespace)");
  auto* worker = new ListTableWorker(env, info[0].As<Napi::String>().Utf8Value(), OnPartArgument(info, 1));
  return worker->Queue();
}

Napi::Value QueueQuery(const Napi::CallbackInfo& info, std::shared_ptr<GenlSocket> socket) {
  Napi::Env env = info.Env();
  std::vector<uint32_t> words = RecordWords(info[0], record::request::kWords, "record");
  if (words.size() != record::request::kWords) throw Napi::RangeError::New(env, "record must hold exactly one request record");
  auto* worker = new QueryWorker(env, std::move(socket), std::move(words), StringList(info[1], "strings"), false);
  return worker->Queue();
}

Napi::Value QueueQueryMany(const Napi::CallbackInfo& info, std::shared_ptr<GenlSocket> socket) {
  Napi::Env env = info.Env();
  std::vector<uint32_t> words = RecordWords(info[0], record::request::kWords, "records");
  auto* worker = new QueryWorker(env, std::move(socket), std::move(words), StringList(info[1], "strings"), true);
  return worker->Queue();
}

}  // namespace ipvs
