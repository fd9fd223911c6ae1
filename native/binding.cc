// Module entry: the netlink handle class, the record layout, the connection-table reader, the
// /proc/net reader, the health-check probe transport and the internal fault hooks of the tests.
#include <napi.h>

#include "conn_reader.h"
#include "conversion.h"
#include "fault_injection.h"
#include "ipvs_handle.h"
#include "probe_transport.h"
#include "proc_net.h"
#include "table_records.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("IpvsHandle", ipvs::IpvsHandle::Define(env));
  exports.Set("recordLayout", ipvs::RecordLayoutToJs(env));
  exports.Set("listTableIn", Napi::Function::New(env, ipvs::ListTableIn, "listTableIn"));
  exports.Set("releaseRecords", Napi::Function::New(env, ipvs::ReleaseRecords, "releaseRecords"));
  ipvs::InitConnectionReader(env, exports);
  ipvs::faults::InitFaultInjection(env, exports);
  ipvs::InitProcNetReader(env, exports);
  ipvs::InitProbeTransport(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(ipvs_netlink, Init)
