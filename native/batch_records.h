// Service and destination changes arrive as packed request records (record_layout.h): many in
// a batch, one for a single call. The thread pool reads them where JS wrote them, and encodes
// and sends them.
#pragma once

#include <napi.h>

#include <memory>

#include "genl_socket.h"

namespace ipvs {

// executeBatch(records: Uint32Array, strings: string[], tuning?: { acksPerChunk, receiveBuffer })
// (records must not change until the promise settles)
// -> Promise<{ errors: Int32Array, unknown: Uint8Array, messages: { [index]: string },
//             sendCalls, overruns }>
Napi::Value QueueBatch(const Napi::CallbackInfo& info, std::shared_ptr<GenlSocket> socket);

}  // namespace ipvs
