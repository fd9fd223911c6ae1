// Module entry: registers the netlink handle class and the connection-table reader.
#include <napi.h>

#include "conn_reader.h"
#include "ipvs_handle.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ipvs::IpvsHandle::Init(env, exports);
  ipvs::InitConnectionReader(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(ipvs_netlink, Init)
