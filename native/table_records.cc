#include "table_records.h"

#include <string>
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
  // Without a handle: opens a socket in `netns_path` for this one listing, on the worker's thread.
  ListTableWorker(Napi::Env env, std::string netns_path)
      : TableWorker(env, "ipvs-netlink:listTableIn", nullptr), netns_path_(std::move(netns_path)) {}

 protected:
  void Run() override {
    if (!socket_) {
      socket_ = GenlSocket::Open(netns_path_);
      ListAll();
      socket_->Close();
      return;
    }
    ListAll();
  }

 private:
  void ListAll() {
    std::vector<Service> services;
    Request dump_services;
    dump_services.command = IPVS_CMD_GET_SERVICE;
    socket_->Execute(dump_services, [&](const nlmsghdr* reply) { services.push_back(DecodeService(reply)); });
    // Each destination is packed as it is decoded; its service's count is written after.
    constexpr uint32_t kCountAt = record::service::At(record::service::destinationCount);
    for (const Service& service : services) {
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
    }
  }

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
  auto* worker = new ListTableWorker(env, info[0].As<Napi::String>().Utf8Value());
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
