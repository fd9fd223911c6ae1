import { defineConfig } from 'vitest/config';

// Host-side integration tests: they boot the VM from the host (the sandbox command), so they
// run after the unit tests, one file at a time.
export default defineConfig({
  test: {
    include: ['test/host/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
    reporters: ['default'],
  },
});
