#include "ipvs_handle.h"

#include <optional>
#include <string>
#include <vector>

#include "batch_records.h"
#include "conversion.h"
#include "ipvs_codec.h"
#include "promise_worker.h"
#include "table_records.h"

namespace ipvs {
namespace {

class OpenWorker : public PromiseWorker {
 public:
  OpenWorker(Napi::Env env, std::string netns_path, Napi::Function constructor)
      : PromiseWorker(env, "ipvs-netlink:open"), constructor_(Napi::Persistent(constructor)),
        socket_(GenlSocket::Prepare(std::move(netns_path))) {}

 protected:
  void Run() override { socket_->Connect(); }
  Napi::Value Resolve(Napi::Env env) override {
    Napi::Object handle = constructor_.New({});
    IpvsHandle::Unwrap(handle)->Attach(std::move(socket_));
    return handle;
  }

 private:
  Napi::FunctionReference constructor_;
  std::shared_ptr<GenlSocket> socket_;  // prepared here, on the JS thread (see GenlSocket::Prepare)
};

// The rare calls, as objects: daemons, timeouts, info.
class ObjectWorker : public PromiseWorker {
 public:
  ObjectWorker(Napi::Env env, std::shared_ptr<GenlSocket> socket, Request request)
      : PromiseWorker(env, "ipvs-netlink:execute"), socket_(std::move(socket)), request_(std::move(request)) {}

 protected:
  void Run() override {
    socket_->Execute(request_, [this](const nlmsghdr* reply) {
      switch (request_.command) {
        case IPVS_CMD_GET_DAEMON: daemons_.push_back(DecodeDaemon(reply)); break;
        case IPVS_CMD_GET_CONFIG: timeouts_ = DecodeTimeouts(reply); break;
        case IPVS_CMD_GET_INFO: info_ = DecodeInfo(reply); break;
        default: break;  // commands that change state answer with an ack only
      }
    });
  }

  Napi::Value Resolve(Napi::Env env) override {
    switch (request_.command) {
      case IPVS_CMD_GET_DAEMON: {
        Napi::Array array = Napi::Array::New(env, daemons_.size());
        for (size_t i = 0; i < daemons_.size(); ++i) array.Set(static_cast<uint32_t>(i), DaemonToJs(env, daemons_[i]));
        return array;
      }
      case IPVS_CMD_GET_CONFIG: return TimeoutsToJs(env, timeouts_);
      case IPVS_CMD_GET_INFO:
        if (!info_) throw Napi::Error::New(env, "get info: the kernel sent no reply");
        return InfoToJs(env, *info_);
      default: return env.Undefined();
    }
  }

 private:
  std::shared_ptr<GenlSocket> socket_;
  Request request_;
  std::vector<Daemon> daemons_;
  Timeouts timeouts_;
  std::optional<Info> info_;
};

}  // namespace

Napi::Function IpvsHandle::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "IpvsHandle",
                                    {
                                        StaticMethod<&IpvsHandle::Open>("open"),
                                        InstanceMethod<&IpvsHandle::Execute>("execute"),
                                        InstanceMethod<&IpvsHandle::ExecuteBatch>("executeBatch"),
                                        InstanceMethod<&IpvsHandle::Query>("query"),
                                        InstanceMethod<&IpvsHandle::QueryMany>("queryMany"),
                                        InstanceMethod<&IpvsHandle::ListTable>("listTable"),
                                        InstanceMethod<&IpvsHandle::Close>("close"),
                                    });
  // Kept per environment so the addon works in worker_threads too.
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(ctor)));
  return ctor;
}

IpvsHandle::IpvsHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IpvsHandle>(info) {}

Napi::Value IpvsHandle::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (info[0].IsString()) {
    path = info[0].As<Napi::String>().Utf8Value();
  } else if (!info[0].IsUndefined()) {
    throw Napi::TypeError::New(env, "netnsPath must be a string or undefined");
  }
  auto* ctor = env.GetInstanceData<Napi::FunctionReference>();
  auto* worker = new OpenWorker(env, path, ctor->Value());
  return worker->Queue();
}

std::shared_ptr<GenlSocket> IpvsHandle::SocketOrThrow(Napi::Env env) {
  if (!socket_ || socket_->closed()) throw Napi::Error::New(env, "the IPVS handle is closed");
  return socket_;
}

Napi::Value IpvsHandle::Execute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Request request = ObjectRequest(info[0]);
  auto* worker = new ObjectWorker(env, SocketOrThrow(env), std::move(request));
  return worker->Queue();
}

Napi::Value IpvsHandle::ExecuteBatch(const Napi::CallbackInfo& info) {
  return QueueBatch(info, SocketOrThrow(info.Env()));
}

Napi::Value IpvsHandle::Query(const Napi::CallbackInfo& info) {
  return QueueQuery(info, SocketOrThrow(info.Env()));
}

Napi::Value IpvsHandle::QueryMany(const Napi::CallbackInfo& info) {
  return QueueQueryMany(info, SocketOrThrow(info.Env()));
}

Napi::Value IpvsHandle::ListTable(const Napi::CallbackInfo& info) {
  return QueueListTable(info, SocketOrThrow(info.Env()));
}

Napi::Value IpvsHandle::Close(const Napi::CallbackInfo& info) {
  // The JS layer closes only once its queue has drained, so no worker holds the socket busy;
  // a worker that still holds a reference keeps the object alive until it finishes.
  if (socket_) socket_->Close();
  socket_.reset();
  return info.Env().Undefined();
}

}  // namespace ipvs
