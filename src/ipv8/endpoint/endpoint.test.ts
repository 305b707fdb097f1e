import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { MemoryNetwork, seededRandom } from '../../net/index.js'
import { Community } from '../community/index.js'
import { DiscoveryCommunity } from '../discovery/index.js'
import { PrivateKey } from '../keys/index.js'
import { communityPrefix, PREFIX_LENGTH } from '../serialization/index.js'
import { loadVectors } from '../testing/vectors.js'
import { BEACON_HEADER, Ipv8Endpoint } from './index.js'

const prefixA = communityPrefix(Buffer.alloc(20, 0xaa))
const prefixB = communityPrefix(Buffer.alloc(20, 0xbb))
const from = { host: '127.0.0.9', port: 9 }

async function endpoint(opts: ConstructorParameters<typeof Ipv8Endpoint>[1] = {}) {
  const clock = new ManualClock()
  const net = new MemoryNetwork({ clock })
  const socket = await net.bind({ host: '127.0.0.1' })
  return { ep: new Ipv8Endpoint({ socket, clock }, opts), clock, socket, net }
}

describe('Ipv8Endpoint', () => {
  it('dispatches by prefix and counts per community and in total', async () => {
    const { ep } = await endpoint()
    const got: string[] = []
    ep.register(prefixA, () => {
      got.push('a')
      return true
    })
    ep.register(prefixB, () => {
      got.push('b')
      return false
    })
    ep.receive(Buffer.concat([prefixA, Buffer.from([1, 2])]), from)
    ep.receive(Buffer.concat([prefixB, Buffer.from([1])]), from)
    ep.receive(Buffer.concat([communityPrefix(Buffer.alloc(20)), Buffer.from([1])]), from)
    ep.receive(Buffer.from([0, 2, 3]), from)
    ep.send(Buffer.concat([prefixA, Buffer.from([5])]), from)
    expect(got).toEqual(['a', 'b'])
    const stats = ep.stats
    expect(stats.total).toMatchObject({ packetsIn: 4, packetsOut: 1, packetsDropped: 3 })
    expect(stats.drops).toEqual({ tooShort: 1, unknownPrefix: 1, rateLimited: 0, rejected: 1 })
    expect(stats.communities.get('aa'.repeat(20))).toMatchObject({
      packetsIn: 1,
      bytesIn: 24,
      packetsOut: 1,
      bytesOut: 23,
    })
    expect(stats.communities.get('bb'.repeat(20))).toMatchObject({ packetsIn: 1, packetsDropped: 1 })
  })

  it('counts a datagram rejected after its listener accepted it, for its community only', async () => {
    const { ep } = await endpoint()
    ep.register(prefixA, () => true)
    ep.register(prefixB, () => true)
    ep.receive(Buffer.concat([prefixA, Buffer.from([1])]), from)
    ep.receive(Buffer.concat([prefixB, Buffer.from([1])]), from)
    expect(ep.stats.drops.rejected).toBe(0)
    ep.rejectLater(prefixA)
    expect(ep.stats.drops.rejected).toBe(1)
    expect(ep.stats.total.packetsDropped).toBe(1)
    expect(ep.countersOf(prefixA)?.packetsDropped).toBe(1)
    expect(ep.countersOf(prefixB)?.packetsDropped).toBe(0)
    // a prefix that is not registered (any more) is not counted
    ep.rejectLater(communityPrefix(Buffer.alloc(20, 0xcc)))
    expect(ep.stats.drops.rejected).toBe(1)
  })

  it('refuses a second registration of the same prefix', async () => {
    const { ep } = await endpoint()
    const off = ep.register(prefixA, () => true)
    expect(() => ep.register(prefixA, () => true)).toThrow(RangeError)
    off()
    expect(ep.isRegistered(prefixA)).toBe(false)
  })

  it('contains handler exceptions and counts them as drops', async () => {
    const { ep } = await endpoint()
    ep.register(prefixA, () => {
      throw new Error('boom')
    })
    expect(() => ep.receive(Buffer.concat([prefixA, Buffer.from([1])]), from)).not.toThrow()
    expect(ep.stats.drops.rejected).toBe(1)
  })

  it('limits floods per source host and refills over time', async () => {
    const { ep, clock } = await endpoint({ rateLimit: { packetsPerSec: 100, burst: 10 } })
    let handled = 0
    ep.register(prefixA, () => {
      handled += 1
      return true
    })
    const packet = Buffer.concat([prefixA, Buffer.from([1])])
    for (let i = 0; i < 50; i++) ep.receive(packet, from)
    ep.receive(packet, { host: '127.0.0.8', port: 1 })
    expect(handled).toBe(11)
    expect(ep.stats.drops.rateLimited).toBe(40)
    clock.advance(100)
    for (let i = 0; i < 50; i++) ep.receive(packet, from)
    expect(handled).toBe(21)
  })

  it('does not count established traffic against the flood limit, but still limits the rest', async () => {
    const { ep } = await endpoint({ rateLimit: { packetsPerSec: 100, burst: 10 } })
    const neighbour = { host: '127.0.0.8', port: 1 }
    const flows: string[] = []
    ep.register(
      prefixA,
      (data) => {
        flows.push(data[PREFIX_LENGTH] === 0 ? 'cell' : 'other')
        return true
      },
      // a cell (message id 0) from the neighbour is established; the check may throw on anything else
      {
        established: (data, source) => {
          if (data[PREFIX_LENGTH] === 0xff) throw new Error('boom')
          return data[PREFIX_LENGTH] === 0 && source.host === neighbour.host && source.port === neighbour.port
        },
      },
    )
    const cell = Buffer.concat([prefixA, Buffer.from([0])])
    const other = Buffer.concat([prefixA, Buffer.from([1])])
    for (let i = 0; i < 1_000; i++) ep.receive(cell, neighbour)
    expect(flows.filter((f) => f === 'cell')).toHaveLength(1_000)
    expect(ep.stats.drops.rateLimited).toBe(0)
    // the neighbour's other messages, and the same cells from anyone else, use the per-host budget
    for (let i = 0; i < 50; i++) ep.receive(other, neighbour)
    for (let i = 0; i < 50; i++) ep.receive(cell, from)
    for (let i = 0; i < 50; i++) ep.receive(Buffer.concat([prefixA, Buffer.from([0xff])]), from)
    expect(flows.filter((f) => f === 'other')).toHaveLength(10)
    expect(flows).toHaveLength(1_000 + 10 + 10)
    expect(ep.stats.drops.rateLimited).toBe(40 + 40 + 50)
  })

  it('hands LAN announces to beacon listeners', async () => {
    const { ep } = await endpoint()
    const heard: Buffer[] = []
    ep.onBeacon((prefix) => heard.push(prefix))
    ep.receive(Buffer.concat([BEACON_HEADER, prefixA]), from)
    expect(heard).toEqual([prefixA])
    expect(ep.stats.drops.unknownPrefix).toBe(0)
  })
})

describe('endpoint fuzzing', () => {
  it('survives random and mutated packets: nothing escapes, drop counters move', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ clock, latencyMs: 1 })
    const socket = await net.bind({ host: '127.0.0.1' })
    const ep = new Ipv8Endpoint({ socket, clock }, { rateLimit: false })
    const deps = { endpoint: ep, key: PrivateKey.generate(), clock, random: seededRandom(4) }
    const discovery = new DiscoveryCommunity(deps, {
      strategies: () => [],
      bootstrap: { publicNetwork: false },
    })
    const tunnelId = Buffer.from('81ded07332bdc775aa5a46f96de9f8f390bbc9f3', 'hex')
    const plain = new Community(deps, tunnelId, { strategies: () => [], bootstrap: { publicNetwork: false } })
    await discovery.start()
    await plain.start()
    const seeds = loadVectors<{ vectors: Array<{ packet: string }> }>('packets').vectors.map((v) =>
      Buffer.from(v.packet, 'hex'),
    )
    const random = seededRandom(99)
    const byte = (): number => Math.floor(random() * 256)
    for (let i = 0; i < 20_000; i++) {
      const seed = seeds[i % seeds.length] as Buffer
      let packet: Buffer
      const mode = i % 4
      if (mode === 0) {
        packet = Buffer.alloc(Math.floor(random() * 300))
        for (let j = 0; j < packet.length; j++) packet[j] = byte()
        if (random() < 0.5) seed.copy(packet, 0, 0, Math.min(23, packet.length))
      } else if (mode === 1) {
        packet = Buffer.from(seed)
        for (let k = 0; k < 1 + Math.floor(random() * 4); k++)
          packet[Math.floor(random() * packet.length)] = byte()
      } else if (mode === 2) {
        packet = seed.subarray(0, Math.floor(random() * seed.length))
      } else {
        packet = Buffer.concat([seed.subarray(0, 23), Buffer.from(seed.subarray(23)).reverse()])
      }
      expect(() =>
        ep.receive(packet, { host: `127.0.0.${2 + (i % 200)}`, port: 1000 + (i % 7) }),
      ).not.toThrow()
      if (i % 1000 === 0) clock.advance(10)
    }
    const stats = ep.stats
    expect(stats.total.packetsIn).toBe(20_000)
    expect(stats.drops.rejected + stats.drops.unknownPrefix + stats.drops.tooShort).toBeGreaterThan(10_000)
    const dropped = discovery.statistics.dropped
    expect(dropped.malformed + dropped.badSignature).toBeGreaterThan(1_000)
    expect(dropped.handlerError).toBe(0)
    clock.advance(1_000)
    await discovery.stop()
    await plain.stop()
  })
})
