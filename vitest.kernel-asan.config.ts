import { defineConfig, mergeConfig } from 'vitest/config';

import kernel from './vitest.kernel.config';

// The kernel suite against the ASan+UBSan build (scripts/test.sh). Only the test workers get
// the sanitizer runtime (IPVS_ASAN_PRELOAD, preloaded because node is not instrumented): the
// main vitest process only schedules and transforms, and would be slowed for nothing.
export default mergeConfig(
  kernel,
  defineConfig({ test: { env: { LD_PRELOAD: process.env.IPVS_ASAN_PRELOAD ?? '', IPVS_ASAN: '1' } } }),
);
