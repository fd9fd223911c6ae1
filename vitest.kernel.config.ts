import { defineConfig } from 'vitest/config';

// Runs inside the test VM (scripts/test.sh), as root, against the real kernel IPVS.
// Files run one at a time: the guest has two emulated CPUs and each file builds its own
// network namespaces.
export default defineConfig({
  test: {
    include: ['test/kernel/**/*.test.ts'],
    setupFiles: ['test/kernel/setup.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
