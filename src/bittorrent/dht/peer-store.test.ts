import { describe, expect, it } from 'vitest'
import { PeerStore } from './peer-store.js'

const HASH = Buffer.alloc(20, 1)

describe('PeerStore', () => {
  it('forgets peers after their time to live unless they announce again', () => {
    const store = new PeerStore({ ttlMs: 1000 })
    store.add(HASH, { host: '10.0.0.1', port: 1 }, 0)
    store.add(HASH, { host: '10.0.0.2', port: 2 }, 0)
    store.add(HASH, { host: '10.0.0.2', port: 2 }, 900)
    expect(store.get(HASH, 999)).toHaveLength(2)
    expect(store.get(HASH, 1000)).toEqual([{ host: '10.0.0.2', port: 2 }])
    store.expire(2000)
    expect(store.torrentCount).toBe(0)
  })

  it('stays within its bounds under a flood of announces', () => {
    const store = new PeerStore({ maxPeersPerTorrent: 10, maxTorrents: 5 })
    for (let i = 0; i < 100; i++) store.add(HASH, { host: `10.0.1.${i}`, port: 1 }, i)
    expect(store.get(HASH, 0, 1000)).toHaveLength(10)
    for (let i = 0; i < 10; i++) store.add(Buffer.alloc(20, i + 2), { host: '10.0.0.1', port: 1 }, 0)
    expect(store.torrentCount).toBe(5)
  })
})
