/* The floor: what the kernel and the syscalls alone cost, for comparison with the library.
 * Raw generic-netlink sockets, no libnl, no decoding beyond what the protocol needs. Shared
 * by batch_floor.c and dump_floor.c; built and run by bench/control-plane.bench.mjs. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/ip_vs.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

static void die(const char *what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  exit(1);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Appends attributes to a message being built in buf at *len. */
static void put_attr(uint8_t *buf, size_t *len, uint16_t type, const void *data, uint16_t size) {
  struct nlattr *a = (struct nlattr *)(buf + *len);
  a->nla_type = type;
  a->nla_len = NLA_HDRLEN + size;
  memcpy(buf + *len + NLA_HDRLEN, data, size);
  memset(buf + *len + NLA_HDRLEN + size, 0, NLA_ALIGN(a->nla_len) - a->nla_len);
  *len += NLA_ALIGN(a->nla_len);
}
static size_t nest_start(uint8_t *buf, size_t *len, uint16_t type) {
  size_t at = *len;
  put_attr(buf, len, type | NLA_F_NESTED, NULL, 0);
  return at;
}
static void nest_end(uint8_t *buf, size_t len, size_t at) { ((struct nlattr *)(buf + at))->nla_len = len - at; }

static size_t message_start(uint8_t *buf, uint16_t family, uint16_t flags, uint32_t seq, uint8_t cmd) {
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  memset(buf, 0, NLMSG_HDRLEN + GENL_HDRLEN);
  h->nlmsg_type = family;
  h->nlmsg_flags = flags;
  h->nlmsg_seq = seq;
  struct genlmsghdr *g = (struct genlmsghdr *)(buf + NLMSG_HDRLEN);
  g->cmd = cmd;
  g->version = IPVS_GENL_VERSION;
  return NLMSG_HDRLEN + GENL_HDRLEN;
}

/* A generic-netlink socket with the library's options: 4 MiB buffers, capped and extended acks. */
static int open_socket(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  if (fd < 0) die("socket");
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) die("bind");
  int on = 1, size = 4 * 1024 * 1024;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof(on));
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof(on));
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  return fd;
}

static void send_all(int fd, const void *data, size_t len) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  while (sendto(fd, data, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
    if (errno != EINTR) die("sendto");
}

/* The IPVS family id, from the generic-netlink controller. Reads with a page, no more: the
 * kernel sizes later dump datagrams by the longest read the socket has asked for. */
static uint16_t resolve_ipvs(int fd) {
  uint8_t buf[4096];
  size_t len = message_start(buf, GENL_ID_CTRL, NLM_F_REQUEST, 1, CTRL_CMD_GETFAMILY);
  ((struct genlmsghdr *)(buf + NLMSG_HDRLEN))->version = 1;
  put_attr(buf, &len, CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME, sizeof(IPVS_GENL_NAME));
  ((struct nlmsghdr *)buf)->nlmsg_len = len;
  send_all(fd, buf, len);
  ssize_t got = recv(fd, buf, sizeof(buf), MSG_TRUNC);
  if (got < 0) die("recv family");
  if ((size_t)got > sizeof(buf)) { errno = EMSGSIZE; die("recv family"); }
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  if (h->nlmsg_type == NLMSG_ERROR) {
    errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
    die("resolve IPVS");
  }
  size_t at = NLMSG_HDRLEN + GENL_HDRLEN;
  while (at + NLA_HDRLEN <= h->nlmsg_len) {
    struct nlattr *a = (struct nlattr *)(buf + at);
    if (a->nla_len < NLA_HDRLEN) break;
    if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID) return *(uint16_t *)((uint8_t *)a + NLA_HDRLEN);
    at += NLA_ALIGN(a->nla_len);
  }
  fprintf(stderr, "no IPVS family id\n");
  exit(1);
}
