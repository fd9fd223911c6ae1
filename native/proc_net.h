// Reads a small file of /proc/net (e.g. ip_vs_stats) as seen from a network namespace.
#pragma once

#include <napi.h>

namespace ipvs {

// readProcNet(netnsPath: string, name: string): Promise<string>
void InitProcNetReader(Napi::Env env, Napi::Object exports);

}  // namespace ipvs
