// The addon's own work beside the floor's, on the host, for instruction counts under
// callgrind (the VM's timings depend on the host's load; instruction counts do not):
//   decode  the datagrams of a recorded listing (strace -xx of dump_floor in the VM, see
//           bench/floor-probe.mjs), decoded and packed as the listTable worker does;
//   encode  11,000 request records (1,000 services x 10 destinations, as the control-plane
//           benchmark queues them) encoded as a batch commit does (AppendRequestRecord);
//   encode-unpacked  the same through a Request each (UnpackRequest, AppendRequestMessage).
//
//   g++ -std=c++17 -O2 -I/usr/include/libnl3 bench/floor/codec_cost.cc native/ipvs_codec.cc
//       native/records.cc -lnl-3 -lnl-genl-3 -o .cache/codec_cost
//   valgrind --tool=callgrind .cache/codec_cost decode .cache/floor-probe/dump.trace 5
//   valgrind --tool=callgrind .cache/codec_cost encode 5
// Compare a run with N repetitions to one with 1: the difference / (N - 1) is one pass.
#include <arpa/inet.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "../../native/ipvs_codec.h"
#include "../../native/records.h"

using namespace ipvs;

namespace {

// Every recvfrom() answer of an strace -xx trace, as bytes: strace prints each message as its
// header's fields and its payload in hex, from which the message is put back together.
std::vector<std::vector<uint8_t>> ReadDatagrams(const char* path) {
  std::ifstream in(path);
  std::vector<std::vector<uint8_t>> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("recvfrom(", 0) != 0) continue;
    std::vector<uint8_t> datagram;
    for (size_t at = line.find("{nlmsg_len="); at != std::string::npos; at = line.find("{nlmsg_len=", at + 1)) {
      nlmsghdr h{};
      h.nlmsg_len = static_cast<uint32_t>(std::strtoul(line.c_str() + at + 11, nullptr, 10));
      const size_t type_at = line.find("nlmsg_type=", at) + 11;
      h.nlmsg_type = line.compare(type_at, 10, "NLMSG_DONE") == 0 ? NLMSG_DONE
                                                                   : static_cast<uint16_t>(std::strtoul(line.c_str() + type_at, nullptr, 16));
      h.nlmsg_seq = static_cast<uint32_t>(std::strtoul(line.c_str() + line.find("nlmsg_seq=", at) + 10, nullptr, 10));
      std::vector<uint8_t> message(NLMSG_ALIGN(h.nlmsg_len), 0);
      std::memcpy(message.data(), &h, sizeof(h));
      size_t q = line.find("}, ", at) + 3;
      size_t i = NLMSG_HDRLEN;
      if (line[q] == '"') {
        for (q += 1; line[q] == '\\' && i < message.size(); q += 4)
          message[i++] = static_cast<uint8_t>(std::strtoul(line.substr(q + 2, 2).c_str(), nullptr, 16));
      }
      datagram.insert(datagram.end(), message.begin(), message.end());
    }
    out.push_back(std::move(datagram));
  }
  return out;
}

__attribute__((noinline)) size_t Decode(const std::vector<std::vector<uint8_t>>& datagrams) {
  PackedTable table;
  size_t destinations = 0;
  for (const auto& d : datagrams) {
    int remaining = static_cast<int>(d.size());
    for (auto* h = reinterpret_cast<const nlmsghdr*>(d.data()); NLMSG_OK(h, remaining); h = NLMSG_NEXT(h, remaining)) {
      if (h->nlmsg_type < NLMSG_MIN_TYPE) continue;
      const auto* g = reinterpret_cast<const genlmsghdr*>(NLMSG_DATA(h));
      if (g->cmd == IPVS_CMD_NEW_SERVICE) {
        table.AddService(DecodeService(h), 0);
      } else if (g->cmd == IPVS_CMD_NEW_DEST) {
        table.destinations.resize(table.destinations.size() + record::destination::kWords);
        DecodeDestinationRecord(h, table.destinations.data() + table.destinations.size() - record::destination::kWords);
        ++destinations;
      }
    }
  }
  return destinations;
}

std::vector<uint32_t> BatchRecords(StringTable& strings) {
  std::vector<uint32_t> words;
  auto add = [&](const Request& r) {
    words.resize(words.size() + record::request::kWords, 0);
    PackRequest(r, strings, words.data() + words.size() - record::request::kWords);
  };
  for (int s = 0; s < 1000; ++s) {
    Service svc;
    svc.af = AF_INET;
    svc.protocol = IPPROTO_TCP;
    Address a{};
    a[0] = 10, a[2] = static_cast<uint8_t>(s >> 8), a[3] = static_cast<uint8_t>(s);
    svc.address = a;
    svc.port = 80;
    Request add_service;
    add_service.command = IPVS_CMD_NEW_SERVICE;
    add_service.service = svc;
    add_service.service->scheduler = "wlc";
    add_service.service->flags = 0;
    add_service.service->flags_mask = ~0u;
    add_service.service->timeout = 0;
    add_service.service->netmask = ~0u;
    add(add_service);
    for (int d = 0; d < 10; ++d) {
      Request add_dest;
      add_dest.command = IPVS_CMD_NEW_DEST;
      add_dest.service = svc;
      Destination dst;
      Address da{};
      da[0] = 172, da[1] = 16, da[2] = static_cast<uint8_t>(s >> 8), da[3] = static_cast<uint8_t>(d + 1);
      dst.address = da;
      dst.port = 80;
      dst.forward = 3;
      dst.weight = 1 + d % 5;
      dst.upper_threshold = 0;
      dst.lower_threshold = 0;
      dst.af = AF_INET;
      add_dest.destination = dst;
      add(add_dest);
    }
  }
  return words;
}

__attribute__((noinline)) std::vector<uint8_t> EncodeUnpacked(const std::vector<uint32_t>& words,
                                                             const std::vector<std::string>& strings) {
  const size_t n = words.size() / record::request::kWords;
  std::vector<Request> requests;
  requests.reserve(n);
  for (size_t i = 0; i < n; ++i) requests.push_back(UnpackRequest(&words[i * record::request::kWords], strings));
  std::vector<uint8_t> wire;
  wire.reserve(n * 160);
  for (size_t i = 0; i < n; ++i) AppendRequestMessage(wire, requests[i], 30, static_cast<uint32_t>(i), NLM_F_REQUEST | NLM_F_ACK);
  return wire;
}

__attribute__((noinline)) std::vector<uint8_t> EncodeDirect(const std::vector<uint32_t>& words,
                                                           const std::vector<std::string>& strings) {
  const size_t n = words.size() / record::request::kWords;
  std::vector<uint8_t> wire;
  wire.reserve(n * 160);
  for (size_t i = 0; i < n; ++i)
    AppendRequestRecord(wire, &words[i * record::request::kWords], strings, 30, static_cast<uint32_t>(i), NLM_F_REQUEST | NLM_F_ACK);
  return wire;
}

size_t Encode(const std::vector<uint32_t>& words, const std::vector<std::string>& strings, bool direct) {
  const std::vector<uint8_t> wire = direct ? EncodeDirect(words, strings) : EncodeUnpacked(words, strings);
  uint64_t hash = 1469598103934665603ull;  // FNV-1a: the same bytes before and after a change
  for (uint8_t b : wire) hash = (hash ^ b) * 1099511628211ull;
  std::printf("wire hash %016llx\n", static_cast<unsigned long long>(hash));
  return wire.size();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  if (mode == "decode" && argc >= 3) {
    auto datagrams = ReadDatagrams(argv[2]);
    const int reps = argc > 3 ? std::atoi(argv[3]) : 1;
    size_t n = 0;
    for (int i = 0; i < reps; ++i) n = Decode(datagrams);
    std::printf("%zu datagrams, %zu destinations per pass, %d passes\n", datagrams.size(), n, reps);
    return 0;
  }
  if (mode == "encode" || mode == "encode-unpacked") {
    StringTable strings;
    auto words = BatchRecords(strings);
    const int reps = argc > 2 ? std::atoi(argv[2]) : 1;
    size_t bytes = 0;
    for (int i = 0; i < reps; ++i) bytes = Encode(words, strings.strings(), mode == "encode");
    std::printf("%zu wire bytes per pass, %d passes\n", bytes, reps);
    return 0;
  }
  return 2;
}
