// JS's handle on the transport's fault hooks (fault_hooks.h). It reaches them only through
// lib/internal/faults.ts, which is not part of the public API.
#pragma once

#include <napi.h>

#include "fault_hooks.h"

namespace ipvs::faults {

// Adds the internal `faults` object ({ set(options), stats() }) to the addon exports.
void InitFaultInjection(Napi::Env env, Napi::Object exports);

}  // namespace ipvs::faults
