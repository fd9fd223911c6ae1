/* Diagnostic (not part of the library): which frees of mmap-served blocks raise glibc's
   dynamic mmap threshold. glibc serves a block of at least M_MMAP_THRESHOLD (128 KiB at
   start) with its own mapping; when such a block of more than the current threshold (up to
   32 MiB) is freed, it raises the threshold to that size and the trim threshold to twice it,
   for every arena of the process. LD_PRELOAD it into node; each free of a mapped block is
   written to $MMAP_FREES_OUT (default stderr) with its size, thread and a backtrace (the
   first 400, and every one that raises the threshold), and a total at exit.
     gcc -shared -fPIC -O2 -o .cache/mmap-frees.so bench/soak-malloc/mmap-frees.c */
#define _GNU_SOURCE
#include <execinfo.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void __libc_free(void*);

#define IS_MMAPPED 2
static __thread int busy;
static size_t threshold = 128 * 1024;
static int out = -1;
static unsigned long frees, raises, logged;

void free(void* p) {
  if (p && !busy) {
    size_t header = ((size_t*)p)[-1];
    if (header & IS_MMAPPED) {
      size_t size = header & ~(size_t)7;
      busy = 1;
      __atomic_add_fetch(&frees, 1, __ATOMIC_RELAXED);
      if (out < 0) {
        const char* path = getenv("MMAP_FREES_OUT");
        out = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644) : 2;
      }
      int raise = size > threshold && size <= 32u * 1024 * 1024;
      if (raise) threshold = size, raises++;
      if (raise || logged < 400) {
        logged++;
        char line[128];
        int n = snprintf(line, sizeof line, "== free of a mapped block of %zu bytes, thread %ld%s\n", size,
                         (long)syscall(SYS_gettid), raise ? ": raises the threshold" : "");
        if (write(out, line, n) < 0) {}
        void* frames[24];
        backtrace_symbols_fd(frames, backtrace(frames, 24), out);
      }
      busy = 0;
    }
  }
  __libc_free(p);
}

__attribute__((destructor)) static void total(void) {
  char line[128];
  int n = snprintf(line, sizeof line, "== %lu frees of mapped blocks, %lu raised the threshold, to %zu bytes\n", frees,
                   raises, threshold);
  if (write(out >= 0 ? out : 2, line, n) < 0) {}
}
