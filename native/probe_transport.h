// JS binding of the probe thread (probe_engine.h): `new ProbeTransport(onCompletions)`,
// `submit(batch)` and `close()`. Completions reach JS through one thread-safe function, one
// call per probe-thread wake-up, as (records, replies) in the layout of probe_codec.h. The
// function is unreferenced whenever no probe is in flight, so an idle transport never keeps
// the process alive; close(), garbage collection and environment teardown all join the
// thread and close its sockets.
#pragma once

#include <napi.h>

namespace ipvs {

// Adds the ProbeTransport class to the addon exports.
void InitProbeTransport(Napi::Env env, Napi::Object exports);

}  // namespace ipvs
