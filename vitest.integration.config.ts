import { defineConfig } from 'vitest/config'

// Integration tier: whole cores, real sockets on loopback, child processes.
export default defineConfig({
  test: {
    include: ['test/integration/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    env: { TRIBLER_NO_PUBLIC_NETWORK: '1' },
  },
})
