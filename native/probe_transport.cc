#include "probe_transport.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "probe_codec.h"
#include "probe_engine.h"
#include "promise_worker.h"
#include "system_error.h"

namespace ipvs {
namespace {

using probe::Completion;
using probe::ProbeEngine;
using probe::ProbeRequest;

// What the thread-safe function's calls need: it outlives the JS object when a call is still
// queued at close(), and is deleted by the function's finalizer.
struct Delivery {
  ProbeEngine* engine = nullptr;  // null once closed
  napi_threadsafe_function call = nullptr;
  size_t in_flight = 0;  // JS thread only, as is everything here
  bool referenced = false;
};

void DeliverCompletions(Napi::Env env, Napi::Function callback, Delivery* delivery, std::nullptr_t*);
// Hands completions to JS as (records, replies).
void Deliver(Napi::Env env, Napi::Function callback, Delivery* delivery, std::vector<Completion>&& completions);
void FinalizeDelivery(Napi::Env, std::nullptr_t*, Delivery* delivery) { delete delivery; }

using CompletionCall = Napi::TypedThreadSafeFunction<Delivery, std::nullptr_t, DeliverCompletions>;

class ProbeTransport : public Napi::ObjectWrap<ProbeTransport> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ProbeTransport",
                       {InstanceMethod<&ProbeTransport::Submit>("submit"), InstanceMethod<&ProbeTransport::Close>("close"),
                        InstanceAccessor<&ProbeTransport::MaxInFlight>("maxInFlight")});
  }

  explicit ProbeTransport(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProbeTransport>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction() || (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsObject())) {
      throw Napi::TypeError::New(env, "new ProbeTransport(onCompletions: (records: Buffer, replies: Buffer) => void, "
                                      "options?: { deliveryDelayMs?: number, maxInFlight?: number })");
    }
    ProbeEngine::Options options;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object given = info[1].As<Napi::Object>();
      options.delivery_delay = std::chrono::milliseconds(Count(env, given, "deliveryDelayMs", 60'000));
      options.max_in_flight = static_cast<size_t>(Count(env, given, "maxInFlight", 1u << 30));
    }
    delivery_ = new Delivery();
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    call_ = CompletionCall::New(env, info[0].As<Napi::Function>(), "ipvs-netlink:probe", 0, 1, delivery_, FinalizeDelivery,
                                static_cast<std::nullptr_t*>(nullptr));
    call_.Unref(env);
    try {
      // The engine calls back from its thread.
      engine_ = std::make_unique<ProbeEngine>([call = call_]() mutable { return call.NonBlockingCall() == napi_ok; }, options);
    } catch (const SystemError& e) {
      call_.Release();
      throw ToJsError(env, e);
    }
    delivery_->engine = engine_.get();
    delivery_->call = call_;
    hooked_ = napi_add_env_cleanup_hook(env, OnEnvCleanup, this) == napi_ok;
  }

  ~ProbeTransport() override { Shutdown(); }

 private:
  // An optional non-negative integer option up to `max` (0 when absent).
  static uint32_t Count(Napi::Env env, Napi::Object options, const char* name, uint32_t max) {
    Napi::Value value = options.Get(name);
    if (value.IsUndefined()) return 0;
    const double n = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
    if (!(n >= 0 && n <= max && n == static_cast<double>(static_cast<uint32_t>(n)))) {
      throw Napi::RangeError::New(env, std::string(name) + " must be an integer 0-" + std::to_string(max));
    }
    return static_cast<uint32_t>(n);
  }

  Napi::Value MaxInFlight(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), engine_ ? static_cast<double>(engine_->max_in_flight()) : 0);
  }

  // submit(batch: Uint8Array): queues the probes; a malformed batch throws and queues none.
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto submitted = ProbeEngine::Clock::now();
    if (!engine_) throw Napi::Error::New(env, "the probe transport is closed");
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, "submit(batch: Uint8Array)");
    }
    auto bytes = info[0].As<Napi::Uint8Array>();
    std::vector<ProbeRequest> probes;
    std::string error;
    if (!probe::DecodeProbeBatch(bytes.Data(), bytes.ByteLength(), &probes, &error)) {
      throw Napi::RangeError::New(env, "malformed probe batch: " + error);
    }
    if (probes.empty()) return env.Undefined();
    delivery_->in_flight += probes.size();
    if (!delivery_->referenced) {
      call_.Ref(env);
      delivery_->referenced = true;
    }
    // The completions waiting since the last delivery go now, in this turn of the event loop
    // (the probe thread would otherwise wake it for them after the delivery delay).
    Deliver(env, callback_.Value(), delivery_, engine_->Submit(std::move(probes), submitted));
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  // Environment teardown (process exit, a worker ending) with the transport still open.
  static void OnEnvCleanup(void* self) {
    static_cast<ProbeTransport*>(self)->hooked_ = false;
    static_cast<ProbeTransport*>(self)->Shutdown();
  }

  void Shutdown() {
    if (!engine_) return;
    engine_->Stop();  // joins the thread: no call is made after this
    engine_.reset();
    delivery_->engine = nullptr;
    delivery_ = nullptr;  // the function's finalizer deletes it
    call_.Release();
    if (hooked_) napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
    hooked_ = false;
  }

  std::unique_ptr<ProbeEngine> engine_;
  Napi::FunctionReference callback_;  // the same function the thread-safe function calls
  Delivery* delivery_ = nullptr;
  CompletionCall call_;
  bool hooked_ = false;
};

void DeliverCompletions(Napi::Env env, Napi::Function callback, Delivery* delivery, std::nullptr_t*) {
  if (env == nullptr || delivery->engine == nullptr) return;
  Deliver(env, callback, delivery, delivery->engine->TakeCompletions());
}

void Deliver(Napi::Env env, Napi::Function callback, Delivery* delivery, std::vector<Completion>&& completions) {
  if (completions.empty()) return;
  delivery->in_flight -= std::min(delivery->in_flight, completions.size());
  std::vector<uint8_t> records, replies;
  records.reserve(completions.size() * probe::kCompletionBytes);
  for (const Completion& c : completions) probe::EncodeCompletion(c, &records, &replies);
  if (delivery->in_flight == 0 && delivery->referenced) {
    // Idle: the process may exit. A submit from the callback references it again.
    napi_unref_threadsafe_function(env, delivery->call);
    delivery->referenced = false;
  }
  Napi::Buffer<uint8_t> recordBuffer = Napi::Buffer<uint8_t>::Copy(env, records.data(), records.size());
  Napi::Buffer<uint8_t> replyBuffer = Napi::Buffer<uint8_t>::Copy(env, replies.data(), replies.size());
  callback.Call({recordBuffer, replyBuffer});
}

}  // namespace

void InitProbeTransport(Napi::Env env, Napi::Object exports) {
  exports.Set("ProbeTransport", ProbeTransport::Define(env));
  // The wire format's sizes and the limits DecodeProbeBatch enforces, for the TypeScript codec
  // (lib/director/checks/probe-codec.ts): written once, in probe_codec.h.
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("probeHeaderBytes", Napi::Number::New(env, probe::kProbeHeaderBytes));
  layout.Set("completionBytes", Napi::Number::New(env, probe::kCompletionBytes));
  layout.Set("maxTimeoutMs", Napi::Number::New(env, probe::kMaxProbeTimeoutMs));
  layout.Set("maxReply", Napi::Number::New(env, probe::kMaxProbeReply));
  layout.Set("maxPayload", Napi::Number::New(env, probe::kMaxProbePayload));
  exports.Set("probeLayout", layout);
}

}  // namespace ipvs
