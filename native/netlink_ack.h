// Reading netlink acks: the walk over the messages of one received datagram, and the kernel's
// extended-ack message. Pure functions over bytes, with no socket and no libnl, so the fuzz
// target (fuzz/netlink_ack_fuzz.cc) can feed them anything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ipvs::netlink {

// One NLMSG_ERROR message found in a datagram.
struct Ack {
  uint32_t seq = 0;
  int error = 0;               // 0, or a positive errno (EPROTO for a nonsense positive code)
  std::string_view message;    // the extended-ack text, empty if none; points into the datagram
};

// The extended-ack text (NLMSGERR_ATTR_MSG) of one NLMSG_ERROR or NLMSG_DONE message.
// `length` is how many bytes of the message are present, which may be less than its
// nlmsg_len when the datagram was cut short; only those bytes are read.
std::string_view ExtAckMessage(const uint8_t* message, size_t length);

// Appends every NLMSG_ERROR message of a datagram that carries a whole error code to `acks`,
// in order. `length` is the number of bytes received. Stops at the first header that is
// impossible (shorter than a header) and at the end of the bytes; a message cut short still
// yields its error code, without the extended-ack text. Messages of other types are skipped.
void ParseAcks(const uint8_t* datagram, size_t length, std::vector<Ack>* acks);

}  // namespace ipvs::netlink
