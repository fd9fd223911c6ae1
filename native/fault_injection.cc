#include "fault_injection.h"

#include <string>

#include "genl_socket.h"
#include "record_pool.h"

namespace ipvs::faults {

namespace {

int IntegerOption(const Napi::Object& options, const char* name, int min, int max, int fallback) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return fallback;
  if (!value.IsNumber()) throw Napi::TypeError::New(options.Env(), std::string(name) + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= min && number <= max) || number != static_cast<int>(number))
    throw Napi::RangeError::New(options.Env(), std::string(name) + " is out of range");
  return static_cast<int>(number);
}

// set({ replyTimeoutMs?, dropAcks?, failDumpAfter?, skipDrain?, serviceCountBias? }); set({}) restores the defaults.
Napi::Value Set(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object options = info[0].As<Napi::Object>();
  reply_timeout_ms = IntegerOption(options, "replyTimeoutMs", 1, 600000, kDefaultReplyTimeoutMs);
  drop_acks = IntegerOption(options, "dropAcks", 0, 1 << 30, 0);
  fail_dump_after = IntegerOption(options, "failDumpAfter", -1, 1 << 30, -1);
  service_count_bias = IntegerOption(options, "serviceCountBias", 0, 1 << 30, 0);
  Napi::Value skip = options.Get("skipDrain");
  skip_drain = skip.IsBoolean() && skip.As<Napi::Boolean>().Value();
  return env.Undefined();
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("drainedDumps", Napi::Number::New(env, static_cast<double>(drained_dumps.load())));
  stats.Set("reconnects", Napi::Number::New(env, static_cast<double>(reconnects.load())));
  stats.Set("repeatedDumps", Napi::Number::New(env, static_cast<double>(repeated_dumps.load())));
  stats.Set("repeatedServices", Napi::Number::New(env, static_cast<double>(repeated_services.load())));
  stats.Set("dropAcksLeft", Napi::Number::New(env, drop_acks.load()));
  stats.Set("recordPoolBuffers", Napi::Number::New(env, static_cast<double>(record_pool::CachedBuffers())));
  stats.Set("recordPoolBytes", Napi::Number::New(env, static_cast<double>(record_pool::CachedBytes())));
  return stats;
}

}  // namespace

void InitFaultInjection(Napi::Env env, Napi::Object exports) {
  Napi::Object faults = Napi::Object::New(env);
  faults.Set("set", Napi::Function::New(env, Set, "set"));
  faults.Set("stats", Napi::Function::New(env, Stats, "stats"));
  exports.Set("faults", faults);
}

}  // namespace ipvs::faults
