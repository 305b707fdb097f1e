import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { MemoryNetwork, type SocketAddress } from '../../net/index.js'
import type { Community } from '../community/index.js'
import { DHTDiscoveryCommunity, DhtIntroPointProvider } from '../dht/index.js'
import { PrivateKey } from '../keys/index.js'
import { NO_ADDRESS } from '../serialization/index.js'
import { manualTime, OverlayTestNetwork } from '../testing/harness.js'
import { type HiddenSession, HiddenTunnelCommunity, hiddenLookupHash } from './hidden-services.js'
import { PexCommunity, pexCommunityId } from './pex.js'
import { PEER_FLAG_EXIT_BT, PEER_SOURCE_DHT, PEER_SOURCE_PEX } from './types.js'

const PORT = 8090
const hostOf = (i: number): string => `127.0.0.${i + 1}`
const at = (i: number): SocketAddress => ({ host: hostOf(i), port: PORT })

const stops: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
})

describe('PexCommunity', () => {
  it('derives its community id from the info-hash plus one', () => {
    expect(pexCommunityId(Buffer.alloc(20)).toString('hex')).toBe(`${'00'.repeat(19)}01`)
    expect(pexCommunityId(Buffer.from(`${'00'.repeat(19)}ff`, 'hex')).toString('hex')).toBe(
      `${'00'.repeat(18)}0100`,
    )
  })

  it('lets the introduction points of a swarm learn each other from their introductions', async () => {
    const clock = new ManualClock()
    const memory = new MemoryNetwork({ clock, latencyMs: 5, seed: 5 })
    const infoHash = hiddenLookupHash(Buffer.alloc(20, 3))
    const net = await OverlayTestNetwork.create(
      3,
      (deps, _i, bootstrap) =>
        new PexCommunity(deps, infoHash, { bootstrap: { publicNetwork: false, addresses: bootstrap } }),
      { transport: memory, clock },
    )
    stops.push(() => net.stopAll())
    const t = manualTime(clock)
    const keys = [0, 1, 2].map(() => PrivateKey.generate().publicKey.toBin())
    for (const [i, n] of net.nodes.entries()) n.community.startAnnounce(keys[i] as Buffer)
    await net.startAll()
    for (let i = 0; i < 120; i++) {
      await t.run(1_000)
      if (net.nodes.every((n) => n.community.introPoints().length === 3)) break
    }
    for (const n of net.nodes) {
      const known = n.community.introPoints()
      expect(known.map((ip) => ip.seederPk.toString('hex')).sort()).toEqual(
        keys.map((k) => k.toString('hex')).sort(),
      )
      for (const ip of known) {
        expect(ip.source).toBe(PEER_SOURCE_PEX)
        const owner = net.nodes.find((m) => m.key.publicKey.toBin().equals(ip.key))
        expect(owner?.community.introPoints().some((o) => o.seederPk.equals(ip.seederPk))).toBe(true)
      }
    }
    // an introduction whose extra bytes are not a key list is counted, not fatal
    const pex = net.node(0).community
    ;(pex as unknown as { onIntroductionExtraBytes(p: unknown, b: Buffer): void }).onIntroductionExtraBytes(
      pex.peers[0],
      Buffer.from([5, 0, 9]),
    )
    expect(pex.counters.malformed).toBe(1)
    // a swarm we stop introducing for is done
    pex.stopAnnounce(keys[0] as Buffer)
    expect(pex.done).toBe(true)
    // and others forget us 5 minutes after they last heard of us
    await t.run(400_000)
    expect(
      net
        .node(1)
        .community.introPoints()
        .some((ip) => ip.seederPk.equals(keys[0] as Buffer)),
    ).toBe(false)
  }, 120_000)
})

describe('hidden services through the DHT (in-memory network)', () => {
  // Two tunnel networks that never meet: nodes 0–4 (0 bootstraps them, 1 and 2 are exits, 3 relays, 4 seeds) and
  // nodes 5–9 (5 bootstraps them, 6 and 7 are exits, 8 relays, 9 downloads). All ten share one DHT (bootstrapped
  // at node 0). The downloader can only learn the seeder's introduction points from the DHT, through its exits.
  const SEEDER = 4
  const DOWNLOADER = 9
  const EXITS = [1, 2, 6, 7]
  const sideA = (i: number): boolean => i < 5

  it('finds introduction points only through the DHT and meets the seeder', async () => {
    const clock = new ManualClock()
    const memory = new MemoryNetwork({ clock, latencyMs: 5, seed: 13 })
    const dhts: DHTDiscoveryCommunity[] = []
    const extra: Community[] = []
    const net = await OverlayTestNetwork.create(
      10,
      (deps, i) => {
        const dht = new DHTDiscoveryCommunity(deps, {
          bootstrap: { publicNetwork: false, addresses: i === 0 ? [] : [at(0)] },
        })
        dhts[i] = dht
        extra.push(dht)
        return new HiddenTunnelCommunity(
          { ...deps, exitTransport: memory },
          {
            bootstrap: { publicNetwork: false, addresses: i === 0 || i === 5 ? [] : [at(sideA(i) ? 0 : 5)] },
            tunnel: { exit: EXITS.includes(i), removeTunnelDelayMs: 0 },
            exitBindHost: hostOf(i),
            introPointDirectory: new DhtIntroPointProvider(dht),
          },
        )
      },
      { transport: memory, clock, port: PORT },
    )
    stops.push(async () => {
      for (const c of extra) await c.stop()
      await net.stopAll()
    })
    const t = manualTime(clock)
    await net.startAll()
    for (const dht of dhts) await dht.start()
    const seeder = net.node(SEEDER).community
    const downloader = net.node(DOWNLOADER).community
    for (let i = 0; i < 60; i++) {
      await t.run(1_000)
      if (
        seeder.getCandidates(PEER_FLAG_EXIT_BT).length === 2 &&
        downloader.getCandidates(PEER_FLAG_EXIT_BT).length === 2 &&
        dhts.every((d) => (d.routingTables[0]?.size ?? 0) >= 5)
      )
        break
    }
    // the two tunnel networks never met
    const knownTo = (c: HiddenTunnelCommunity): string[] => c.peers.map((p) => p.address.host)
    for (const i of [0, 1, 2, 3, 4]) expect(knownTo(downloader)).not.toContain(hostOf(i))
    for (const i of [5, 6, 7, 8, 9]) expect(knownTo(seeder)).not.toContain(hostOf(i))

    const infoHash = hiddenLookupHash(Buffer.alloc(20, 0x5e))
    const seederSessions: HiddenSession[] = []
    const seeding = seeder.seedHidden(infoHash, {
      hops: 1,
      introPoints: 2,
      onSession: (session) => seederSessions.push(session),
    })
    for (let i = 0; i < 300 && seeding.introPoints().length < 2; i++) await t.run(100)
    expect(seeding.introPoints()).toHaveLength(2)
    // each introduction point runs the swarm's PEX overlay and announced itself in the DHT
    const introNodes = [1, 2].filter((i) => net.node(i).community.pexCommunities.length === 1)
    expect(introNodes).toEqual([1, 2])
    await t.run(5_000)
    const stored = await t.settle(dhts[8]?.findValues(infoHash) as Promise<unknown[]>)
    expect(stored.length).toBe(2)

    await t.settle(downloader.circuit(1, { timeoutMs: 30_000 }))
    const findsSent = (): number =>
      [6, 7].reduce((n, i) => n + (dhts[i]?.statistics.messages.get(5)?.packetsOut ?? 0), 0)
    const findsBefore = findsSent()
    const intros = await t.settle(downloader.lookupHidden(infoHash, { hops: 1 }))
    expect(intros.length).toBeGreaterThan(0)
    for (const intro of intros) {
      expect(intro.source).toBe(PEER_SOURCE_DHT)
      expect([hostOf(1), hostOf(2)]).toContain(intro.address.host)
      expect(intro.seederPk.equals(seeding.seederPublicKey)).toBe(true)
    }
    // the downloader's own exits looked the swarm up in the DHT
    expect(findsSent()).toBeGreaterThan(findsBefore)

    const intro = intros[0] as (typeof intros)[number]
    const session = await t.settle(downloader.connectHidden(infoHash, intro, { hops: 1 }))
    for (let i = 0; i < 50 && seederSessions.length === 0; i++) await t.run(100)
    expect(seederSessions).toHaveLength(1)
    const received: string[] = []
    const seedSocket = (seederSessions[0] as HiddenSession).socket()
    seedSocket.onMessage((data) => received.push(data.toString()))
    session.socket().send(Buffer.from('through the DHT'), NO_ADDRESS)
    for (let i = 0; i < 50 && received.length === 0; i++) await t.run(100)
    expect(received).toEqual(['through the DHT'])

    // asked again, an introduction point answers from PEX: it knows the other one
    const viaPex = await t.settle(downloader.lookupHidden(infoHash, { hops: 1, introPoints: [intro] }))
    expect(viaPex.length).toBeGreaterThan(0)
    // once the seeder stops, the introduction points leave the swarm's PEX overlay
    seeding.stop()
    for (let i = 0; i < 100 && net.node(1).community.pexCommunities.length > 0; i++) await t.run(100)
    expect(net.node(1).community.pexCommunities).toHaveLength(0)
    expect(net.node(2).community.pexCommunities).toHaveLength(0)
    for (const n of net.nodes) expect(n.community.statistics.dropped.handlerError).toBe(0)
    for (const d of dhts) expect(d.statistics.dropped.handlerError).toBe(0)
  }, 180_000)
})
