import { defineConfig, mergeConfig } from 'vitest/config';

import kernel from './vitest.kernel.config';

// The kernel suite against the ASan+UBSan build (scripts/test.sh). Only the test workers get
// the sanitizer runtime (IPVS_ASAN_PRELOAD, preloaded because node is not instrumented): the
// main vitest process only schedules and transforms, and would be slowed for nothing. One
// worker runs every file (isolate: false): a worker under ASan starts slowly, and vitest gives
// each start at most 60 s. Every kernel test file makes its own namespaces.
export default mergeConfig(
  kernel,
  defineConfig({
    test: {
      isolate: false,
      maxWorkers: 1,
      env: { LD_PRELOAD: process.env.IPVS_ASAN_PRELOAD ?? '', IPVS_ASAN: '1' },
    },
  }),
);
