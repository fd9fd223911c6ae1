#include "batch_records.h"

#include <linux/netlink.h>

#include <limits>
#include <string>
#include <vector>

#include "conversion.h"
#include "promise_worker.h"
#include "records.h"

namespace ipvs {
namespace {

class BatchWorker : public PromiseWorker {
 public:
  BatchWorker(Napi::Env env, std::shared_ptr<GenlSocket> socket, Napi::Uint32Array records,
              std::vector<std::string> strings, BatchOptions options, bool tuned)
      : PromiseWorker(env, "ipvs-netlink:batch"), socket_(std::move(socket)),
        records_(Napi::Persistent(records)), words_(records.Data()),
        count_(records.ElementLength() / record::request::kWords), strings_(std::move(strings)), options_(options),
        tuned_(tuned), batch_(count_) {}

 protected:
  void Run() override {
    if (count_ == 1 && !tuned_) {
      // A single call: one request and its ack, without the batch's chunking machinery.
      Request request;
      try {
        request = UnpackRequest(words_, strings_);
      } catch (const RecordError& e) {
        throw SystemError(EINVAL, std::string("request record 0: ") + e.what());
      }
      try {
        socket_->Execute(request, [](const nlmsghdr*) {});
      } catch (const SystemError& e) {
        if (e.error_number() == 0) throw;
        batch_.results[0].error = e.error_number();
        batch_.results[0].kernel_message = e.kernel_message();
      }
      stats_.send_calls = 1;
      return;
    }
    // Each record is checked and encoded straight into the batch's messages.
    auto encode = [this](size_t i, uint16_t family, uint32_t seq, std::vector<uint8_t>& out) {
      try {
        AppendRequestRecord(out, words_ + i * record::request::kWords, strings_, family, seq, NLM_F_REQUEST | NLM_F_ACK);
      } catch (const RecordError& e) {
        throw SystemError(EINVAL, "request record " + std::to_string(i) + ": " + e.what());
      }
    };
    socket_->ExecuteBatch(encode, batch_, options_, &stats_);
  }

  Napi::Value Resolve(Napi::Env env) override {
    const size_t count = batch_.results.size();
    Napi::Int32Array errors = Napi::Int32Array::New(env, count);
    Napi::Uint8Array unknown = Napi::Uint8Array::New(env, count);
    Napi::Object messages = Napi::Object::New(env);
    for (size_t i = 0; i < count; ++i) {
      const RequestResult& r = batch_.results[i];
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
  // The records are read in place on the thread pool; the reference keeps their memory alive,
  // and the caller leaves them alone until the promise settles.
  Napi::Reference<Napi::Uint32Array> records_;
  const uint32_t* words_;
  size_t count_;
  std::vector<std::string> strings_;
  BatchOptions options_;
  bool tuned_;
  BatchStats stats_;
  // Made here, on the JS thread, and filled on the thread pool.
  BatchBuffers batch_;
};

}  // namespace

Napi::Value QueueBatch(const Napi::CallbackInfo& info, std::shared_ptr<GenlSocket> socket) {
  Napi::Env env = info.Env();
  Napi::Uint32Array records = RecordArray(info[0], record::request::kWords, "records");
  std::vector<std::string> strings = StringList(info[1], "strings");
  // Test-only tuning (see BatchOptions): force many chunks, or a real receive-buffer overrun.
  BatchOptions options;
  bool tuned = false;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsObject()) throw Napi::TypeError::New(env, "tuning must be an object");
    Napi::Object o = info[2].As<Napi::Object>();
    if (auto acks = OptionalUint32(o, "acksPerChunk")) options.acks_per_chunk = *acks, tuned = true;
    if (auto size = OptionalUint32(o, "receiveBuffer")) {
      if (*size > static_cast<uint32_t>(std::numeric_limits<int>::max() / 2))
        throw Napi::RangeError::New(env, "receiveBuffer is out of range");
      options.receive_buffer = static_cast<int>(*size);
      tuned = true;
    }
  }
  auto* worker = new BatchWorker(env, std::move(socket), records, std::move(strings), options, tuned);
  return worker->Queue();
}

}  // namespace ipvs
