import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { TrackerManager } from './tiers.js'
import { type AnnounceRequest, type AnnounceResponse, type TrackerClient, TrackerError } from './types.js'

/** A client whose trackers answer or fail by URL, recording every announce. */
function scriptedClient(answers: Record<string, AnnounceResponse | string>) {
  const calls: Array<{ url: string; event: string }> = []
  const client: TrackerClient = {
    announce: async (url: string, request: AnnounceRequest) => {
      calls.push({ url, event: request.event })
      const answer = answers[url]
      if (answer === undefined) throw new TrackerError('TIMEOUT', {})
      if (typeof answer === 'string') throw new TrackerError('TRACKER_FAILURE', { reason: answer })
      return answer
    },
    scrape: async () => new Map(),
  }
  return { client, calls }
}

const base = {
  infoHash: Buffer.alloc(20, 1),
  peerId: Buffer.alloc(20, 2),
  port: 6881,
  stats: () => ({ uploaded: 0, downloaded: 0, left: 100 }),
}

describe('TrackerManager', () => {
  it('moves the working tracker of a tier to the front and stops at the first working tier', async () => {
    const { client, calls } = scriptedClient({
      'udp://b:1': { intervalSec: 600, peers: [{ host: '10.0.0.9', port: 1 }] },
      'http://c/announce': { intervalSec: 600, peers: [] },
    })
    const clock = new ManualClock()
    const manager = new TrackerManager(
      { clients: { udp: client, http: client }, clock, random: () => 0.999 },
      { ...base, tiers: [['udp://a:1', 'udp://b:1'], ['http://c/announce']] },
    )
    const seen: unknown[] = []
    manager.events.on('peers', (e) => seen.push(e))
    expect(await manager.announce('started')).toEqual([{ host: '10.0.0.9', port: 1 }])
    expect(calls.map((c) => c.url)).toEqual(['udp://a:1', 'udp://b:1'])
    expect(manager.tiers).toEqual([['udp://b:1', 'udp://a:1'], ['http://c/announce']])
    expect(seen).toEqual([{ url: 'udp://b:1', peers: [{ host: '10.0.0.9', port: 1 }] }])
    const status = manager.status
    expect(status.map((s) => [s.url, s.status, s.peers])).toEqual([
      ['udp://b:1', 'Working', 1],
      ['udp://a:1', 'Timeout', 0],
      ['http://c/announce', 'Not contacted yet', 0],
    ])
    expect(status[0]!.nextAnnounceMs).toBe(clock.now() + 600_000)
    await manager.stop()
    expect(calls.at(-1)).toEqual({ url: 'udp://b:1', event: 'stopped' })
  })

  it('falls through to the next tier when a whole tier fails, and retries with backoff', async () => {
    const { client, calls } = scriptedClient({})
    const clock = new ManualClock()
    const manager = new TrackerManager(
      { clients: { http: client }, clock },
      { ...base, tiers: [['http://a/announce'], ['http://b/announce'], ['wss://c']], retryBaseMs: 1000 },
    )
    await manager.announce('started')
    expect(calls.map((c) => c.url)).toEqual(['http://a/announce', 'http://b/announce'])
    expect(manager.status[2]!.status).toBe('Error: unsupported tracker scheme')
    clock.advance(1000)
    await new Promise((r) => setImmediate(r))
    expect(calls).toHaveLength(4)
    clock.advance(1999)
    await new Promise((r) => setImmediate(r))
    expect(calls).toHaveLength(4)
    clock.advance(1)
    await new Promise((r) => setImmediate(r))
    expect(calls).toHaveLength(6)
    await manager.stop()
  })

  it('announces to every tier when asked to', async () => {
    const { client, calls } = scriptedClient({
      'udp://a:1': { intervalSec: 60, peers: [] },
      'udp://b:1': { intervalSec: 60, peers: [] },
    })
    const manager = new TrackerManager(
      { clients: { udp: client }, clock: new ManualClock() },
      { ...base, tiers: [['udp://a:1'], ['udp://b:1', 'udp://a:1']], announceToAllTiers: true },
    )
    await manager.announce('started')
    expect(calls.map((c) => c.url)).toEqual(['udp://a:1', 'udp://b:1'])
    await manager.stop()
  })
})
