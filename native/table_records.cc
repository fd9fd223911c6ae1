#include "table_records.h"

#include <algorithm>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "conversion.h"
#include "promise_worker.h"
#include "records.h"

namespace ipvs {
namespace {

// The key GET_DEST needs: the kernel names a service by fwmark, or by protocol, address and port.
Service KeyOf(const Service& s) {
  Service key;
  key.af = s.af;
  if (s.fwmark && *s.fwmark != 0) {
    key.fwmark = s.fwmark;
  } else {
    key.protocol = s.protocol;
    key.address = s.address;
    key.port = s.port;
  }
  return key;
}

class TableWorker : public PromiseWorker {
 protected:
  TableWorker(Napi::Env env, const char* name, std::shared_ptr<GenlSocket> socket)
      : PromiseWorker(env, name), socket_(std::move(socket)) {}

  Napi::Value Resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("services", WordsToJs(env, table_.services));
    out.Set("destinations", WordsToJs(env, table_.destinations));
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
class ListTableWorker : public TableWorker {
 public:
  ListTableWorker(Napi::Env env, std::shared_ptr<GenlSocket> socket)
      : TableWorker(env, "ipvs-netlink:listTable", std::move(socket)) {}
  // Without a handle: opens `sockets` sockets in `netns_path` for this one listing, on the
  // worker's thread and on sockets - 1 threads of its own, which share the destination dumps.
  ListTableWorker(Napi::Env env, std::string netns_path, size_t sockets)
      : TableWorker(env, "ipvs-netlink:listTableIn", nullptr), netns_path_(std::move(netns_path)), sockets_(sockets) {}

 protected:
  void Run() override {
    const bool own = !socket_;
    if (own) socket_ = GenlSocket::Open(netns_path_);
    std::vector<Service> services;
    Request dump_services;
    dump_services.command = IPVS_CMD_GET_SERVICE;
    socket_->Execute(dump_services, [&](const nlmsghdr* reply) { services.push_back(DecodeService(reply)); });
    // Contiguous runs of services, one per socket; the first on this thread's socket.
    const size_t parts = std::max<size_t>(1, std::min(sockets_, services.size() / kServicesPerSocket));
    std::vector<Part> results(parts);
    auto dump = [&](GenlSocket& socket, size_t p) {
      try {
        DumpDestinations(socket, services, p * services.size() / parts, (p + 1) * services.size() / parts, results[p]);
      } catch (const SystemError& e) {
        results[p].error = std::make_unique<SystemError>(e);
      }
    };
    std::vector<std::thread> threads;
    std::vector<size_t> here{0};  // parts this thread dumps: the first, and any no thread took
    for (size_t p = 1; p < parts; ++p) {
      try {
        threads.emplace_back([&, p] {
          try {
            dump(*GenlSocket::Open(netns_path_), p);
          } catch (const SystemError& e) {
            results[p].error = std::make_unique<SystemError>(e);
          }
        });
      } catch (const std::system_error&) {
        here.push_back(p);
      }
    }
    for (size_t p : here) dump(*socket_, p);
    for (std::thread& thread : threads) thread.join();
    if (own) socket_->Close();
    for (const Part& part : results) {
      if (part.error) throw *part.error;
    }
    constexpr uint32_t kCountAt = record::service::At(record::service::destinationCount);
    size_t i = 0;
    for (const Part& part : results) {
      table_.destinations.insert(table_.destinations.end(), part.destinations.begin(), part.destinations.end());
      for (uint32_t count : part.counts) {
        const size_t record = table_.services.size();
        table_.AddService(services[i++], 0);
        table_.services[record + kCountAt] = count;
      }
    }
  }

 private:
  // A socket's share of the listing: its services' destination records, and how many each had.
  struct Part {
    std::vector<uint32_t> destinations;
    std::vector<uint32_t> counts;
    std::unique_ptr<SystemError> error;
  };
  // Fewer services than this per extra socket are not worth its opening.
  static constexpr size_t kServicesPerSocket = 64;

  static void DumpDestinations(GenlSocket& socket, const std::vector<Service>& services, size_t first, size_t end, Part& part) {
    part.counts.reserve(end - first);
    for (size_t i = first; i < end; ++i) {
      Request dump_destinations;
      dump_destinations.command = IPVS_CMD_GET_DEST;
      dump_destinations.service = KeyOf(services[i]);
      uint32_t count = 0;
      socket.Execute(dump_destinations, [&](const nlmsghdr* reply) {
        std::vector<uint32_t>& words = part.destinations;
        words.resize(words.size() + record::destination::kWords);  // value-initialised: zeros
        DecodeDestinationRecord(reply, words.data() + words.size() - record::destination::kWords);
        ++count;
      });
      part.counts.push_back(count);
    }
  }

  std::string netns_path_;
  size_t sockets_ = 1;
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

}  // namespace

Napi::Value QueueListTable(Napi::Env env, std::shared_ptr<GenlSocket> socket) {
  auto* worker = new ListTableWorker(env, std::move(socket));
  return worker->Queue();
}

Napi::Value ListTableIn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "netns must be a string ('' for the current namespace)");
  size_t sockets = 1;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "sockets must be a number");
    const double n = info[1].As<Napi::Number>().DoubleValue();
    if (!(n >= 1 && n <= 16) || n != static_cast<double>(static_cast<size_t>(n)))
      throw Napi::RangeError::New(env, "sockets must be an integer from 1 to 16");
    sockets = static_cast<size_t>(n);
  }
  auto* worker = new ListTableWorker(env, info[0].As<Napi::String>().Utf8Value(), sockets);
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
