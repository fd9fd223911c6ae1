// JS values <-> codec records on the JS thread: the objects of the rare calls (daemon,
// timeouts, info), the packed-record arguments of the others, and the record layout the addon
// exports for lib/records.ts. The JS layer has validated everything; these only guard types.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ipvs_codec.h"

namespace ipvs {

// { command, daemon?, timeouts? }: the commands that carry no service or destination.
Request ObjectRequest(const Napi::Value& value);
Napi::Object DaemonToJs(Napi::Env env, const Daemon& daemon);
Napi::Object TimeoutsToJs(Napi::Env env, const Timeouts& timeouts);
Napi::Object InfoToJs(Napi::Env env, const Info& info);

// A Uint32Array of whole records of `record_words` words, copied out of the JS heap.
std::vector<uint32_t> RecordWords(const Napi::Value& value, size_t record_words, const char* name);
// The same array itself, checked the same way, for a worker that reads it in place.
Napi::Uint32Array RecordArray(const Napi::Value& value, size_t record_words, const char* name);
std::vector<std::string> StringList(const Napi::Value& value, const char* name);
Napi::Uint32Array WordsToJs(Napi::Env env, const std::vector<uint32_t>& words);
// The same without a copy: the words' memory becomes the array's (copied only where the
// runtime allows no external buffers). A listing's records are about a megabyte: a copy means
// as many freshly zeroed pages again, and their page faults, on the JS thread. When the array
// is collected, its memory goes to record_pool.h for the next listing.
Napi::Uint32Array WordsToJs(Napi::Env env, std::vector<uint32_t>&& words);
Napi::Array StringsToJs(Napi::Env env, const std::vector<std::string>& strings);
// releaseRecords(...arrays: Uint32Array[]): detaches arrays made by WordsToJs(&&) (JS can read
// them no more: length 0) and gives their memory to record_pool.h at once, instead of when they
// are collected. Other arrays are left alone.
Napi::Value ReleaseRecords(const Napi::CallbackInfo& info);

// An optional non-negative integer property of `object`; throws TypeError/RangeError naming it.
std::optional<uint32_t> OptionalUint32(const Napi::Object& object, const char* key);

// { service, destination, request, statsCounters }: word offsets, present bits and sizes.
Napi::Object RecordLayoutToJs(Napi::Env env);

}  // namespace ipvs
