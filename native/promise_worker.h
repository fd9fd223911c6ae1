// The one async-worker base: runs Execute() on the libuv thread pool and settles a Promise.
// Subclasses compute plain C++ results in Execute() and convert them in Resolve().
#pragma once

#include <napi.h>

#include <exception>
#include <string>

#include "system_error.h"

namespace ipvs {

// Turns a SystemError into a JS Error carrying errno, operation, path and kernel message.
Napi::Error ToJsError(Napi::Env env, const SystemError& error);

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env, const char* name = "ipvs-netlink")
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Queue() {
    Napi::Promise promise = deferred_.Promise();
    Napi::AsyncWorker::Queue();
    return promise;
  }

 protected:
  virtual void Run() = 0;                              // thread pool; may throw SystemError
  virtual Napi::Value Resolve(Napi::Env env) = 0;     // JS thread

 private:
  void Execute() final {
    try {
      Run();
    } catch (const SystemError& e) {
      error_ = e;
      failed_ = true;
    } catch (const std::exception& e) {
      error_ = SystemError(0, e.what());
      failed_ = true;
    }
  }
  void OnOK() final {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(ToJsError(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(Resolve(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) final { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  SystemError error_{0, ""};
  bool failed_ = false;
};

}  // namespace ipvs
