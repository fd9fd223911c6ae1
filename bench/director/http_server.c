/* The real servers of the director benchmark: a minimal HTTP/1.0 server that costs next to
 * nothing per request, so that under emulation the checkers, not the servers, are measured.
 *
 *   http_server [-t THREADS] LISTEN...      LISTEN is PORT (every address) or ADDRESS:PORT
 *
 * Each thread has its own epoll and its own SO_REUSEPORT socket on every LISTEN. A request is
 * read up to the blank line that ends its head, answered with `200 OK` and closed (as a health
 * endpoint does). Prints `listening` once every socket is bound, then `count N` every second:
 * the requests answered so far (what the benchmark counts as checks that reached a server). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LISTEN 256
#define MAX_FD 65536
#define MAX_HEAD 8192

static const char RESPONSE[] =
    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

static struct sockaddr_in listen_on[MAX_LISTEN];
static int listen_count;
static atomic_ulong answered;
static atomic_int bound_threads;

static void die(const char *what) {
  fprintf(stderr, "http_server: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* Per connection: how much of the "\r\n\r\n" that ends the head was seen, and the head's size. */
struct conn {
  unsigned char matched;
  unsigned short size;
};

static int parse_listen(const char *text, struct sockaddr_in *out) {
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  const char *colon = strrchr(text, ':');
  char address[64] = "0.0.0.0";
  const char *port = text;
  if (colon) {
    size_t length = (size_t)(colon - text);
    if (length >= sizeof address) return -1;
    memcpy(address, text, length);
    address[length] = 0;
    port = colon + 1;
  }
  char *end;
  long number = strtol(port, &end, 10);
  if (*port == 0 || *end != 0 || number < 1 || number > 65535) return -1;
  if (inet_pton(AF_INET, address, &out->sin_addr) != 1) return -1;
  out->sin_port = htons((unsigned short)number);
  return 0;
}

static void *serve(void *unused) {
  (void)unused;
  int epoll = epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) die("epoll_create1");
  for (int i = 0; i < listen_count; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) die("SO_REUSEPORT");
    if (bind(fd, (struct sockaddr *)&listen_on[i], sizeof listen_on[i]) < 0) die("bind");
    if (listen(fd, 4096) < 0) die("listen");
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = (uint64_t)fd | (1ull << 32)};
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) < 0) die("epoll_ctl");
  }
  atomic_fetch_add(&bound_threads, 1);
  struct conn *conns = calloc(MAX_FD, sizeof *conns);
  if (!conns) die("calloc");
  struct epoll_event events[256];
  char buffer[MAX_HEAD];
  for (;;) {
    int ready = epoll_wait(epoll, events, 256, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int e = 0; e < ready; e++) {
      int fd = (int)(events[e].data.u64 & 0xffffffffu);
      if (events[e].data.u64 >> 32) {
        for (;;) {
          int client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (client < 0) break;  /* EAGAIN: drained; anything else: the client gave up */
          if (client >= MAX_FD) {
            close(client);
            continue;
          }
          conns[client] = (struct conn){0, 0};
          struct epoll_event event = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)client};
          if (epoll_ctl(epoll, EPOLL_CTL_ADD, client, &event) < 0) close(client);
        }
        continue;
      }
      struct conn *c = &conns[fd];
      ssize_t got = read(fd, buffer, sizeof buffer);
      if (got < 0 && errno == EAGAIN) continue;
      int done = 0;
      for (ssize_t i = 0; i < got && !done; i++) {
        char want = (c->matched & 1) ? '\n' : '\r';
        if (buffer[i] == want) c->matched++;
        else c->matched = buffer[i] == '\r' ? 1 : 0;
        done = c->matched == 4;
      }
      if (done) {
        /* Small enough for any socket buffer: one send, no partial writes to track. */
        if (send(fd, RESPONSE, sizeof RESPONSE - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof RESPONSE - 1)) {
          atomic_fetch_add_explicit(&answered, 1, memory_order_relaxed);
        }
      } else if (got > 0 && (c->size += (unsigned short)got) < MAX_HEAD) {
        continue;  /* the head goes on in the next read */
      }
      close(fd);  /* answered, closed by the client, or a head too long */
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  int threads = 1;
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "-t") == 0) {
    threads = atoi(argv[2]);
    first = 3;
  }
  if (threads < 1 || threads > 64 || first >= argc) {
    fprintf(stderr, "usage: http_server [-t THREADS] PORT|ADDRESS:PORT...\n");
    return 2;
  }
  for (int i = first; i < argc; i++) {
    if (listen_count == MAX_LISTEN || parse_listen(argv[i], &listen_on[listen_count++]) < 0) {
      fprintf(stderr, "http_server: bad listen address '%s' (PORT or IPv4ADDRESS:PORT, at most %d)\n", argv[i], MAX_LISTEN);
      return 2;
    }
  }
  struct rlimit files = {MAX_FD, MAX_FD};
  setrlimit(RLIMIT_NOFILE, &files);
  for (int t = 0; t < threads; t++) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, serve, NULL) != 0) die("pthread_create");
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (atomic_load(&bound_threads) < threads) usleep(10 * 1000);
  printf("listening\n");
  for (;;) {
    sleep(1);
    printf("count %lu\n", atomic_load(&answered));
  }
}
