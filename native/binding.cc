// Module entry: registers the netlink handle class, the connection-table reader and the
// /proc/net reader.
#include <napi.h>

#include "conn_reader.h"
#include "ipvs_handle.h"
#include "proc_net.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ipvs::IpvsHandle::Init(env, exports);
  ipvs::InitConnectionReader(env, exports);
  ipvs::InitProcNetReader(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(ipvs_netlink, Init)
