import { afterEach, describe, expect, it, vi } from 'vitest'
import { type DatagramSocket, emptyDatagramStats, type SocketAddress } from '../../net/index.js'
import { EdgeWalk, RandomWalk } from '../discovery/index.js'
import { Ipv8Endpoint } from '../endpoint/index.js'
import { PrivateKey } from '../keys/index.js'
import { payload, signedPacket } from '../serialization/index.js'
import { OverlayTestNetwork } from '../testing/harness.js'
import {
  type AddressBootstrapper,
  Community,
  type CommunityDeps,
  type CommunitySettings,
  DEFAULT_BOOTSTRAP_ADDRESSES,
  defaultBootstrappers,
  NewIntroductionRequestPayload,
  RequestCache,
} from './index.js'

const ID = Buffer.from('00112233445566778899aabbccddeeff00112233', 'hex')
const Hello = payload(1, { text: 'varlenHutf8' })

class HelloCommunity extends Community {
  readonly received: Array<{ mid: string; text: string }> = []
  constructor(deps: CommunityDeps, settings: CommunitySettings = {}) {
    super(deps, ID, settings)
    this.addSignedHandler(Hello, (peer, p) => this.received.push({ mid: peer.midHex, text: p.text }))
  }
}

const make =
  (settings: CommunitySettings = {}) =>
  (deps: CommunityDeps, _i: number, bootstrap: SocketAddress[]) =>
    new HelloCommunity(deps, { bootstrap: { publicNetwork: false, addresses: bootstrap }, ...settings })

let net: OverlayTestNetwork<HelloCommunity> | undefined
afterEach(async () => {
  await net?.stopAll()
  net = undefined
})

describe('Community discovery', () => {
  it('two nodes find each other through the bootstrap address and exchange signed messages', async () => {
    net = await OverlayTestNetwork.create(2, make())
    await net.startAll()
    net.advance(1_000)
    const [a, b] = [net.node(0), net.node(1)]
    expect(a.community.network.getPeer(b.key.mid)?.address).toEqual(b.socket.local)
    expect(b.community.network.getPeer(a.key.mid)?.address).toEqual(a.socket.local)
    b.community.ezSend(a.socket.local, Hello, { text: 'hi' })
    net.advance(100)
    expect(a.community.received).toEqual([{ mid: b.key.mid.toString('hex'), text: 'hi' }])
  })

  it('reports message statistics only while enabled, from zero, with first and last times', async () => {
    net = await OverlayTestNetwork.create(2, make({ strategies: () => [] }))
    await net.startAll()
    const [a, b] = [net.node(0), net.node(1)]
    const hello = () => {
      b.community.ezSend(a.socket.local, Hello, { text: 'hi' })
      net?.advance(100)
    }
    hello()
    expect(a.community.statistics.messages.get(1)?.packetsIn).toBe(1)
    expect(a.community.statisticsEnabled).toBe(false)
    expect(a.community.reportedStatistics.size).toBe(0)
    a.community.enableStatistics(true)
    expect(a.community.reportedStatistics.size).toBe(0)
    const enabledAt = net.clock?.now() ?? 0
    hello()
    hello()
    a.community.enableStatistics(true) // enabling again keeps counting
    const reported = a.community.reportedStatistics.get(1)
    expect(reported).toMatchObject({ packetsIn: 2, packetsOut: 0, firstMeasuredUp: 0, lastMeasuredUp: 0 })
    expect(reported?.firstMeasuredDown).toBeGreaterThanOrEqual(enabledAt / 1000)
    expect(reported?.lastMeasuredDown).toBeGreaterThan(reported?.firstMeasuredDown ?? 0)
    a.community.enableStatistics(false)
    expect(a.community.reportedStatistics.size).toBe(0)
    a.community.enableStatistics(true)
    hello()
    expect(a.community.reportedStatistics.get(1)?.packetsIn).toBe(1)
    expect(a.community.statistics.messages.get(1)?.packetsIn).toBe(4)
  })

  it('introduces a third node and punctures towards the requester', async () => {
    net = await OverlayTestNetwork.create(3, make())
    const [a, b, c] = [net.node(0), net.node(1), net.node(2)]
    await a.community.start()
    await b.community.start()
    net.advance(1_000)
    await c.community.start()
    const introductions: Array<SocketAddress | undefined> = []
    c.community.events.on('introduction-response', (e) => introductions.push(e.introduced))
    net.advance(3_000)
    expect(introductions.some((x) => x?.port === b.socket.local.port && x.host === b.socket.local.host)).toBe(
      true,
    )
    expect(c.community.network.getPeer(b.key.mid)).toBeDefined()
    const count = (id: number, dir: 'packetsIn' | 'packetsOut'): number =>
      net?.nodes.reduce((sum, n) => sum + (n.community.statistics.messages.get(id)?.[dir] ?? 0), 0) ?? 0
    expect(count(250, 'packetsIn') + count(232, 'packetsIn')).toBeGreaterThan(0)
    expect(count(249, 'packetsIn') + count(231, 'packetsIn')).toBeGreaterThan(0)
  })

  it('answers a new-style request with a new-style response', async () => {
    net = await OverlayTestNetwork.create(2, make({ strategies: () => [] }))
    const [a, b] = [net.node(0), net.node(1)]
    await a.community.start()
    const seen: number[] = []
    b.socket.onMessage((data) => seen.push(data[22] ?? -1))
    const request = signedPacket(
      a.community.prefix,
      NewIntroductionRequestPayload,
      {
        destinationAddress: a.socket.local,
        sourceLanAddress: b.socket.local,
        sourceWanAddress: b.socket.local,
        identifier: 5,
        bits: Array(8).fill(false),
        extraBytes: Buffer.alloc(0),
      },
      b.key,
      5n,
    )
    b.socket.send(request, a.socket.local)
    net.advance(100)
    expect(seen).toEqual([233])
    expect(a.community.network.getPeer(b.key.mid)?.newStyle).toBe(true)
  })

  it('adds no peers beyond max peers but still introduces newcomers', async () => {
    net = await OverlayTestNetwork.create(4, make({ maxPeers: 2, strategies: () => [] }))
    await net.startAll()
    for (const i of [1, 2, 3]) {
      net.node(i).community.walkTo(net.node(0).socket.local)
      net.advance(100)
    }
    expect(net.node(0).community.network.size).toBe(2)
    const newcomer = net.node(3).community
    expect(newcomer.network.getPeer(net.node(0).key.mid)).toBeDefined()
    expect(newcomer.network.walkableAddresses.length).toBe(1)
  })

  it('drops peers that stop answering', async () => {
    net = await OverlayTestNetwork.create(3, make())
    await net.startAll()
    net.advance(5_000)
    const a = net.node(0)
    const c = net.node(2)
    expect(a.community.network.getPeer(c.key.mid)).toBeDefined()
    const removed: string[] = []
    a.community.events.on('peer-removed', (e) => removed.push(e.peer.midHex))
    net.memory?.partition(c.socket.local.host)
    net.advance(70_000, 250)
    expect(a.community.network.getPeer(c.key.mid)).toBeUndefined()
    expect(removed).toContain(c.key.mid.toString('hex'))
    expect(a.community.network.getPeer(net.node(1).key.mid)).toBeDefined()
  })

  it('drops forged, malformed and unknown messages and counts them', async () => {
    net = await OverlayTestNetwork.create(2, make({ strategies: () => [] }))
    await net.startAll()
    const [a, b] = [net.node(0), net.node(1)]
    const good = signedPacket(a.community.prefix, Hello, { text: 'x' }, b.key, 1n)
    const forged = Buffer.from(good)
    forged[forged.length - 70] = (forged[forged.length - 70] ?? 0) ^ 1
    const unknown = Buffer.from(good)
    unknown[22] = 77
    for (const packet of [forged, good.subarray(0, 40), unknown]) b.socket.send(packet, a.socket.local)
    net.advance(100)
    expect(a.community.received).toEqual([])
    expect(a.community.statistics.dropped).toMatchObject({ badSignature: 1, malformed: 1, unknownMessage: 1 })
    expect(a.endpoint.stats.drops.rejected).toBe(3)
  })

  it('limits a host that floods signed messages before checking them; other hosts go on', async () => {
    net = await OverlayTestNetwork.create(
      3,
      make({ strategies: () => [], signedRateLimit: { packetsPerSec: 100, burst: 50 } }),
    )
    await net.startAll()
    const [a, b, c] = [net.node(0), net.node(1), net.node(2)]
    const flood = (count: number) => {
      for (let i = 0; i < count; i++) {
        b.socket.send(
          signedPacket(a.community.prefix, Hello, { text: `${i}` }, b.key, BigInt(i + 1)),
          a.socket.local,
        )
      }
    }
    flood(500)
    c.community.ezSend(a.socket.local, Hello, { text: 'from c' })
    net.advance(50)
    const fromB = () => a.community.received.filter((m) => m.mid === b.key.mid.toString('hex')).length
    expect(fromB()).toBe(50)
    expect(a.community.statistics.dropped.rateLimited).toBe(450)
    expect(a.community.statistics.dropped.badSignature).toBe(0)
    expect(a.community.received.some((m) => m.text === 'from c')).toBe(true)
    // the budget refills at the sustained rate
    net.advance(1_000)
    flood(500)
    net.advance(50)
    expect(fromB()).toBeGreaterThanOrEqual(50 + 50)
    expect(fromB()).toBeLessThanOrEqual(50 + 50 + 10)
  })

  it('limits floods by default', async () => {
    net = await OverlayTestNetwork.create(2, make({ strategies: () => [] }))
    await net.startAll()
    const [a, b] = [net.node(0), net.node(1)]
    for (let i = 0; i < 2_500; i++) {
      b.socket.send(
        signedPacket(a.community.prefix, Hello, { text: 'x' }, b.key, BigInt(i + 1)),
        a.socket.local,
      )
    }
    net.advance(10)
    expect(a.community.received.length).toBeLessThanOrEqual(2_000 + 20)
    expect(a.community.statistics.dropped.rateLimited).toBeGreaterThanOrEqual(480)
  })

  it('stops every task and leaves the endpoint when stopped', async () => {
    net = await OverlayTestNetwork.create(2, make())
    await net.startAll()
    const a = net.node(0).community
    await a.stop()
    expect(a.running).toBe(false)
    expect(net.node(0).endpoint.isRegistered(a.prefix)).toBe(false)
    const before = net.node(0).socket.stats.packetsSent
    net.advance(5_000)
    expect(net.node(0).socket.stats.packetsSent).toBe(before)
  })
})

describe('walk strategies', () => {
  it('50 nodes on the memory network each know at least 10 others within 60 s of walking', async () => {
    net = await OverlayTestNetwork.create(50, make(), { seed: 3 })
    await net.startAll()
    let elapsedMs = 0
    while (net.minPeers < 10 && elapsedMs < 60_000) {
      net.advance(1_000)
      elapsedMs += 1_000
    }
    expect(net.minPeers).toBeGreaterThanOrEqual(10)
    expect(Math.max(...net.nodes.map((n) => n.community.network.size))).toBeLessThanOrEqual(30)
  })

  it('EdgeWalk grows edges away from its neighbourhood and finds the network', async () => {
    net = await OverlayTestNetwork.create(
      20,
      make({ strategies: (c) => [new EdgeWalk(c, { targetPeers: -1, neighborhoodSize: 3, edgeLength: 3 })] }),
      { seed: 5 },
    )
    await net.startAll()
    net.advance(60_000, 100)
    const strategy = net.node(5).community.strategies[0] as EdgeWalk
    expect(strategy.completedEdges).toBeGreaterThan(0)
    expect(net.minPeers).toBeGreaterThanOrEqual(5)
  })

  it('RandomWalk forgets introduced addresses that never answer', async () => {
    net = await OverlayTestNetwork.create(
      2,
      make({ strategies: (c) => [new RandomWalk(c, { timeoutMs: 3_000 })] }),
    )
    await net.startAll()
    net.advance(1_000)
    const a = net.node(1).community
    a.network.discoverAddress(undefined, { host: '127.0.0.99', port: 1 }, false, 0)
    net.advance(10_000, 100)
    expect(a.network.walkableAddresses.map((w) => w.address.host)).not.toContain('127.0.0.99')
  })
})

describe('bootstrapping', () => {
  it('publicNetwork false empties the default lists but keeps explicit addresses', () => {
    expect(defaultBootstrappers({ publicNetwork: false })).toEqual([])
    const explicit = defaultBootstrappers({
      publicNetwork: false,
      addresses: [{ host: '127.0.0.1', port: 1 }],
    })
    expect(explicit.map((b) => (b as AddressBootstrapper).addresses)).toEqual([
      [{ host: '127.0.0.1', port: 1 }],
    ])
    const pub = defaultBootstrappers({ publicNetwork: true })
    expect((pub[0] as AddressBootstrapper).addresses).toEqual(DEFAULT_BOOTSTRAP_ADDRESSES)
  })

  it('follows TRIBLER_NO_PUBLIC_NETWORK when publicNetwork is not given', () => {
    const previous = process.env.TRIBLER_NO_PUBLIC_NETWORK
    process.env.TRIBLER_NO_PUBLIC_NETWORK = '1'
    try {
      expect(defaultBootstrappers()).toEqual([])
    } finally {
      if (previous === undefined) delete process.env.TRIBLER_NO_PUBLIC_NETWORK
      else process.env.TRIBLER_NO_PUBLIC_NETWORK = previous
    }
  })
})

describe('RequestCache', () => {
  it('times out entries that were not popped, and never after close', async () => {
    const { ManualClock } = await import('../../common/index.js')
    const clock = new ManualClock()
    const cache = new RequestCache({ clock })
    const timedOut: string[] = []
    const a = cache.add('ping', { onTimeout: () => timedOut.push('a') }, { timeoutMs: 100 })
    const b = cache.add('ping', { onTimeout: () => timedOut.push('b') }, { timeoutMs: 100 })
    expect(a).not.toBe(b)
    expect(cache.pop('ping', a)).toBeDefined()
    clock.advance(100)
    expect(timedOut).toEqual(['b'])
    cache.add('x', { onTimeout: () => timedOut.push('c') }, { number: 7, timeoutMs: 10 })
    expect(() => cache.add('x', { onTimeout: () => {} }, { number: 7, timeoutMs: 10 })).toThrow(
      expect.objectContaining({ code: 'DUPLICATE_REQUEST' }),
    )
    cache.close()
    clock.advance(100)
    expect(timedOut).toEqual(['b'])
  })
})

/** A socket that drops what it sends; tests hand datagrams to the endpoint directly. */
function silentSocket(): DatagramSocket {
  const stats = emptyDatagramStats()
  return {
    local: { host: '127.0.0.1', port: 8090 },
    stats,
    send: () => {},
    onMessage: () => () => {},
    close: () => Promise.resolve(),
  }
}

describe('Community signature batches', () => {
  const burst = async (signatureBatch?: number) => {
    const endpoint = new Ipv8Endpoint({ socket: silentSocket() }, { rateLimit: false })
    const community = new HelloCommunity(
      { endpoint, key: PrivateKey.generate() },
      {
        strategies: () => [],
        bootstrap: { publicNetwork: false },
        ...(signatureBatch !== undefined && { signatureBatch }),
      },
    )
    await community.start()
    const sender = PrivateKey.generate()
    const packets = Array.from({ length: 20 }, (_, i) =>
      signedPacket(community.prefix, Hello, { text: `${i}` }, sender, BigInt(i + 1)),
    )
    const forged = packets[7] as Buffer
    forged[forged.length - 3] = (forged[forged.length - 3] as number) ^ 1
    for (const packet of packets) endpoint.receive(packet, { host: '127.0.0.2', port: 8090 })
    return { endpoint, community }
  }
  const expected = Array.from({ length: 20 }, (_, i) => `${i}`).filter((t) => t !== '7')

  it('verifies a burst as one batch: the bad signature is dropped and counted, its neighbours handled in order', async () => {
    const { community } = await burst()
    // the first message of the burst is handled at once, the others wait for their batch
    expect(community.received.length).toBe(1)
    await vi.waitFor(() => expect(community.received.length).toBe(19))
    expect(community.received.map((m) => m.text)).toEqual(expected)
    expect(community.statistics.dropped.badSignature).toBe(1)
    expect(community.statistics.dropped.malformed).toBe(0)
    expect(community.statistics.messages.get(Hello.msgId)?.packetsIn).toBe(20)
    await community.stop()
  })

  it('handles the queued signed messages before a later unsigned one, and on stop', async () => {
    const { endpoint, community } = await burst()
    const received = community.received.length
    expect(received).toBe(1)
    // an unknown message id from the same burst flushes the queue first
    endpoint.receive(Buffer.concat([community.prefix, Buffer.from([77])]), { host: '127.0.0.2', port: 8090 })
    expect(community.received.map((m) => m.text)).toEqual(expected)
    expect(community.statistics.dropped).toMatchObject({ badSignature: 1, unknownMessage: 1 })
    await community.stop()
  })

  it('counts a bad signature and an undecodable payload found after the batch as rejected at the endpoint', async () => {
    const { endpoint, community } = await burst()
    // only the first message of the burst was judged while the endpoint waited
    expect(endpoint.stats.drops.rejected).toBe(0)
    await vi.waitFor(() => expect(community.received.length).toBe(19))
    expect(endpoint.stats.drops.rejected).toBe(1)
    expect(endpoint.stats.total.packetsDropped).toBe(1)
    expect(endpoint.countersOf(community.prefix)?.packetsDropped).toBe(1)
    // a validly signed message whose payload is not a Hello, in a later burst of the same sender
    const sender = PrivateKey.generate()
    const notHello = payload(Hello.msgId, { n: 'B' })
    const from = { host: '127.0.0.3', port: 8090 }
    for (let i = 0; i < 4; i++) {
      const packet =
        i === 2
          ? signedPacket(community.prefix, notHello, { n: 5 }, sender, 100n + BigInt(i))
          : signedPacket(community.prefix, Hello, { text: `late ${i}` }, sender, 100n + BigInt(i))
      endpoint.receive(packet, from)
    }
    await vi.waitFor(() => expect(community.received.length).toBe(22))
    expect(community.statistics.dropped).toMatchObject({ badSignature: 1, malformed: 1 })
    expect(endpoint.stats.drops.rejected).toBe(2)
    expect(endpoint.countersOf(community.prefix)?.packetsDropped).toBe(2)
    await community.stop()
  })

  it('verifies each message as it arrives with a batch size of 1', async () => {
    const { endpoint, community } = await burst(1)
    expect(community.received.map((m) => m.text)).toEqual(expected)
    expect(community.statistics.dropped.badSignature).toBe(1)
    expect(endpoint.stats.drops.rejected).toBe(1)
    await community.stop()
  })
})
