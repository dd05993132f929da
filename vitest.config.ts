import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // DAG files import the public API by package name, as a user's would.
    alias: { hubflow: fileURLToPath(new URL('./index.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Files isolate themselves (own schema, own BullMQ prefix), so they run in parallel.
    pool: 'forks',
  },
});
