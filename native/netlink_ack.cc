#include "netlink_ack.h"

#include <linux/netlink.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif
#ifndef NLMSGERR_ATTR_MSG
#define NLMSGERR_ATTR_MSG 1
#endif

namespace ipvs::netlink {

namespace {

constexpr size_t kAttrHeader = 4;  // struct nlattr: u16 length, u16 type

uint16_t LoadU16(const uint8_t* p) {
  uint16_t value;
  std::memcpy(&value, p, sizeof(value));
  return value;
}

}  // namespace

std::string_view ExtAckMessage(const uint8_t* message, size_t length) {
  if (length < NLMSG_HDRLEN + sizeof(int)) return {};
  nlmsghdr hdr;
  std::memcpy(&hdr, message, sizeof(hdr));
  if (!(hdr.nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  if (hdr.nlmsg_len < length) length = hdr.nlmsg_len;
  if (length < NLMSG_HDRLEN) return {};
  const size_t payload = length - NLMSG_HDRLEN;
  const uint8_t* data = message + NLMSG_HDRLEN;
  // TLVs follow the error code; in an NLMSG_ERROR also the echoed request header, and the
  // whole echoed request unless the ack was capped.
  size_t offset = sizeof(int);
  if (hdr.nlmsg_type == NLMSG_ERROR) {
    if (payload < sizeof(nlmsgerr)) return {};
    offset = sizeof(nlmsgerr);
    if (!(hdr.nlmsg_flags & NLM_F_CAPPED)) {
      uint32_t echoed_len;
      std::memcpy(&echoed_len, data + offsetof(nlmsgerr, msg) + offsetof(nlmsghdr, nlmsg_len), sizeof(echoed_len));
      if (echoed_len < NLMSG_HDRLEN) return {};
      const size_t echoed_payload = NLMSG_ALIGN(static_cast<size_t>(echoed_len) - NLMSG_HDRLEN);
      if (echoed_payload > payload - offset) return {};
      offset += echoed_payload;
    }
  }
  while (offset + kAttrHeader <= payload) {
    const size_t attr_len = LoadU16(data + offset);
    const uint16_t attr_type = LoadU16(data + offset + 2) & NLA_TYPE_MASK;
    if (attr_len < kAttrHeader || attr_len > payload - offset) return {};
    if (attr_type == NLMSGERR_ATTR_MSG && attr_len > kAttrHeader) {
      const char* text = reinterpret_cast<const char*>(data + offset + kAttrHeader);
      const size_t max = attr_len - kAttrHeader;
      const void* nul = std::memchr(text, '\0', max);
      return std::string_view(text, nul ? static_cast<size_t>(static_cast<const char*>(nul) - text) : max);
    }
    offset += NLA_ALIGN(attr_len);
  }
  return {};
}

void ParseAcks(const uint8_t* datagram, size_t length, std::vector<Ack>* acks) {
  size_t offset = 0;
  while (length - offset >= NLMSG_HDRLEN) {
    nlmsghdr hdr;
    std::memcpy(&hdr, datagram + offset, sizeof(hdr));
    if (hdr.nlmsg_len < NLMSG_HDRLEN) return;
    const size_t available = length - offset;
    const bool complete = hdr.nlmsg_len <= available;
    if (hdr.nlmsg_type == NLMSG_ERROR && available >= NLMSG_HDRLEN + sizeof(int) &&
        hdr.nlmsg_len >= NLMSG_HDRLEN + sizeof(int)) {
      int code;
      std::memcpy(&code, datagram + offset + NLMSG_HDRLEN, sizeof(code));
      Ack ack;
      ack.seq = hdr.nlmsg_seq;
      // Errnos are small; anything else is not an answer the kernel gives.
      ack.error = code <= 0 && code >= -4095 ? -code : EPROTO;
      if (code < 0 && complete) ack.message = ExtAckMessage(datagram + offset, hdr.nlmsg_len);
      acks->push_back(ack);
    }
    if (!complete) return;
    const size_t step = NLMSG_ALIGN(static_cast<size_t>(hdr.nlmsg_len));
    if (step >= available) return;
    offset += step;
  }
}

}  // namespace ipvs::netlink
