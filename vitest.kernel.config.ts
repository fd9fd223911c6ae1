import { defineConfig } from 'vitest/config';

// Runs inside the test VM (scripts/test.sh), as root, against the real kernel IPVS.
// Files run one at a time: the guest has two emulated CPUs and each file builds its own
// network namespaces. They share one worker (isolate: false): a fresh worker per file re-imports
// vitest and the library in the emulated guest, several seconds each; every file makes its own
// namespaces and handles, so nothing a file needs is left by another.
export default defineConfig({
  test: {
    include: ['test/kernel/**/*.test.ts'],
    setupFiles: ['test/kernel/setup.ts'],
    fileParallelism: false,
    isolate: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
