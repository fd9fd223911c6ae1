/* Batch floor: reads `ipvsadm -R` lines from stdin (the -A/-a forms control-plane.bench.mjs
 * writes: IPv4, TCP), encodes every request up front with the attributes the library sends,
 * then times only sending them in chunks and reading every ack, chunked as the library does
 * (acks of a chunk fit half the receive buffer at 2 KiB each). Prints one JSON line. */
#include "floor.h"

#include <arpa/inet.h>

#define ACK_SLOTS 64
#define ACK_SLOT_SIZE 4096

struct wire {
  uint8_t *data;
  size_t len, cap;
  size_t *offsets;
  size_t count, offsets_cap;
};

static void reserve(struct wire *w, size_t more) {
  if (w->len + more > w->cap) {
    w->cap = (w->len + more) * 2;
    w->data = realloc(w->data, w->cap);
    if (!w->data) die("realloc");
  }
  if (w->count + 2 > w->offsets_cap) {
    w->offsets_cap = (w->count + 2) * 2;
    w->offsets = realloc(w->offsets, w->offsets_cap * sizeof(size_t));
    if (!w->offsets) die("realloc");
  }
}

static void put_service_key(uint8_t *m, size_t *len, const char *addr, uint16_t port) {
  uint16_t af = AF_INET, proto = IPPROTO_TCP, be_port = htons(port);
  uint8_t address[16] = {0};
  if (inet_pton(AF_INET, addr, address) != 1) { fprintf(stderr, "bad address %s\n", addr); exit(2); }
  put_attr(m, len, IPVS_SVC_ATTR_AF, &af, 2);
  put_attr(m, len, IPVS_SVC_ATTR_PROTOCOL, &proto, 2);
  put_attr(m, len, IPVS_SVC_ATTR_ADDR, address, 16);
  put_attr(m, len, IPVS_SVC_ATTR_PORT, &be_port, 2);
}

int main(void) {
  int fd = open_socket();
  uint16_t family = resolve_ipvs(fd);
  struct wire w = {0};
  char line[512], svc[64], sched[32], dest[64];
  unsigned port, dport, weight;
  while (fgets(line, sizeof(line), stdin)) {
    reserve(&w, 512);
    uint8_t *m = w.data + w.len;
    size_t len, nest;
    const uint32_t seq = (uint32_t)w.count + 1;
    if (sscanf(line, "-A -t %63[0-9.]:%u -s %31s", svc, &port, sched) == 3) {
      len = message_start(m, family, NLM_F_REQUEST | NLM_F_ACK, seq, IPVS_CMD_NEW_SERVICE);
      nest = nest_start(m, &len, IPVS_CMD_ATTR_SERVICE);
      put_service_key(m, &len, svc, port);
      put_attr(m, &len, IPVS_SVC_ATTR_SCHED_NAME, sched, strlen(sched) + 1);
      struct ip_vs_flags flags = {0, 0xffffffff};
      uint32_t timeout = 0, netmask = 0xffffffff;
      put_attr(m, &len, IPVS_SVC_ATTR_FLAGS, &flags, sizeof(flags));
      put_attr(m, &len, IPVS_SVC_ATTR_TIMEOUT, &timeout, 4);
      put_attr(m, &len, IPVS_SVC_ATTR_NETMASK, &netmask, 4);
      nest_end(m, len, nest);
    } else if (sscanf(line, "-a -t %63[0-9.]:%u -r %63[0-9.]:%u -g -w %u", svc, &port, dest, &dport, &weight) == 5) {
      len = message_start(m, family, NLM_F_REQUEST | NLM_F_ACK, seq, IPVS_CMD_NEW_DEST);
      nest = nest_start(m, &len, IPVS_CMD_ATTR_SERVICE);
      put_service_key(m, &len, svc, port);
      nest_end(m, len, nest);
      nest = nest_start(m, &len, IPVS_CMD_ATTR_DEST);
      uint8_t address[16] = {0};
      if (inet_pton(AF_INET, dest, address) != 1) { fprintf(stderr, "bad address %s\n", dest); return 2; }
      uint16_t be_port = htons(dport), af = AF_INET;
      uint32_t forward = IP_VS_CONN_F_DROUTE, zero = 0;
      put_attr(m, &len, IPVS_DEST_ATTR_ADDR, address, 16);
      put_attr(m, &len, IPVS_DEST_ATTR_PORT, &be_port, 2);
      put_attr(m, &len, IPVS_DEST_ATTR_FWD_METHOD, &forward, 4);
      put_attr(m, &len, IPVS_DEST_ATTR_WEIGHT, &weight, 4);
      put_attr(m, &len, IPVS_DEST_ATTR_U_THRESH, &zero, 4);
      put_attr(m, &len, IPVS_DEST_ATTR_L_THRESH, &zero, 4);
      put_attr(m, &len, IPVS_DEST_ATTR_ADDR_FAMILY, &af, 2);
      nest_end(m, len, nest);
    } else {
      continue;
    }
    ((struct nlmsghdr *)m)->nlmsg_len = len;
    w.offsets[w.count++] = w.len;
    w.len += NLMSG_ALIGN(len);
  }
  w.offsets[w.count] = w.len;

  int rcvbuf = 0, sndbuf = 0;
  socklen_t optlen = sizeof(int);
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &optlen);
  getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &optlen);
  size_t per_chunk = (size_t)rcvbuf / 2 / 2048;
  if (per_chunk < 1) per_chunk = 1;
  size_t budget = (size_t)sndbuf - 32;

  static uint8_t arena[ACK_SLOTS][ACK_SLOT_SIZE];
  struct mmsghdr msgs[ACK_SLOTS];
  struct iovec iovs[ACK_SLOTS];
  size_t acks = 0, errors = 0, sends = 0;
  const double start = now_ms();
  for (size_t first = 0; first < w.count;) {
    size_t end = first + 1;
    while (end < w.count && end - first < per_chunk && w.offsets[end + 1] - w.offsets[first] <= budget) ++end;
    send_all(fd, w.data + w.offsets[first], w.offsets[end] - w.offsets[first]);
    ++sends;
    for (size_t pending = end - first; pending > 0;) {
      memset(msgs, 0, sizeof(msgs));
      for (int k = 0; k < ACK_SLOTS; ++k) {
        iovs[k].iov_base = arena[k];
        iovs[k].iov_len = ACK_SLOT_SIZE;
        msgs[k].msg_hdr.msg_iov = &iovs[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
      }
      int got = recvmmsg(fd, msgs, ACK_SLOTS, MSG_WAITFORONE, NULL);
      if (got < 0) {
        if (errno == EINTR) continue;
        die("recvmmsg");
      }
      for (int k = 0; k < got; ++k) {
        struct nlmsghdr *h = (struct nlmsghdr *)arena[k];
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        if (((struct nlmsgerr *)NLMSG_DATA(h))->error != 0) ++errors;
        ++acks;
        --pending;
      }
    }
    first = end;
  }
  const double ms = now_ms() - start;
  printf("{\"ms\":%.3f,\"requests\":%zu,\"acks\":%zu,\"errors\":%zu,\"sendCalls\":%zu}\n", ms, w.count, acks, errors, sends);
  return errors ? 1 : 0;
}
