import { defineConfig } from 'vitest/config'

// Unit tier: fast tests beside the code, no real network beyond loopback sockets inside one process.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    env: { TRIBLER_NO_PUBLIC_NETWORK: '1' },
  },
})
