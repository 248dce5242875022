import { defineConfig } from 'vitest/config';

// The browser tests: Debian's Chromium driven by playwright-core against the local stack as
// scripts/dev starts it (scripts/test starts it and sets ACTIVITY_LOG_WEB_URL).
export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    environment: 'node',
    testTimeout: 240_000,
    hookTimeout: 240_000,
    fileParallelism: false,
  },
});
