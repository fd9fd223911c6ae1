/* Load for the director benchmark's real servers, to show they are not the limit: keeps
 * CONCURRENCY HTTP/1.0 requests in flight (connect, GET, read to the close, next), round-robin
 * over the targets read from stdin (one ADDRESS:PORT a line), for SECONDS.
 *
 *   http_load CONCURRENCY SECONDS < targets
 *
 * Prints one JSON line: requests answered `200`, failures, seconds, and its own CPU (ms). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 65536
#define MAX_CONCURRENCY 4096

static const char REQUEST[] = "GET /health HTTP/1.0\r\nHost: load\r\nConnection: close\r\n\r\n";

struct slot {
  int fd;
  int sent;
  int length;
  char head[16];
};

static struct sockaddr_in targets[MAX_TARGETS];
static int target_count, next_target;
static unsigned long ok_count, failed_count;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void start(int epoll, struct slot *s, int index) {
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  s->sent = 0;
  s->length = 0;
  if (s->fd < 0) {
    perror("socket");
    exit(1);
  }
  struct sockaddr_in *to = &targets[next_target++ % target_count];
  if (connect(s->fd, (struct sockaddr *)to, sizeof *to) < 0 && errno != EINPROGRESS) {
    failed_count++;
    close(s->fd);
    s->fd = -1;
    return;
  }
  struct epoll_event event = {.events = EPOLLOUT, .data.u32 = (uint32_t)index};
  epoll_ctl(epoll, EPOLL_CTL_ADD, s->fd, &event);
}

static void finish(struct slot *s, int ok) {
  if (ok) ok_count++;
  else failed_count++;
  close(s->fd);
  s->fd = -1;
}

int main(int argc, char **argv) {
  int concurrency = argc == 3 ? atoi(argv[1]) : 0;
  double seconds = argc == 3 ? atof(argv[2]) : 0;
  if (concurrency < 1 || concurrency > MAX_CONCURRENCY || seconds <= 0) {
    fprintf(stderr, "usage: http_load CONCURRENCY SECONDS < targets (ADDRESS:PORT a line)\n");
    return 2;
  }
  char line[128];
  while (target_count < MAX_TARGETS && fgets(line, sizeof line, stdin)) {
    char *colon = strrchr(line, ':');
    if (!colon) continue;
    *colon = 0;
    struct sockaddr_in *t = &targets[target_count];
    t->sin_family = AF_INET;
    t->sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, line, &t->sin_addr) == 1) target_count++;
  }
  if (target_count == 0) {
    fprintf(stderr, "http_load: no targets on stdin\n");
    return 2;
  }
  struct rlimit files = {MAX_CONCURRENCY + 64, MAX_CONCURRENCY + 64};
  setrlimit(RLIMIT_NOFILE, &files);
  int epoll = epoll_create1(EPOLL_CLOEXEC);
  static struct slot slots[MAX_CONCURRENCY];
  for (int i = 0; i < concurrency; i++) start(epoll, &slots[i], i);
  double started = now(), deadline = started + seconds;
  struct epoll_event events[256];
  while (now() < deadline) {
    int ready = epoll_wait(epoll, events, 256, 100);
    for (int e = 0; e < ready; e++) {
      int index = (int)events[e].data.u32;
      struct slot *s = &slots[index];
      if (s->fd < 0) continue;
      if (!s->sent) {
        int error = 0;
        socklen_t size = sizeof error;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error || send(s->fd, REQUEST, sizeof REQUEST - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof REQUEST - 1)) {
          finish(s, 0);
        } else {
          s->sent = 1;
          struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t)index};
          epoll_ctl(epoll, EPOLL_CTL_MOD, s->fd, &event);
          continue;
        }
      } else {
        char buffer[4096];
        ssize_t got = read(s->fd, buffer, sizeof buffer);
        if (got < 0 && errno == EAGAIN) continue;
        if (got > 0) {
          int take = got < (ssize_t)(sizeof s->head - s->length) ? (int)got : (int)sizeof s->head - s->length;
          memcpy(s->head + s->length, buffer, (size_t)take);
          s->length += take;
          continue;  /* read to the server's close */
        }
        finish(s, got == 0 && s->length >= 12 && memcmp(s->head + 9, "200", 3) == 0);
      }
      start(epoll, s, index);
    }
    for (int i = 0; i < concurrency; i++) if (slots[i].fd < 0) start(epoll, &slots[i], i);
  }
  double elapsed = now() - started;
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  double cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
  printf("{\"ok\":%lu,\"failed\":%lu,\"seconds\":%.3f,\"cpuMs\":%.1f}\n", ok_count, failed_count, elapsed, cpu_ms);
  return 0;
}
