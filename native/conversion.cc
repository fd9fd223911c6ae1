#include "conversion.h"

#include <cmath>
#include <mutex>
#include <unordered_map>
#include <cstring>
#include <limits>

#include "record_layout.h"
#include "record_pool.h"

namespace ipvs {
namespace {

template <typename T>
std::optional<T> OptionalUint(const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsNumber()) throw Napi::TypeError::New(obj.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > static_cast<double>(std::numeric_limits<T>::max()) || std::floor(d) != d)
    throw Napi::RangeError::New(obj.Env(), std::string(key) + " is out of range");
  return static_cast<T>(d);
}

std::optional<std::string> OptionalString(const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsString()) throw Napi::TypeError::New(obj.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

template <size_t N>
std::optional<std::array<uint8_t, N>> OptionalBytes(const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      v.As<Napi::Uint8Array>().ElementLength() != N)
    throw Napi::TypeError::New(obj.Env(), std::string(key) + " must be a Uint8Array of " + std::to_string(N) + " bytes");
  std::array<uint8_t, N> out;
  std::memcpy(out.data(), v.As<Napi::Uint8Array>().Data(), N);
  return out;
}

std::optional<Napi::Object> OptionalObject(const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsObject()) throw Napi::TypeError::New(obj.Env(), std::string(key) + " must be an object");
  return v.As<Napi::Object>();
}

template <typename T>
void SetIf(Napi::Object& o, const char* key, const std::optional<T>& v) {
  if (v) o.Set(key, Napi::Number::New(o.Env(), static_cast<double>(*v)));
}
void SetIf(Napi::Object& o, const char* key, const std::optional<std::string>& v) {
  if (v) o.Set(key, Napi::String::New(o.Env(), *v));
}
template <size_t N>
void SetIf(Napi::Object& o, const char* key, const std::optional<std::array<uint8_t, N>>& v) {
  if (v) o.Set(key, Napi::Buffer<uint8_t>::Copy(o.Env(), v->data(), N));
}

template <size_t N>
Napi::Object FieldsToJs(Napi::Env env, const char* const (&names)[N], const uint32_t (&widths)[N], bool bits) {
  Napi::Object fields = Napi::Object::New(env);
  uint32_t offset = 1;
  for (size_t i = 0; i < N; ++i) {
    fields.Set(names[i], Napi::Number::New(env, bits ? static_cast<double>(1u << i) : offset));
    offset += widths[i];
  }
  return fields;
}

}  // namespace

std::optional<uint32_t> OptionalUint32(const Napi::Object& object, const char* key) {
  return OptionalUint<uint32_t>(object, key);
}

Request ObjectRequest(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, "request must be an object");
  Napi::Object o = value.As<Napi::Object>();
  Request r;
  auto command = OptionalUint<uint8_t>(o, "command");
  switch (command.value_or(IPVS_CMD_UNSPEC)) {
    case IPVS_CMD_NEW_DAEMON: case IPVS_CMD_DEL_DAEMON: case IPVS_CMD_GET_DAEMON:
    case IPVS_CMD_SET_CONFIG: case IPVS_CMD_GET_CONFIG: case IPVS_CMD_GET_INFO:
      break;
    default:
      throw Napi::RangeError::New(env, "request.command must be a daemon, config or info command (services and destinations travel as records)");
  }
  r.command = static_cast<Command>(*command);
  if (auto d = OptionalObject(o, "daemon")) {
    Daemon daemon;
    daemon.state = OptionalUint<uint32_t>(*d, "state");
    daemon.interface = OptionalString(*d, "interface");
    daemon.sync_id = OptionalUint<uint32_t>(*d, "syncId");
    daemon.max_length = OptionalUint<uint16_t>(*d, "maxLength");
    daemon.group4 = OptionalBytes<4>(*d, "group4");
    daemon.group6 = OptionalBytes<16>(*d, "group6");
    daemon.port = OptionalUint<uint16_t>(*d, "port");
    daemon.ttl = OptionalUint<uint8_t>(*d, "ttl");
    r.daemon = std::move(daemon);
  }
  if (auto t = OptionalObject(o, "timeouts")) {
    r.timeouts.tcp = OptionalUint<uint32_t>(*t, "tcp");
    r.timeouts.tcp_fin = OptionalUint<uint32_t>(*t, "tcpFin");
    r.timeouts.udp = OptionalUint<uint32_t>(*t, "udp");
  }
  return r;
}

Napi::Object DaemonToJs(Napi::Env env, const Daemon& d) {
  Napi::Object o = Napi::Object::New(env);
  SetIf(o, "state", d.state);
  SetIf(o, "interface", d.interface);
  SetIf(o, "syncId", d.sync_id);
  SetIf(o, "maxLength", d.max_length);
  SetIf(o, "group4", d.group4);
  SetIf(o, "group6", d.group6);
  SetIf(o, "port", d.port);
  SetIf(o, "ttl", d.ttl);
  return o;
}

Napi::Object TimeoutsToJs(Napi::Env env, const Timeouts& t) {
  Napi::Object o = Napi::Object::New(env);
  SetIf(o, "tcp", t.tcp);
  SetIf(o, "tcpFin", t.tcp_fin);
  SetIf(o, "udp", t.udp);
  return o;
}

Napi::Object InfoToJs(Napi::Env env, const Info& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", Napi::Number::New(env, info.version));
  o.Set("connectionTableSize", Napi::Number::New(env, info.conn_tab_size));
  return o;
}

Napi::Uint32Array RecordArray(const Napi::Value& value, size_t record_words, const char* name) {
  Napi::Env env = value.Env();
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw Napi::TypeError::New(env, std::string(name) + " must be a Uint32Array");
  Napi::Uint32Array words = value.As<Napi::Uint32Array>();
  if (words.ElementLength() % record_words != 0)
    throw Napi::RangeError::New(env, std::string(name) + " must hold whole records of " + std::to_string(record_words) + " words");
  return words;
}

std::vector<uint32_t> RecordWords(const Napi::Value& value, size_t record_words, const char* name) {
  Napi::Uint32Array words = RecordArray(value, record_words, name);
  return std::vector<uint32_t>(words.Data(), words.Data() + words.ElementLength());
}

std::vector<std::string> StringList(const Napi::Value& value, const char* name) {
  Napi::Env env = value.Env();
  if (!value.IsArray()) throw Napi::TypeError::New(env, std::string(name) + " must be an array");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<std::string> strings;
  strings.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(env, std::string(name) + " must hold strings");
    strings.push_back(v.As<Napi::String>().Utf8Value());
  }
  return strings;
}

Napi::Uint32Array WordsToJs(Napi::Env env, const std::vector<uint32_t>& words) {
  Napi::Uint32Array array = Napi::Uint32Array::New(env, words.size());
  if (!words.empty()) std::memcpy(array.Data(), words.data(), words.size() * sizeof(uint32_t));
  return array;
}

namespace {

// The vectors whose memory external arrays are made of, by address: ReleaseRecords finds an
// array's vector from its buffer. Never destroyed (a finalizer may run while the process exits).
struct OwnedWords {
  std::mutex mutex;
  std::unordered_map<const void*, std::vector<uint32_t>*> by_data;
};
OwnedWords& Owned() {
  static OwnedWords* owned = new OwnedWords;
  return *owned;
}

// The vector behind external array data `data`, no longer registered; null when there is none
// (a copied array, or one released already).
std::vector<uint32_t>* Unregister(const void* data, const std::vector<uint32_t>* only = nullptr) {
  OwnedWords& owned = Owned();
  std::lock_guard<std::mutex> lock(owned.mutex);
  auto it = owned.by_data.find(data);
  if (it == owned.by_data.end() || (only && it->second != only)) return nullptr;
  std::vector<uint32_t>* words = it->second;
  owned.by_data.erase(it);
  return words;
}

}  // namespace

Napi::Uint32Array WordsToJs(Napi::Env env, std::vector<uint32_t>&& words) {
  if (words.empty()) return Napi::Uint32Array::New(env, 0);
  // The array's memory becomes the ArrayBuffer's; the finalizer gives it to the record pool, or
  // frees it, with the buffer, unless ReleaseRecords took it first (the vector is then empty).
  auto* owned = new std::vector<uint32_t>(std::move(words));
  napi_value buffer;
  napi_status status = napi_create_external_arraybuffer(
      env, owned->data(), owned->size() * sizeof(uint32_t),
      [](napi_env, void* data, void* hint) {
        auto* words = static_cast<std::vector<uint32_t>*>(hint);
        Unregister(data, words);
        record_pool::Give(std::move(*words));
        delete words;
      },
      owned, &buffer);
  if (status != napi_ok) {
    // A runtime that allows no external buffers (napi_no_external_buffers_allowed): copy.
    Napi::Uint32Array copy = WordsToJs(env, *owned);
    delete owned;
    return copy;
  }
  {
    OwnedWords& registry = Owned();
    std::lock_guard<std::mutex> lock(registry.mutex);
    registry.by_data[owned->data()] = owned;
  }
  return Napi::Uint32Array::New(env, owned->size(), Napi::ArrayBuffer(env, buffer), 0);
}

Napi::Value ReleaseRecords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < info.Length(); ++i) {
    if (!info[i].IsTypedArray()) throw Napi::TypeError::New(env, "releaseRecords takes Uint32Arrays");
    Napi::TypedArray array = info[i].As<Napi::TypedArray>();
    if (array.TypedArrayType() != napi_uint32_array) throw Napi::TypeError::New(env, "releaseRecords takes Uint32Arrays");
    Napi::ArrayBuffer buffer = array.ArrayBuffer();
    void* data = buffer.Data();
    if (!data || array.ByteOffset() != 0) continue;  // empty, detached already, or not a whole buffer
    {
      OwnedWords& owned = Owned();
      std::lock_guard<std::mutex> lock(owned.mutex);
      if (owned.by_data.find(data) == owned.by_data.end()) continue;  // not the addon's own memory
    }
    // Detached, the buffer and every view of it are empty for JS: nothing can read or keep the
    // memory any more, and only then is it given to the pool.
    if (napi_detach_arraybuffer(env, buffer) != napi_ok) continue;
    if (std::vector<uint32_t>* words = Unregister(data)) record_pool::Give(std::move(*words));
  }
  return env.Undefined();
}

Napi::Array StringsToJs(Napi::Env env, const std::vector<std::string>& strings) {
  Napi::Array array = Napi::Array::New(env, strings.size());
  for (size_t i = 0; i < strings.size(); ++i) array.Set(static_cast<uint32_t>(i), Napi::String::New(env, strings[i]));
  return array;
}

Napi::Object RecordLayoutToJs(Napi::Env env) {
  namespace svc = record::service;
  namespace dst = record::destination;
  auto kind = [&](auto& names, auto& widths, uint32_t words) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("words", Napi::Number::New(env, words));
    o.Set("at", FieldsToJs(env, names, widths, false));
    o.Set("bit", FieldsToJs(env, names, widths, true));
    return o;
  };
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("service", kind(svc::kNames, svc::kWidths, svc::kWords));
  layout.Set("destination", kind(dst::kNames, dst::kWidths, dst::kWords));
  Napi::Object request = Napi::Object::New(env);
  request.Set("words", Napi::Number::New(env, record::request::kWords));
  request.Set("command", Napi::Number::New(env, record::request::kCommand));
  request.Set("service", Napi::Number::New(env, record::request::kService));
  request.Set("destination", Napi::Number::New(env, record::request::kDestination));
  layout.Set("request", request);
  Napi::Array counters = Napi::Array::New(env);
#define IPVS_COUNTER_NAME(name) counters.Set(counters.Length(), Napi::String::New(env, #name));
  IPVS_STATS_COUNTERS(IPVS_COUNTER_NAME)
#undef IPVS_COUNTER_NAME
  layout.Set("statsCounters", counters);
  return layout;
}

}  // namespace ipvs
