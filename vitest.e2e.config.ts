import { defineConfig } from 'vitest/config'

// E2E tier: the built web GUI in headless Chromium (playwright-core, system /usr/bin/chromium) against real cores
// on loopback. Needs `npm run build` first (scripts/test.sh builds before the tiers).
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
    env: { TRIBLER_NO_PUBLIC_NETWORK: '1' },
  },
})
