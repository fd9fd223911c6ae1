#include "promise_worker.h"

#include <cstring>

namespace ipvs {

Napi::Error ToJsError(Napi::Env env, const SystemError& error) {
  std::string message = error.operation();
  if (error.error_number() != 0) message += ": " + std::string(std::strerror(error.error_number()));
  Napi::Error js = Napi::Error::New(env, message);
  Napi::Object obj = js.Value();
  obj.Set("errno", Napi::Number::New(env, error.error_number()));
  obj.Set("operation", Napi::String::New(env, error.operation()));
  if (!error.kernel_message().empty()) obj.Set("kernelMessage", Napi::String::New(env, error.kernel_message()));
  if (!error.path().empty()) obj.Set("path", Napi::String::New(env, error.path()));
  return js;
}

}  // namespace ipvs
