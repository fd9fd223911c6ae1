import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    reporters: ['default'],
    // Many tests are CPU-bound (property tests, large tables) or start processes: up to 1.5 s on
    // an idle host, three times that at load 8 on two cores, near vitest's 5 s default. A hang
    // still fails; what a test waits for has a deadline of its own.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
