// Module entry: registers the netlink handle class, the connection-table reader and the
// internal fault hooks of the tests.
#include <napi.h>

#include "conn_reader.h"
#include "fault_injection.h"
#include "ipvs_handle.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ipvs::IpvsHandle::Init(env, exports);
  ipvs::InitConnectionReader(env, exports);
  ipvs::faults::InitFaultInjection(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(ipvs_netlink, Init)
