#include "service_dump.h"

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <unordered_set>

#include "fault_hooks.h"
#include "ip_vs_constants.h"
#include "system_error.h"

namespace ipvs {
namespace {

// What tells two services apart: family, protocol, port, fwmark, then the address.
using Key = std::array<uint32_t, 8>;

struct KeyHash {
  size_t operator()(const Key& key) const {
    uint64_t h = 1469598103934665603ULL;  // FNV-1a over the words
    for (uint32_t word : key) h = (h ^ word) * 1099511628211ULL;
    return static_cast<size_t>(h);
  }
};

Key KeyOfService(const Service& service) {
  Key key{};
  key[0] = service.af.value_or(0);
  key[1] = service.protocol.value_or(0);
  key[2] = service.port.value_or(0);
  key[3] = service.fwmark.value_or(0);
  if (service.address) std::memcpy(&key[4], service.address->data(), service.address->size());
  return key;
}

}  // namespace

std::vector<Service> DumpServices(GenlSocket& socket) {
  Request dump;
  dump.command = IPVS_CMD_GET_SERVICE;
  std::vector<Service> services;
  std::unordered_set<Key, KeyHash> seen;
  for (int attempt = 1;; ++attempt) {
    services.clear();
    seen.clear();
    const int64_t before = socket.ServiceCount();
    int64_t ipv4 = 0;
    socket.Execute(dump, [&](const nlmsghdr* reply) {
      Service service = DecodeService(reply);
      if (!seen.insert(KeyOfService(service)).second) {
        ++faults::repeated_services;
        return;
      }
      if (service.af == AF_INET) ++ipv4;
      services.push_back(std::move(service));
    });
    const int64_t after = before < 0 ? before : socket.ServiceCount();
    if (before < 0 || (before == after && ipv4 == after)) return services;
    if (attempt == kServiceDumpAttempts) {
      throw SystemError(EAGAIN, "dump the services: the table changed during " + std::to_string(attempt) +
                                    " dumps in a row (services in any namespace added or deleted meanwhile)");
    }
    ++faults::repeated_dumps;
  }
}

}  // namespace ipvs
