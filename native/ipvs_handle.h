// The JS-facing handle: one GenlSocket per instance. Each method hands its arguments to a
// worker (batch_records.h, table_records.h, or the object calls here) that runs the exchange
// on the thread pool and settles a Promise.
#pragma once

#include <napi.h>

#include <memory>

#include "genl_socket.h"

namespace ipvs {

class IpvsHandle : public Napi::ObjectWrap<IpvsHandle> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit IpvsHandle(const Napi::CallbackInfo& info);

  static Napi::Value Open(const Napi::CallbackInfo& info);  // (netnsPath) -> Promise<IpvsHandle>
  void Attach(std::shared_ptr<GenlSocket> socket) { socket_ = std::move(socket); }

 private:
  Napi::Value Execute(const Napi::CallbackInfo& info);       // ({ command, daemon?, timeouts? }) -> Promise<reply>
  Napi::Value ExecuteBatch(const Napi::CallbackInfo& info);  // (records, strings, tuning?) -> Promise<results>
  Napi::Value Query(const Napi::CallbackInfo& info);         // (record, strings) -> Promise<packed table>
  Napi::Value QueryMany(const Napi::CallbackInfo& info);     // (records, strings) -> Promise<packed table + counts>
  Napi::Value ListTable(const Napi::CallbackInfo& info);     // () -> Promise<packed table>
  Napi::Value Close(const Napi::CallbackInfo& info);
  std::shared_ptr<GenlSocket> SocketOrThrow(Napi::Env env);

  std::shared_ptr<GenlSocket> socket_;
};

}  // namespace ipvs
