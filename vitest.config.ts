import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests that start redis-server processes or HTTP servers pick free ports; files run
    // in parallel on 2 workers at most so that the 2-core machine is not oversubscribed.
    maxWorkers: 2,
  },
});
