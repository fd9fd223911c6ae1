/* Listing floor: the dumps listTable makes, with nothing decoded beyond the service keys a
 * destination dump needs: one service dump, then one destination dump per service. Receives
 * with the library's receive length (a page: the kernel sizes dump datagrams by it). Prints
 * one JSON line with the time of the dumps alone. */
#include "floor.h"

#include <pthread.h>

struct key {
  uint8_t attrs[96];  /* the service's AF, PROTOCOL, ADDR, PORT and FWMARK attributes */
  size_t len;
};

/* Runs one dump; calls on_message for each reply. Returns the number of replies. */
static size_t dump(int fd, uint8_t *buf, size_t buf_len, uint16_t family, uint32_t seq, uint8_t cmd, const struct key *key,
                   void (*on_message)(struct nlmsghdr *, void *), void *context) {
  uint8_t request[256];
  size_t len = message_start(request, family, NLM_F_REQUEST | NLM_F_DUMP, seq, cmd);
  if (key) {
    size_t nest = nest_start(request, &len, IPVS_CMD_ATTR_SERVICE);
    memcpy(request + len, key->attrs, key->len);
    len += key->len;
    nest_end(request, len, nest);
  }
  ((struct nlmsghdr *)request)->nlmsg_len = len;
  send_all(fd, request, len);
  size_t replies = 0;
  for (;;) {
    ssize_t got = recv(fd, buf, buf_len, MSG_TRUNC);
    if (got < 0) {
      if (errno == EINTR) continue;
      die("recv");
    }
    if ((size_t)got > buf_len) {
      errno = EMSGSIZE;
      die("recv: a dump datagram longer than the receive length");
    }
    int remaining = (int)got;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, remaining); h = NLMSG_NEXT(h, remaining)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return replies;
      if (h->nlmsg_type == NLMSG_ERROR) {
        errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        die("dump");
      }
      ++replies;
      if (on_message) on_message(h, context);
    }
  }
}

struct keys {
  struct key *items;
  size_t count, cap;
};

static void keep_key(struct nlmsghdr *h, void *context) {
  struct keys *keys = context;
  if (keys->count == keys->cap) {
    keys->cap = keys->cap ? keys->cap * 2 : 1024;
    keys->items = realloc(keys->items, keys->cap * sizeof(struct key));
    if (!keys->items) die("realloc");
  }
  struct key *key = &keys->items[keys->count++];
  key->len = 0;
  uint8_t *payload = (uint8_t *)h + NLMSG_HDRLEN + GENL_HDRLEN;
  size_t end = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
  for (size_t at = 0; at + NLA_HDRLEN <= end;) {
    struct nlattr *a = (struct nlattr *)(payload + at);
    if (a->nla_len < NLA_HDRLEN) break;
    if ((a->nla_type & NLA_TYPE_MASK) == IPVS_CMD_ATTR_SERVICE) {
      for (size_t in = NLA_HDRLEN; in + NLA_HDRLEN <= a->nla_len;) {
        struct nlattr *s = (struct nlattr *)((uint8_t *)a + in);
        if (s->nla_len < NLA_HDRLEN) break;
        switch (s->nla_type & NLA_TYPE_MASK) {
          case IPVS_SVC_ATTR_AF: case IPVS_SVC_ATTR_PROTOCOL: case IPVS_SVC_ATTR_ADDR: case IPVS_SVC_ATTR_PORT:
          case IPVS_SVC_ATTR_FWMARK:
            if (key->len + NLA_ALIGN(s->nla_len) <= sizeof(key->attrs)) {
              memcpy(key->attrs + key->len, s, NLA_ALIGN(s->nla_len));
              key->len += NLA_ALIGN(s->nla_len);
            }
        }
        in += NLA_ALIGN(s->nla_len);
      }
    }
    at += NLA_ALIGN(a->nla_len);
  }
}

struct worker {
  int fd;
  uint16_t family;
  uint8_t *buf;
  size_t buf_len;
  const struct keys *keys;
  size_t first, step, destinations;
  pthread_t thread;
};

/* Dumps the destinations of services first, first + step, ... on the worker's own socket. */
static void *dump_destinations(void *context) {
  struct worker *w = context;
  uint32_t seq = 1000;
  for (size_t i = w->first; i < w->keys->count; i += w->step)
    w->destinations += dump(w->fd, w->buf, w->buf_len, w->family, ++seq, IPVS_CMD_GET_DEST, &w->keys->items[i], NULL, NULL);
  return NULL;
}

/* dump_floor [THREADS]: with THREADS > 1 (a probe, not the floor), the destination dumps are
 * shared round-robin among that many threads, each on a socket of its own opened beforehand. */
int main(int argc, char **argv) {
  const size_t threads = argc > 1 ? (size_t)atoi(argv[1]) : 1;
  if (threads < 1 || threads > 64) { fprintf(stderr, "usage: dump_floor [THREADS 1-64]\n"); return 2; }
  long page = sysconf(_SC_PAGESIZE);
  size_t buf_len = page > 0 && page < 8192 ? (size_t)page : 8192;
  struct worker workers[64];
  for (size_t t = 0; t < threads; ++t) {
    workers[t].fd = open_socket();
    workers[t].family = resolve_ipvs(workers[t].fd);
    workers[t].buf = malloc(buf_len);
    workers[t].buf_len = buf_len;
    workers[t].first = t;
    workers[t].step = threads;
    workers[t].destinations = 0;
  }
  struct keys keys = {0};
  uint32_t seq = 100;
  const double start = now_ms();
  dump(workers[0].fd, workers[0].buf, buf_len, workers[0].family, ++seq, IPVS_CMD_GET_SERVICE, NULL, keep_key, &keys);
  size_t destinations = 0;
  if (threads == 1) {
    for (size_t i = 0; i < keys.count; ++i)
      destinations += dump(workers[0].fd, workers[0].buf, buf_len, workers[0].family, ++seq, IPVS_CMD_GET_DEST, &keys.items[i], NULL, NULL);
  } else {
    for (size_t t = 0; t < threads; ++t) {
      workers[t].keys = &keys;
      if (pthread_create(&workers[t].thread, NULL, dump_destinations, &workers[t]) != 0) die("pthread_create");
    }
    for (size_t t = 0; t < threads; ++t) {
      pthread_join(workers[t].thread, NULL);
      destinations += workers[t].destinations;
    }
  }
  const double ms = now_ms() - start;
  printf("{\"ms\":%.3f,\"services\":%zu,\"destinations\":%zu,\"threads\":%zu}\n", ms, keys.count, destinations, threads);
  return 0;
}
