#include "proc_net.h"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "netns.h"
#include "promise_worker.h"
#include "system_error.h"

namespace ipvs {
namespace {

// These files are a few hundred bytes; the cap keeps a misnamed request from reading forever.
constexpr size_t kMaxBytes = 1 << 20;

bool IsPlainName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

class ReadProcNetWorker : public PromiseWorker {
 public:
  ReadProcNetWorker(Napi::Env env, std::string netns, std::string name)
      : PromiseWorker(env, "ipvs-netlink:readProcNet"), netns_(std::move(netns)), name_(std::move(name)) {}

 protected:
  void Run() override {
    const std::string path = "/proc/thread-self/net/" + name_;
    // Opened by a thread of its own inside the namespace; the open file keeps that namespace.
    const int fd = NetnsFd(netns_).Create([&path] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }, "open a /proc/net file");
    char buffer[4096];
    for (;;) {
      ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        throw SystemError(err, "read " + path, "", path);
      }
      if (n == 0) break;
      text_.append(buffer, static_cast<size_t>(n));
      if (text_.size() > kMaxBytes) {
        ::close(fd);
        throw SystemError(EFBIG, "read " + path, "", path);
      }
    }
    ::close(fd);
  }

  Napi::Value Resolve(Napi::Env env) override { return Napi::String::New(env, text_); }

 private:
  std::string netns_;
  std::string name_;
  std::string text_;
};

Napi::Value ReadProcNet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    throw Napi::TypeError::New(env, "readProcNet(netns: string, name: string)");
  }
  std::string name = info[1].As<Napi::String>().Utf8Value();
  if (!IsPlainName(name)) throw Napi::TypeError::New(env, "name must be a /proc/net file name");
  auto* worker = new ReadProcNetWorker(env, info[0].As<Napi::String>().Utf8Value(), std::move(name));
  return worker->Queue();
}

}  // namespace

void InitProcNetReader(Napi::Env env, Napi::Object exports) {
  exports.Set("readProcNet", Napi::Function::New(env, ReadProcNet, "readProcNet"));
}

}  // namespace ipvs
