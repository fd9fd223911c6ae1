// The JS-facing handle: one GenlSocket per instance. Converts JS request objects to codec
// records on the JS thread, runs the exchange on the thread pool, converts replies back.
#pragma once

#include <napi.h>

#include <memory>

#include "genl_socket.h"

namespace ipvs {

class IpvsHandle : public Napi::ObjectWrap<IpvsHandle> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit IpvsHandle(const Napi::CallbackInfo& info);

  static Napi::Value Open(const Napi::CallbackInfo& info);  // (netnsPath) -> Promise<IpvsHandle>
  void Attach(std::shared_ptr<GenlSocket> socket) { socket_ = std::move(socket); }

 private:
  Napi::Value Execute(const Napi::CallbackInfo& info);       // (request) -> Promise<reply>
  Napi::Value ExecuteBatch(const Napi::CallbackInfo& info);  // (records, strings, tuning?) -> Promise<results>
  Napi::Value ListTable(const Napi::CallbackInfo& info);     // () -> Promise<packed table>
  Napi::Value Close(const Napi::CallbackInfo& info);
  std::shared_ptr<GenlSocket> SocketOrThrow(Napi::Env env);

  std::shared_ptr<GenlSocket> socket_;
};

}  // namespace ipvs
