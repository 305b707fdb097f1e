import { defineConfig } from 'vitest/config'

// Interop tier: real third-party peers (libtorrent, Transmission, aria2, opentracker, py-ipv8) on loopback. Slow.
export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts'],
    globalSetup: ['test/support/interop-requirements.ts'],
    environment: 'node',
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
    env: { TRIBLER_NO_PUBLIC_NETWORK: '1' },
  },
})
