/* Diagnostic helper for bench/soak-malloc/probe.mjs (not part of the library): glibc's
   mallinfo2() and malloc_info() for a Node process, and malloc_trim(0). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <node_api.h>
static napi_value num(napi_env env, double v) { napi_value r; napi_create_double(env, v, &r); return r; }
static napi_value Info(napi_env env, napi_callback_info info) {
  struct mallinfo2 m = mallinfo2();
  napi_value o; napi_create_object(env, &o);
  napi_set_named_property(env, o, "arena", num(env, m.arena));      /* main arena sbrk'd */
  napi_set_named_property(env, o, "hblkhd", num(env, m.hblkhd));    /* mmapped chunks */
  napi_set_named_property(env, o, "uordblks", num(env, m.uordblks));/* in use, all arenas */
  napi_set_named_property(env, o, "fordblks", num(env, m.fordblks));/* free, all arenas */
  napi_set_named_property(env, o, "keepcost", num(env, m.keepcost));
  /* malloc_info XML: per-arena totals */
  char* buf = NULL; size_t len = 0; FILE* f = open_memstream(&buf, &len);
  malloc_info(0, f); fclose(f);
  napi_value s; napi_create_string_utf8(env, buf, len, &s); free(buf);
  napi_set_named_property(env, o, "xml", s);
  return o;
}
static napi_value Trim(napi_env env, napi_callback_info info) { return num(env, malloc_trim(0)); }
/* With malloc-sites.so preloaded: start its count afresh. */
static napi_value SitesReset(napi_env env, napi_callback_info info) {
  void (*reset)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "malloc_sites_reset");
  if (reset) reset();
  return num(env, reset != NULL);
}
NAPI_MODULE_INIT() {
  napi_value f; napi_create_function(env, "info", NAPI_AUTO_LENGTH, Info, NULL, &f);
  napi_set_named_property(env, exports, "info", f);
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &f);
  napi_set_named_property(env, exports, "trim", f);
  napi_create_function(env, "sitesReset", NAPI_AUTO_LENGTH, SitesReset, NULL, &f);
  napi_set_named_property(env, exports, "sitesReset", f);
  return exports;
}
