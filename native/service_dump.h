// Every service of a namespace, each once. A dump of services resumes each datagram at a
// position the kernel counts over its hash tables, which hold every namespace's services; a
// service added or deleted before that position between two datagrams, in any namespace, makes
// the next datagram repeat services of the one before, or skip some. Repeats are dropped by key.
// A skipped IPv4 service shows as fewer IPv4 services than the namespace counts
// (IP_VS_SO_GET_INFO, whose count leaves IPv6 services out), or as a count that changed
// meanwhile, and the dump is made again. A skipped IPv6 service cannot be seen. Without that
// count (no IPv4 in the kernel) a dump is taken as it comes.
#pragma once

#include <vector>

#include "genl_socket.h"
#include "ipvs_codec.h"

namespace ipvs {

// Dumps made before giving up: each is whole unless a change lands between two of its
// datagrams, so only a table that keeps changing (in any namespace) fails them all.
constexpr int kServiceDumpAttempts = 8;

// The services of `socket`'s namespace, in the kernel's order. Throws as GenlSocket::Execute,
// and SystemError(EAGAIN) when kServiceDumpAttempts dumps in a row missed IPv4 services.
std::vector<Service> DumpServices(GenlSocket& socket);

}  // namespace ipvs
