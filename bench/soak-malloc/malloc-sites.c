/* Diagnostic (not part of the library): which code mallocs on threads other than the main one,
   and where those blocks are freed. LD_PRELOAD it into node; it counts, per calling site and
   thread, every malloc/calloc/realloc/operator new made on a thread other than the main one,
   and for each block whether it was freed on the same thread, on another one, or not at all.
   malloc_sites_reset() starts the count afresh (mallinfo.c's sitesReset(), called by probe.mjs
   at its baseline, after the warm-up); the table is written to
   $MALLOC_SITES_OUT (default stderr) at exit, sites as module+offset for addr2line.
     gcc -shared -fPIC -O2 -o .cache/malloc-sites.so bench/soak-malloc/malloc-sites.c -ldl
   A call from inside libstdc++ (std::string, a container's operator new) is attributed to the
   first frame outside libstdc++. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void __libc_free(void*);
extern void* __libc_memalign(size_t, size_t);

#define SITES 4096
#define BLOCKS (1u << 22) /* open addressing, power of two */

struct site { uintptr_t pc; int tid; uint64_t allocs, bytes, freed_same, freed_other, live, live_bytes; };
struct block { uintptr_t ptr; uint32_t site; uint32_t size; };

static struct site* sites;
static struct block* blocks;
static atomic_flag lock = ATOMIC_FLAG_INIT;
static volatile sig_atomic_t reset_wanted;
static int main_tid;
static uintptr_t stdcxx_lo, stdcxx_hi;
/* The arena (its 64 MiB-aligned heap) each thread allocated from: to tell whose arena grows. */
#define THREADS 64
struct thread_heap { int tid; uintptr_t heaps[4]; };
static struct thread_heap thread_heaps[THREADS];
static __thread int busy;
static __thread int my_tid;

static void acquire(void) { while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire)) {} }
static void release(void) { atomic_flag_clear_explicit(&lock, memory_order_release); }

static int find_stdcxx(struct dl_phdr_info* info, size_t size, void* data) {
  if (!strstr(info->dlpi_name, "libstdc++")) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)* p = &info->dlpi_phdr[i];
    if (p->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + p->p_vaddr, hi = lo + p->p_memsz;
    if (!stdcxx_lo || lo < stdcxx_lo) stdcxx_lo = lo;
    if (hi > stdcxx_hi) stdcxx_hi = hi;
  }
  return 1;
}

void malloc_sites_reset(void) { reset_wanted = 1; }

__attribute__((constructor)) static void init(void) {
  busy = 1;
  main_tid = getpid();
  sites = mmap(NULL, SITES * sizeof(struct site), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  blocks = mmap(NULL, BLOCKS * sizeof(struct block), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  dl_iterate_phdr(find_stdcxx, NULL);
  busy = 0;
}

static int tid(void) {
  if (!my_tid) my_tid = (int)syscall(SYS_gettid);
  return my_tid;
}

static uint32_t hash(uintptr_t p) { return (uint32_t)((p >> 4) * 2654435761u) & (BLOCKS - 1); }

/* Under the lock. */
static void do_reset(void) {
  reset_wanted = 0;
  memset(sites, 0, SITES * sizeof(struct site));
  memset(blocks, 0, BLOCKS * sizeof(struct block));
}

static uint32_t site_index(uintptr_t pc, int t) {
  uint32_t h = (uint32_t)((pc * 31 + (uintptr_t)t) * 2654435761u) % SITES;
  for (uint32_t n = 0; n < SITES; n++, h = (h + 1) % SITES) {
    if (sites[h].pc == pc && sites[h].tid == t) return h;
    if (!sites[h].pc) { sites[h].pc = pc; sites[h].tid = t; return h; }
  }
  return 0;
}

static void block_remove(uint32_t i) {
  /* backward-shift deletion for linear probing */
  uint32_t j = i;
  for (;;) {
    blocks[i].ptr = 0;
    for (;;) {
      j = (j + 1) & (BLOCKS - 1);
      if (!blocks[j].ptr) return;
      uint32_t k = hash(blocks[j].ptr);
      if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j)) continue;
      break;
    }
    blocks[i] = blocks[j];
    i = j;
  }
}

static void note_free(void* p) {
  if (!p || !sites) return;
  int t = tid();
  acquire();
  if (reset_wanted) do_reset();
  for (uint32_t h = hash((uintptr_t)p);; h = (h + 1) & (BLOCKS - 1)) {
    if (!blocks[h].ptr) break;
    if (blocks[h].ptr == (uintptr_t)p) {
      struct site* s = &sites[blocks[h].site];
      if (s->tid == t) s->freed_same++; else s->freed_other++;
      s->live--;
      s->live_bytes -= blocks[h].size;
      block_remove(h);
      break;
    }
  }
  release();
}

static void note_alloc(void* p, size_t size, uintptr_t pc) {
  if (!p || !sites) return;
  int t = tid();
  if (t == main_tid) return;
  if (pc >= stdcxx_lo && pc < stdcxx_hi) {
    void* frames[8];
    busy = 1;
    int n = backtrace(frames, 8);
    busy = 0;
    for (int i = 1; i < n; i++) {
      uintptr_t f = (uintptr_t)frames[i];
      if (f < stdcxx_lo || f >= stdcxx_hi) {
        Dl_info d;
        if (dladdr(frames[i], &d) && d.dli_fname && strstr(d.dli_fname, "malloc-sites")) continue;
        pc = f;
        break;
      }
    }
  }
  acquire();
  if (reset_wanted) do_reset();
  uintptr_t heap = (uintptr_t)p & ~(((uintptr_t)64 << 20) - 1);
  for (int i = 0; i < THREADS; i++) {
    struct thread_heap* th = &thread_heaps[i];
    if (th->tid && th->tid != t) continue;
    th->tid = t;
    for (int k = 0; k < 4; k++) {
      if (th->heaps[k] == heap) break;
      if (!th->heaps[k]) { th->heaps[k] = heap; break; }
    }
    break;
  }
  uint32_t si = site_index(pc, t);
  struct site* s = &sites[si];
  s->allocs++;
  s->bytes += size;
  s->live++;
  s->live_bytes += size;
  for (uint32_t h = hash((uintptr_t)p);; h = (h + 1) & (BLOCKS - 1)) {
    if (!blocks[h].ptr || blocks[h].ptr == (uintptr_t)p) {
      blocks[h].ptr = (uintptr_t)p;
      blocks[h].site = si;
      blocks[h].size = (uint32_t)size;
      break;
    }
  }
  release();
}

#define CALLER ((uintptr_t)__builtin_return_address(0))

void* malloc(size_t n) {
  void* p = __libc_malloc(n);
  if (!busy) { busy = 1; note_alloc(p, n, CALLER); busy = 0; }
  return p;
}
void* calloc(size_t a, size_t b) {
  void* p = __libc_calloc(a, b);
  if (!busy) { busy = 1; note_alloc(p, a * b, CALLER); busy = 0; }
  return p;
}
void* realloc(void* old, size_t n) {
  if (!busy && old) { busy = 1; note_free(old); busy = 0; }
  void* p = __libc_realloc(old, n);
  if (!busy && n) { busy = 1; note_alloc(p, n, CALLER); busy = 0; }
  return p;
}
void free(void* p) {
  if (!busy && p) { busy = 1; note_free(p); busy = 0; }
  __libc_free(p);
}
int posix_memalign(void** out, size_t align, size_t n) {
  void* p = __libc_memalign(align, n);
  if (!p) return 12;
  if (!busy) { busy = 1; note_alloc(p, n, CALLER); busy = 0; }
  *out = p;
  return 0;
}
void* aligned_alloc(size_t align, size_t n) {
  void* p = __libc_memalign(align, n);
  if (!busy) { busy = 1; note_alloc(p, n, CALLER); busy = 0; }
  return p;
}
void* memalign(size_t align, size_t n) {
  void* p = __libc_memalign(align, n);
  if (!busy) { busy = 1; note_alloc(p, n, CALLER); busy = 0; }
  return p;
}
/* operator new / new[]: the caller is the code that asked (in the addon, or in libstdc++). */
void* _Znwm(size_t n) {
  void* p = __libc_malloc(n ? n : 1);
  if (!p) abort();
  if (!busy) { busy = 1; note_alloc(p, n, CALLER); busy = 0; }
  return p;
}
void* _Znam(size_t n) {
  void* p = __libc_malloc(n ? n : 1);
  if (!p) abort();
  if (!busy) { busy = 1; note_alloc(p, n, CALLER); busy = 0; }
  return p;
}

__attribute__((destructor)) static void dump(void) {
  busy = 1;
  const char* path = getenv("MALLOC_SITES_OUT");
  FILE* out = path ? fopen(path, "w") : stderr;
  if (!out) return;
  acquire();
  fprintf(out, "tid\tallocs\tbytes\tfreed_same\tfreed_other\tlive\tlive_bytes\tsite\n");
  for (uint32_t i = 0; i < SITES; i++) {
    struct site* s = &sites[i];
    if (!s->pc || !s->allocs) continue;
    Dl_info d;
    const char* mod = "?";
    uintptr_t off = s->pc;
    const char* sym = "";
    if (dladdr((void*)s->pc, &d) && d.dli_fname) {
      mod = d.dli_fname;
      off = s->pc - (uintptr_t)d.dli_fbase;
      if (d.dli_sname) sym = d.dli_sname;
    }
    fprintf(out, "%d\t%lu\t%lu\t%lu\t%lu\t%ld\t%ld\t%s+0x%lx %s\n", s->tid, (unsigned long)s->allocs,
            (unsigned long)s->bytes, (unsigned long)s->freed_same, (unsigned long)s->freed_other, (long)s->live,
            (long)s->live_bytes, mod, (unsigned long)off, sym);
  }
  fprintf(out, "# thread heaps (tid: 64 MiB-aligned bases of the chunks it allocated)\n");
  for (int i = 0; i < THREADS; i++) {
    if (!thread_heaps[i].tid) continue;
    fprintf(out, "# %d:", thread_heaps[i].tid);
    for (int k = 0; k < 4 && thread_heaps[i].heaps[k]; k++) fprintf(out, " %lx", (unsigned long)thread_heaps[i].heaps[k]);
    fprintf(out, "\n");
  }
  release();
  if (out != stderr) fclose(out);
}
