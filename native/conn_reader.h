// JS bindings of the connection-table reader (conn_parser.h): whole-table counting and
// columnar reads as single promises, and a stream object that reads batches on demand.
// All file I/O and parsing run on the thread pool.
#pragma once

#include <napi.h>

namespace ipvs {

// Adds countConnections(options), readConnectionTable(options) and the ConnectionStream
// class to the addon exports.
void InitConnectionReader(Napi::Env env, Napi::Object exports);

}  // namespace ipvs
