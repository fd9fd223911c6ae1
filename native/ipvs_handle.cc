#include "ipvs_handle.h"

#include <netlink/msg.h>

#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "ipvs_codec.h"
#include "promise_worker.h"

namespace ipvs {
namespace {

// ---- JS -> codec records (the JS layer has validated; these only guard the types) ------

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
  if (!v.IsBuffer() || v.As<Napi::Buffer<uint8_t>>().Length() != N)
    throw Napi::TypeError::New(obj.Env(), std::string(key) + " must be a Buffer of " + std::to_string(N) + " bytes");
  std::array<uint8_t, N> out;
  std::memcpy(out.data(), v.As<Napi::Buffer<uint8_t>>().Data(), N);
  return out;
}

std::optional<Napi::Object> OptionalObject(const Napi::Object& obj, const char* key) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined() || v.IsNull()) return std::nullopt;
  if (!v.IsObject()) throw Napi::TypeError::New(obj.Env(), std::string(key) + " must be an object");
  return v.As<Napi::Object>();
}

Service ToService(const Napi::Object& o) {
  Service s;
  s.af = OptionalUint<uint16_t>(o, "af");
  s.protocol = OptionalUint<uint16_t>(o, "protocol");
  s.address = OptionalBytes<16>(o, "address");
  s.port = OptionalUint<uint16_t>(o, "port");
  s.fwmark = OptionalUint<uint32_t>(o, "fwmark");
  s.scheduler = OptionalString(o, "scheduler");
  s.flags = OptionalUint<uint32_t>(o, "flags");
  s.flags_mask = OptionalUint<uint32_t>(o, "flagsMask");
  s.timeout = OptionalUint<uint32_t>(o, "timeout");
  s.netmask = OptionalUint<uint32_t>(o, "netmask");
  s.pe_name = OptionalString(o, "peName");
  return s;
}

Destination ToDestination(const Napi::Object& o) {
  Destination d;
  d.address = OptionalBytes<16>(o, "address");
  d.port = OptionalUint<uint16_t>(o, "port");
  d.forward = OptionalUint<uint32_t>(o, "forward");
  d.weight = OptionalUint<uint32_t>(o, "weight");
  d.upper_threshold = OptionalUint<uint32_t>(o, "upperThreshold");
  d.lower_threshold = OptionalUint<uint32_t>(o, "lowerThreshold");
  d.af = OptionalUint<uint16_t>(o, "af");
  d.tunnel_type = OptionalUint<uint8_t>(o, "tunnelType");
  d.tunnel_port = OptionalUint<uint16_t>(o, "tunnelPort");
  d.tunnel_flags = OptionalUint<uint16_t>(o, "tunnelFlags");
  return d;
}

Daemon ToDaemon(const Napi::Object& o) {
  Daemon d;
  d.state = OptionalUint<uint32_t>(o, "state");
  d.interface = OptionalString(o, "interface");
  d.sync_id = OptionalUint<uint32_t>(o, "syncId");
  d.max_length = OptionalUint<uint16_t>(o, "maxLength");
  d.group4 = OptionalBytes<4>(o, "group4");
  d.group6 = OptionalBytes<16>(o, "group6");
  d.port = OptionalUint<uint16_t>(o, "port");
  d.ttl = OptionalUint<uint8_t>(o, "ttl");
  return d;
}

Request ToRequest(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, "request must be an object");
  Napi::Object o = value.As<Napi::Object>();
  Request r;
  auto command = OptionalUint<uint8_t>(o, "command");
  if (!command || *command == IPVS_CMD_UNSPEC || *command > IPVS_CMD_MAX)
    throw Napi::RangeError::New(env, "request.command is not an IPVS command");
  r.command = static_cast<Command>(*command);
  if (auto s = OptionalObject(o, "service")) r.service = ToService(*s);
  if (auto d = OptionalObject(o, "destination")) r.destination = ToDestination(*d);
  if (auto d = OptionalObject(o, "daemon")) r.daemon = ToDaemon(*d);
  if (auto t = OptionalObject(o, "timeouts")) {
    r.timeouts.tcp = OptionalUint<uint32_t>(*t, "tcp");
    r.timeouts.tcp_fin = OptionalUint<uint32_t>(*t, "tcpFin");
    r.timeouts.udp = OptionalUint<uint32_t>(*t, "udp");
  }
  return r;
}

// ---- codec records -> JS -----------------------------------------------------------------

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

void SetStats(Napi::Object& o, const std::optional<Stats>& stats) {
  if (!stats) return;
  Napi::Env env = o.Env();
  Napi::Object s = Napi::Object::New(env);
  auto big = [&](const char* key, uint64_t v) { s.Set(key, Napi::BigInt::New(env, v)); };
  big("connections", stats->conns);
  big("packetsIn", stats->inpkts);
  big("packetsOut", stats->outpkts);
  big("bytesIn", stats->inbytes);
  big("bytesOut", stats->outbytes);
  big("connectionRate", stats->cps);
  big("packetRateIn", stats->inpps);
  big("packetRateOut", stats->outpps);
  big("byteRateIn", stats->inbps);
  big("byteRateOut", stats->outbps);
  o.Set("stats", s);
}

Napi::Object FromService(Napi::Env env, const Service& s) {
  Napi::Object o = Napi::Object::New(env);
  SetIf(o, "af", s.af);
  SetIf(o, "protocol", s.protocol);
  SetIf(o, "address", s.address);
  SetIf(o, "port", s.port);
  SetIf(o, "fwmark", s.fwmark);
  SetIf(o, "scheduler", s.scheduler);
  SetIf(o, "flags", s.flags);
  SetIf(o, "flagsMask", s.flags_mask);
  SetIf(o, "timeout", s.timeout);
  SetIf(o, "netmask", s.netmask);
  SetIf(o, "peName", s.pe_name);
  SetStats(o, s.stats);
  return o;
}

Napi::Object FromDestination(Napi::Env env, const Destination& d) {
  Napi::Object o = Napi::Object::New(env);
  SetIf(o, "address", d.address);
  SetIf(o, "port", d.port);
  SetIf(o, "forward", d.forward);
  SetIf(o, "weight", d.weight);
  SetIf(o, "upperThreshold", d.upper_threshold);
  SetIf(o, "lowerThreshold", d.lower_threshold);
  SetIf(o, "af", d.af);
  SetIf(o, "tunnelType", d.tunnel_type);
  SetIf(o, "tunnelPort", d.tunnel_port);
  SetIf(o, "tunnelFlags", d.tunnel_flags);
  SetIf(o, "activeConnections", d.active_conns);
  SetIf(o, "inactiveConnections", d.inactive_conns);
  SetIf(o, "persistentConnections", d.persistent_conns);
  SetStats(o, d.stats);
  return o;
}

Napi::Object FromDaemon(Napi::Env env, const Daemon& d) {
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

// ---- workers ---------------------------------------------------------------------------------

class OpenWorker : public PromiseWorker {
 public:
  OpenWorker(Napi::Env env, std::string netns_path, Napi::Function constructor)
      : PromiseWorker(env, "ipvs-netlink:open"), netns_path_(std::move(netns_path)),
        constructor_(Napi::Persistent(constructor)) {}

 protected:
  void Run() override { socket_ = GenlSocket::Open(netns_path_); }
  Napi::Value Resolve(Napi::Env env) override;

 private:
  std::string netns_path_;
  Napi::FunctionReference constructor_;
  std::shared_ptr<GenlSocket> socket_;
};

// Holds decoded replies of any kind until they are turned into JS on the JS thread.
class ExecuteWorker : public PromiseWorker {
 public:
  ExecuteWorker(Napi::Env env, std::shared_ptr<GenlSocket> socket, Request request)
      : PromiseWorker(env, "ipvs-netlink:execute"), socket_(std::move(socket)), request_(std::move(request)) {}

 protected:
  void Run() override {
    socket_->Execute(request_, [this](const nlmsghdr* reply) {
      switch (request_.command) {
        case IPVS_CMD_GET_SERVICE: services_.push_back(DecodeService(reply)); break;
        case IPVS_CMD_GET_DEST: destinations_.push_back(DecodeDestination(reply)); break;
        case IPVS_CMD_GET_DAEMON: daemons_.push_back(DecodeDaemon(reply)); break;
        case IPVS_CMD_GET_CONFIG: timeouts_ = DecodeTimeouts(reply); break;
        case IPVS_CMD_GET_INFO: info_ = DecodeInfo(reply); break;
        default: break;  // commands that change state answer with an ack only
      }
    });
  }

  Napi::Value Resolve(Napi::Env env) override {
    switch (request_.command) {
      case IPVS_CMD_GET_SERVICE: return ToArray(env, services_, FromService);
      case IPVS_CMD_GET_DEST: return ToArray(env, destinations_, FromDestination);
      case IPVS_CMD_GET_DAEMON: return ToArray(env, daemons_, FromDaemon);
      case IPVS_CMD_GET_CONFIG: {
        Napi::Object o = Napi::Object::New(env);
        SetIf(o, "tcp", timeouts_.tcp);
        SetIf(o, "tcpFin", timeouts_.tcp_fin);
        SetIf(o, "udp", timeouts_.udp);
        return o;
      }
      case IPVS_CMD_GET_INFO: {
        if (!info_) throw Napi::Error::New(env, "get info: the kernel sent no reply");
        Napi::Object o = Napi::Object::New(env);
        o.Set("version", Napi::Number::New(env, info_->version));
        o.Set("connectionTableSize", Napi::Number::New(env, info_->conn_tab_size));
        return o;
      }
      default: return env.Undefined();
    }
  }

 private:
  template <typename T, typename F>
  static Napi::Array ToArray(Napi::Env env, const std::vector<T>& items, F convert) {
    Napi::Array array = Napi::Array::New(env, items.size());
    for (size_t i = 0; i < items.size(); ++i) array.Set(static_cast<uint32_t>(i), convert(env, items[i]));
    return array;
  }

  std::shared_ptr<GenlSocket> socket_;
  Request request_;
  std::vector<Service> services_;
  std::vector<Destination> destinations_;
  std::vector<Daemon> daemons_;
  Timeouts timeouts_;
  std::optional<Info> info_;
};

// ---- batch records -----------------------------------------------------------------------
//
// A batch crosses into the addon as packed records, not objects: reading ~25 properties per
// request through N-API on the JS thread cost seconds of event-loop time for 11,000 requests
// under emulation. lib/batch.ts (RecordWriter) writes one record per request, 32 u32 words in
// host order, as it queues; here they are copied with one memcpy and decoded on the thread pool.
// Strings (scheduler, persistence engine) are indexes into a small array sent beside them.
namespace record {
constexpr size_t kWords = 32;
enum Word : size_t {
  kCommand = 0, kPresent = 1,
  kSvcAf = 2, kSvcProtocol = 3, kSvcAddress = 4 /* 4 words */, kSvcPort = 8, kFwmark = 9, kScheduler = 10,
  kFlags = 11, kFlagsMask = 12, kTimeout = 13, kNetmask = 14, kPeName = 15,
  kDestAddress = 16 /* 4 words */, kDestPort = 20, kForward = 21, kWeight = 22, kUpperThreshold = 23,
  kLowerThreshold = 24, kDestAf = 25, kTunnelType = 26, kTunnelPort = 27, kTunnelFlags = 28,
};
// Bit n of kPresent: field n is set. Bits 0-10 service fields, 11 the service itself,
// bits 12-21 destination fields, 22 the destination itself.
enum Bit : uint32_t {
  kHasSvcAf = 0, kHasSvcProtocol, kHasSvcAddress, kHasSvcPort, kHasFwmark, kHasScheduler, kHasFlags,
  kHasFlagsMask, kHasTimeout, kHasNetmask, kHasPeName, kHasService,
  kHasDestAddress, kHasDestPort, kHasForward, kHasWeight, kHasUpperThreshold, kHasLowerThreshold, kHasDestAf,
  kHasTunnelType, kHasTunnelPort, kHasTunnelFlags, kHasDestination,
};
}  // namespace record

Request DecodeRecord(const uint32_t* w, size_t index, const std::vector<std::string>& strings) {
  using namespace record;
  auto fail = [index](const char* what) {
    return SystemError(EINVAL, "batch request " + std::to_string(index) + ": " + what);
  };
  const uint32_t present = w[kPresent];
  auto has = [present](uint32_t bit) { return (present >> bit) & 1u; };
  auto u16 = [&](size_t word, const char* what) -> uint16_t {
    if (w[word] > 0xffff) throw fail(what);
    return static_cast<uint16_t>(w[word]);
  };
  auto str = [&](size_t word, const char* what) -> std::string {
    if (w[word] >= strings.size()) throw fail(what);
    return strings[w[word]];
  };
  auto address = [&](size_t word) {
    Address a;
    std::memcpy(a.data(), &w[word], a.size());
    return a;
  };
  Request r;
  if (w[kCommand] == IPVS_CMD_UNSPEC || w[kCommand] > IPVS_CMD_MAX) throw fail("not an IPVS command");
  r.command = static_cast<Command>(w[kCommand]);
  if (has(kHasService)) {
    Service s;
    if (has(kHasSvcAf)) s.af = u16(kSvcAf, "service af out of range");
    if (has(kHasSvcProtocol)) s.protocol = u16(kSvcProtocol, "service protocol out of range");
    if (has(kHasSvcAddress)) s.address = address(kSvcAddress);
    if (has(kHasSvcPort)) s.port = u16(kSvcPort, "service port out of range");
    if (has(kHasFwmark)) s.fwmark = w[kFwmark];
    if (has(kHasScheduler)) s.scheduler = str(kScheduler, "bad scheduler index");
    if (has(kHasFlags)) s.flags = w[kFlags];
    if (has(kHasFlagsMask)) s.flags_mask = w[kFlagsMask];
    if (has(kHasTimeout)) s.timeout = w[kTimeout];
    if (has(kHasNetmask)) s.netmask = w[kNetmask];
    if (has(kHasPeName)) s.pe_name = str(kPeName, "bad persistence engine index");
    r.service = std::move(s);
  }
  if (has(kHasDestination)) {
    Destination d;
    if (has(kHasDestAddress)) d.address = address(kDestAddress);
    if (has(kHasDestPort)) d.port = u16(kDestPort, "destination port out of range");
    if (has(kHasForward)) d.forward = w[kForward];
    if (has(kHasWeight)) d.weight = w[kWeight];
    if (has(kHasUpperThreshold)) d.upper_threshold = w[kUpperThreshold];
    if (has(kHasLowerThreshold)) d.lower_threshold = w[kLowerThreshold];
    if (has(kHasDestAf)) d.af = u16(kDestAf, "destination af out of range");
    if (has(kHasTunnelType)) {
      if (w[kTunnelType] > 0xff) throw fail("tunnel type out of range");
      d.tunnel_type = static_cast<uint8_t>(w[kTunnelType]);
    }
    if (has(kHasTunnelPort)) d.tunnel_port = u16(kTunnelPort, "tunnel port out of range");
    if (has(kHasTunnelFlags)) d.tunnel_flags = u16(kTunnelFlags, "tunnel flags out of range");
    r.destination = std::move(d);
  }
  if (r.IsDump()) throw fail("a batch cannot contain dump requests");
  return r;
}

// Resolves to { errors: Int32Array (0 or the errno, per request), unknown: Uint8Array (1: the
// answer was lost), messages: { [index]: kernel message }, sendCalls, overruns }.
class BatchWorker : public PromiseWorker {
 public:
  BatchWorker(Napi::Env env, std::shared_ptr<GenlSocket> socket, std::vector<uint32_t> words,
              std::vector<std::string> strings, BatchOptions options)
      : PromiseWorker(env, "ipvs-netlink:batch"), socket_(std::move(socket)), words_(std::move(words)),
        strings_(std::move(strings)), options_(options) {}

 protected:
  void Run() override {
    const size_t count = words_.size() / record::kWords;
    std::vector<Request> requests;
    requests.reserve(count);
    for (size_t i = 0; i < count; ++i) requests.push_back(DecodeRecord(&words_[i * record::kWords], i, strings_));
    std::vector<uint32_t>().swap(words_);
    results_ = socket_->ExecuteBatch(requests, options_, &stats_);
  }

  Napi::Value Resolve(Napi::Env env) override {
    const size_t count = results_.size();
    Napi::Int32Array errors = Napi::Int32Array::New(env, count);
    Napi::Uint8Array unknown = Napi::Uint8Array::New(env, count);
    Napi::Object messages = Napi::Object::New(env);
    for (size_t i = 0; i < count; ++i) {
      const RequestResult& r = results_[i];
      errors[i] = r.error;
      unknown[i] = r.unknown ? 1 : 0;
      if (!r.kernel_message.empty()) messages.Set(static_cast<uint32_t>(i), Napi::String::New(env, r.kernel_message));
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("errors", errors);
    out.Set("unknown", unknown);
    out.Set("messages", messages);
    out.Set("sendCalls", Napi::Number::New(env, static_cast<double>(stats_.send_calls)));
    out.Set("overruns", Napi::Number::New(env, static_cast<double>(stats_.overruns)));
    return out;
  }

 private:
  std::shared_ptr<GenlSocket> socket_;
  std::vector<uint32_t> words_;
  std::vector<std::string> strings_;
  BatchOptions options_;
  BatchStats stats_;
  std::vector<RequestResult> results_;
};

// ---- whole-table listing -----------------------------------------------------------------
//
// listTable reads the service dump and then one destination dump per service (the kernel
// dumps destinations one service at a time, and a socket runs one dump at a time) in a single
// thread-pool job. It answers with packed records, not objects, for the reason batches arrive
// packed: ~25 N-API property writes and 10 BigInts per destination cost seconds of event-loop
// time for 10,000 destinations under emulation. lib/table.ts reads these layouts.
namespace table {
// Each record ends with its counters (zeros when the kernel sent none), each u64 as two u32
// words, low then high, so the layout does not depend on byte order: conns, inpkts, outpkts,
// inbytes, outbytes, cps, inpps, outpps, inbps, outbps.
constexpr size_t kStatsWords = 20;
enum ServiceWord : size_t {
  kSvcPresent = 0, kSvcAf, kSvcProtocol, kSvcAddress /* 4 words */, kSvcPort = kSvcAddress + 4, kSvcFwmark,
  kSvcScheduler, kSvcFlags, kSvcTimeout, kSvcNetmask, kSvcPeName, kSvcDestinationCount, kSvcStats,
};
constexpr size_t kServiceWords = kSvcStats + kStatsWords;
enum ServiceBit : uint32_t {
  kHasSvcAf = 0, kHasSvcProtocol, kHasSvcAddress, kHasSvcPort, kHasSvcFwmark, kHasSvcScheduler, kHasSvcFlags,
  kHasSvcTimeout, kHasSvcNetmask, kHasSvcPeName, kHasSvcStats,
};
enum DestinationWord : size_t {
  kDestPresent = 0, kDestAddress /* 4 words */, kDestPort = kDestAddress + 4, kDestForward, kDestWeight,
  kDestUpperThreshold, kDestLowerThreshold, kDestAf, kDestTunnelType, kDestTunnelPort, kDestTunnelFlags,
  kDestActiveConns, kDestInactiveConns, kDestPersistentConns, kDestStats,
};
constexpr size_t kDestinationWords = kDestStats + kStatsWords;
enum DestinationBit : uint32_t {
  kHasDestAddress = 0, kHasDestPort, kHasDestForward, kHasDestWeight, kHasDestUpperThreshold,
  kHasDestLowerThreshold, kHasDestAf, kHasDestTunnelType, kHasDestTunnelPort, kHasDestTunnelFlags,
  kHasDestActiveConns, kHasDestInactiveConns, kHasDestPersistentConns, kHasDestStats,
};
// Appends records to a word array; strings (scheduler, persistence engine) become
// indexes into a deduplicated list.
class Writer {
 public:
  std::vector<uint32_t> words;
  std::vector<std::string>* strings;

  explicit Writer(std::vector<std::string>* shared_strings) : strings(shared_strings) {}

  uint32_t* Record(size_t size) {
    words.resize(words.size() + size, 0);
    return words.data() + words.size() - size;
  }
  template <typename T>
  static void Put(uint32_t* record, uint32_t& present, uint32_t bit, size_t word, const std::optional<T>& value) {
    if (!value) return;
    present |= 1u << bit;
    record[word] = static_cast<uint32_t>(*value);
  }
  static void PutAddress(uint32_t* record, uint32_t& present, uint32_t bit, size_t word, const std::optional<Address>& value) {
    if (!value) return;
    present |= 1u << bit;
    std::memcpy(&record[word], value->data(), value->size());
  }
  void PutString(uint32_t* record, uint32_t& present, uint32_t bit, size_t word, const std::optional<std::string>& value) {
    if (!value) return;
    present |= 1u << bit;
    size_t index = 0;
    while (index < strings->size() && (*strings)[index] != *value) ++index;  // a handful of names
    if (index == strings->size()) strings->push_back(*value);
    record[word] = static_cast<uint32_t>(index);
  }
  static void PutStats(uint32_t* record, uint32_t& present, uint32_t bit, size_t word, const std::optional<Stats>& value) {
    if (!value) return;
    present |= 1u << bit;
    const Stats& s = *value;
    const uint64_t counters[] = {s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes, s.cps, s.inpps, s.outpps, s.inbps, s.outbps};
    for (size_t i = 0; i < std::size(counters); ++i) {
      record[word + 2 * i] = static_cast<uint32_t>(counters[i]);
      record[word + 2 * i + 1] = static_cast<uint32_t>(counters[i] >> 32);
    }
  }
};

void PackService(Writer& out, const Service& s, size_t destination_count) {
  uint32_t* r = out.Record(kServiceWords);
  uint32_t present = 0;
  Writer::Put(r, present, kHasSvcAf, kSvcAf, s.af);
  Writer::Put(r, present, kHasSvcProtocol, kSvcProtocol, s.protocol);
  Writer::PutAddress(r, present, kHasSvcAddress, kSvcAddress, s.address);
  Writer::Put(r, present, kHasSvcPort, kSvcPort, s.port);
  Writer::Put(r, present, kHasSvcFwmark, kSvcFwmark, s.fwmark);
  out.PutString(r, present, kHasSvcScheduler, kSvcScheduler, s.scheduler);
  Writer::Put(r, present, kHasSvcFlags, kSvcFlags, s.flags);
  Writer::Put(r, present, kHasSvcTimeout, kSvcTimeout, s.timeout);
  Writer::Put(r, present, kHasSvcNetmask, kSvcNetmask, s.netmask);
  out.PutString(r, present, kHasSvcPeName, kSvcPeName, s.pe_name);
  Writer::PutStats(r, present, kHasSvcStats, kSvcStats, s.stats);
  r[kSvcDestinationCount] = static_cast<uint32_t>(destination_count);
  r[kSvcPresent] = present;
}

void PackDestination(Writer& out, const Destination& d) {
  uint32_t* r = out.Record(kDestinationWords);
  uint32_t present = 0;
  Writer::PutAddress(r, present, kHasDestAddress, kDestAddress, d.address);
  Writer::Put(r, present, kHasDestPort, kDestPort, d.port);
  Writer::Put(r, present, kHasDestForward, kDestForward, d.forward);
  Writer::Put(r, present, kHasDestWeight, kDestWeight, d.weight);
  Writer::Put(r, present, kHasDestUpperThreshold, kDestUpperThreshold, d.upper_threshold);
  Writer::Put(r, present, kHasDestLowerThreshold, kDestLowerThreshold, d.lower_threshold);
  Writer::Put(r, present, kHasDestAf, kDestAf, d.af);
  Writer::Put(r, present, kHasDestTunnelType, kDestTunnelType, d.tunnel_type);
  Writer::Put(r, present, kHasDestTunnelPort, kDestTunnelPort, d.tunnel_port);
  Writer::Put(r, present, kHasDestTunnelFlags, kDestTunnelFlags, d.tunnel_flags);
  Writer::Put(r, present, kHasDestActiveConns, kDestActiveConns, d.active_conns);
  Writer::Put(r, present, kHasDestInactiveConns, kDestInactiveConns, d.inactive_conns);
  Writer::Put(r, present, kHasDestPersistentConns, kDestPersistentConns, d.persistent_conns);
  Writer::PutStats(r, present, kHasDestStats, kDestStats, d.stats);
  r[kDestPresent] = present;
}
}  // namespace table

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

// Resolves to { services: Uint32Array, destinations: Uint32Array, strings: string[] } (see
// namespace table). A service that
// disappears between the two dumps is listed with no destinations: the kernel answers an
// empty dump for it.
class ListTableWorker : public PromiseWorker {
 public:
  ListTableWorker(Napi::Env env, std::shared_ptr<GenlSocket> socket)
      : PromiseWorker(env, "ipvs-netlink:listTable"), socket_(std::move(socket)), services_(&strings_),
        destinations_(&strings_) {}

 protected:
  void Run() override {
    std::vector<Service> services;
    Request dump_services;
    dump_services.command = IPVS_CMD_GET_SERVICE;
    socket_->Execute(dump_services, [&](const nlmsghdr* reply) { services.push_back(DecodeService(reply)); });
    std::vector<Destination> destinations;
    for (const Service& service : services) {
      Request dump_destinations;
      dump_destinations.command = IPVS_CMD_GET_DEST;
      dump_destinations.service = KeyOf(service);
      destinations.clear();
      socket_->Execute(dump_destinations, [&](const nlmsghdr* reply) { destinations.push_back(DecodeDestination(reply)); });
      table::PackService(services_, service, destinations.size());
      for (const Destination& d : destinations) table::PackDestination(destinations_, d);
    }
  }

  Napi::Value Resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("services", CopyOut(env, services_.words));
    out.Set("destinations", CopyOut(env, destinations_.words));
    Napi::Array strings = Napi::Array::New(env, strings_.size());
    for (size_t i = 0; i < strings_.size(); ++i) strings.Set(static_cast<uint32_t>(i), Napi::String::New(env, strings_[i]));
    out.Set("strings", strings);
    return out;
  }

 private:
  static Napi::Uint32Array CopyOut(Napi::Env env, const std::vector<uint32_t>& words) {
    Napi::Uint32Array array = Napi::Uint32Array::New(env, words.size());
    if (!words.empty()) std::memcpy(array.Data(), words.data(), words.size() * sizeof(uint32_t));
    return array;
  }

  std::shared_ptr<GenlSocket> socket_;
  std::vector<std::string> strings_;
  table::Writer services_;
  table::Writer destinations_;
};

}  // namespace

Napi::Value OpenWorker::Resolve(Napi::Env env) {
  Napi::Object handle = constructor_.New({});
  IpvsHandle::Unwrap(handle)->Attach(std::move(socket_));
  return handle;
}

void IpvsHandle::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "IpvsHandle",
                                    {
                                        StaticMethod<&IpvsHandle::Open>("open"),
                                        InstanceMethod<&IpvsHandle::Execute>("execute"),
                                        InstanceMethod<&IpvsHandle::ExecuteBatch>("executeBatch"),
                                        InstanceMethod<&IpvsHandle::ListTable>("listTable"),
                                        InstanceMethod<&IpvsHandle::Close>("close"),
                                    });
  // Kept per environment so the addon works in worker_threads too.
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(ctor)));
  exports.Set("IpvsHandle", ctor);
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
  auto* worker = new ExecuteWorker(env, SocketOrThrow(env), ToRequest(info[0]));
  return worker->Queue();
}

// executeBatch(records: Uint32Array, strings: string[], options?) -> Promise (see BatchWorker).
Napi::Value IpvsHandle::ExecuteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw Napi::TypeError::New(env, "records must be a Uint32Array");
  Napi::Uint32Array records = info[0].As<Napi::Uint32Array>();
  if (records.ElementLength() % record::kWords != 0)
    throw Napi::RangeError::New(env, "records must hold whole records of " + std::to_string(record::kWords) + " words");
  std::vector<uint32_t> words(records.Data(), records.Data() + records.ElementLength());
  if (!info[1].IsArray()) throw Napi::TypeError::New(env, "strings must be an array");
  Napi::Array array = info[1].As<Napi::Array>();
  std::vector<std::string> strings;
  strings.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(env, "strings must hold strings");
    strings.push_back(v.As<Napi::String>().Utf8Value());
  }
  // Optional { acksPerChunk, receiveBuffer }: tuning for tests (see BatchOptions).
  BatchOptions options;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
    Napi::Object o = info[2].As<Napi::Object>();
    if (auto acks = OptionalUint<uint32_t>(o, "acksPerChunk")) options.acks_per_chunk = *acks;
    if (auto size = OptionalUint<uint32_t>(o, "receiveBuffer")) {
      if (*size > static_cast<uint32_t>(std::numeric_limits<int>::max() / 2))
        throw Napi::RangeError::New(env, "receiveBuffer is out of range");
      options.receive_buffer = static_cast<int>(*size);
    }
  }
  auto* worker = new BatchWorker(env, SocketOrThrow(env), std::move(words), std::move(strings), options);
  return worker->Queue();
}

// listTable() -> Promise (see ListTableWorker).
Napi::Value IpvsHandle::ListTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* worker = new ListTableWorker(env, SocketOrThrow(env));
  return worker->Queue();
}

Napi::Value IpvsHandle::Close(const Napi::CallbackInfo& info) {
  // The JS layer closes only once its queue has drained, so no worker holds the socket busy;
  // a worker that still holds a reference keeps the object alive until it finishes.
  if (socket_) socket_->Close();
  socket_.reset();
  return info.Env().Undefined();
}

}  // namespace ipvs
