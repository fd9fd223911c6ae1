// Service and destination replies leave the addon as packed records (record_layout.h): the
// whole table (listTable), or the answer to one GET. lib/table.ts reads them; creating ~40
// properties and ten BigInts per destination through N-API would cost far more.
#pragma once

#include <napi.h>

#include <memory>

#include "genl_socket.h"

namespace ipvs {

// listTable() -> Promise<{ services: Uint32Array, destinations: Uint32Array, strings: string[] }>:
// every service (its destinationCount says how many destination records follow for it).
Napi::Value QueueListTable(Napi::Env env, std::shared_ptr<GenlSocket> socket);

// query(record: Uint32Array, strings: string[]) -> Promise<same shape>: GET_SERVICE of one
// service or (with no service record) all of them, or GET_DEST of one service.
Napi::Value QueueQuery(const Napi::CallbackInfo& info, std::shared_ptr<GenlSocket> socket);

}  // namespace ipvs
