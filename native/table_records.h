// Service and destination replies leave the addon as packed records (record_layout.h): the
// whole table (listTable), or the answers to GETs (query, queryMany). lib/table.ts and
// lib/reconcile/records.ts read them; creating ~40 properties and ten BigInts per destination
// through N-API would cost far more.
#pragma once

#include <napi.h>

#include <memory>

#include "genl_socket.h"

namespace ipvs {

// listTable(onPart?) -> Promise<{ services: Uint32Array, destinations: Uint32Array, strings: string[] }>:
// every service (its destinationCount says how many destination records follow for it). With
// onPart, the table arrives in parts of whole services: onPart(part) for each but the last,
// in order and all before the promise resolves with the last part.
Napi::Value QueueListTable(const Napi::CallbackInfo& info, std::shared_ptr<GenlSocket> socket);

// listTableIn(netns: string, onPart?) -> Promise<same shape>: the same listing (in parts too)
// without a handle, on a socket opened (in `netns`, '' for the caller's namespace) and closed by
// the worker itself, so that it starts at once: the command-line tool starts it before it loads
// the rest of its code.
Napi::Value ListTableIn(const Napi::CallbackInfo& info);

// query(record: Uint32Array, strings: string[]) -> Promise<same shape>: GET_SERVICE of one
// service or (with no service record) all of them, or GET_DEST of one service.
Napi::Value QueueQuery(const Napi::CallbackInfo& info, std::shared_ptr<GenlSocket> socket);

// queryMany(records: Uint32Array, strings: string[]) -> Promise<same shape, plus counts: Uint32Array>:
// N query records (as query takes them) answered one after the other in one thread-pool job,
// every reply appended to the same packed table; counts[i] is how many records (services for a
// GET_SERVICE, destinations for a GET_DEST) the i-th request produced. The first error rejects.
Napi::Value QueueQueryMany(const Napi::CallbackInfo& info, std::shared_ptr<GenlSocket> socket);

}  // namespace ipvs
