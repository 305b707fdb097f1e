import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { configureLogging } from '../../src/common/index.js'
import {
  DHTDiscoveryCommunity,
  DhtIntroPointProvider,
  HiddenTunnelCommunity,
  PEER_FLAG_EXIT_BT,
} from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { createTorrent } from '../../src/metainfo/index.js'
import { type SocketAddress, udpTransport } from '../../src/net/index.js'
import { startEngine, type TestEngine } from '../support/engine.js'
import { until } from '../support/until.js'

// Two tunnel networks that never meet, each on its own loopback addresses:
//   the seeder's, 127.0.0.180–184: 0 bootstraps and relays, 1 and 2 are exits (its introduction and rendezvous
//   points), 3 relays, 4 carries the seeder's circuits;
//   the downloader's, 127.0.0.185–189: 0 bootstraps and relays, 1 and 2 are exits, 3 relays, 4 carries the
//   downloader's circuits.
// All ten run the IPv8 DHT, bootstrapped at the seeder side's node 0. The torrent names no tracker and the
// engines run no BitTorrent DHT: the downloader can only learn the seeder's introduction points from the IPv8
// DHT, through the exits of its own circuits.
const seederSide = (i: number): string => `127.0.0.${180 + i}`
const downloaderSide = (i: number): string => `127.0.0.${185 + i}`
const EXITS = [1, 2]
const CIRCUITS_NODE = 4
const SEEDER_ENGINE_HOST = '127.0.0.190'
const DOWNLOADER_ENGINE_HOST = '127.0.0.191'

configureLogging({ level: 'silent' })

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined)
})

interface Side {
  readonly net: OverlayTestNetwork<HiddenTunnelCommunity>
  readonly dhts: DHTDiscoveryCommunity[]
}

/** One tunnel network of five nodes, each also in the shared DHT (bootstrapped at `dhtBootstrap`, or its own node 0). */
async function side(hostOf: (i: number) => string, dhtBootstrap: SocketAddress | undefined): Promise<Side> {
  const dhts: DHTDiscoveryCommunity[] = []
  const net = await OverlayTestNetwork.create(
    5,
    (deps, i, bootstrap) => {
      const dht = new DHTDiscoveryCommunity(deps, {
        bootstrap: {
          publicNetwork: false,
          addresses: dhtBootstrap !== undefined ? [dhtBootstrap] : bootstrap,
          intervalMs: 1_000,
        },
      })
      dhts[i] = dht
      return new HiddenTunnelCommunity(deps, {
        walkIntervalMs: 100,
        bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
        tunnel: { exit: EXITS.includes(i), minCircuits: 1, maxCircuits: 4 },
        exitBindHost: hostOf(i),
        introPointDirectory: new DhtIntroPointProvider(dht),
      })
    },
    { transport: udpTransport, hostOf },
  )
  cleanup.push(async () => {
    for (const dht of dhts) await dht.stop()
    await net.stopAll()
  })
  await net.startAll()
  for (const dht of dhts) await dht.start()
  return { net, dhts }
}

async function engineOn(
  tmp: string,
  name: string,
  host: string,
  community: HiddenTunnelCommunity,
): Promise<TestEngine> {
  const stateDir = path.join(tmp, name)
  await fsp.mkdir(stateDir, { recursive: true })
  const node = await startEngine({ stateDir, host, tunnels: () => community })
  cleanup.push(() => node.stop())
  return node
}

describe('a hidden-service download whose introduction points are found only in the IPv8 DHT', () => {
  it('completes, and the downloader never met an introduction point but through its exits and the DHT', async () => {
    const tmp = await fsp.mkdtemp(path.join(tmpdir(), 'hidden-dht-download-'))
    cleanup.push(() => fsp.rm(tmp, { recursive: true, force: true }))
    const a = await side(seederSide, undefined)
    const b = await side(downloaderSide, a.net.node(0).socket.local)
    const seederTunnels = a.net.node(CIRCUITS_NODE).community
    const downloaderTunnels = b.net.node(CIRCUITS_NODE).community
    const allDhts = [...a.dhts, ...b.dhts]
    await until(
      () =>
        seederTunnels.getCandidates(PEER_FLAG_EXIT_BT).length === EXITS.length &&
        downloaderTunnels.getCandidates(PEER_FLAG_EXIT_BT).length === EXITS.length &&
        allDhts.every((d) => (d.routingTables[0]?.size ?? 0) >= 4),
      90_000,
      'the tunnel peers and the DHT to meet',
    )

    // 1 MiB in 256 KiB pieces, no tracker
    const seedDir = path.join(tmp, 'seed')
    await fsp.mkdir(seedDir, { recursive: true })
    const data = randomBytes(1024 * 1024 + 333)
    await fsp.writeFile(path.join(seedDir, 'payload.bin'), data)
    const { torrent } = await createTorrent(path.join(seedDir, 'payload.bin'), { pieceLength: 262_144 })

    const seeder = await engineOn(tmp, 'seeder', SEEDER_ENGINE_HOST, seederTunnels)
    const downloader = await engineOn(tmp, 'downloader', DOWNLOADER_ENGINE_HOST, downloaderTunnels)
    const seeded = await seeder.engine.add({
      source: { kind: 'torrent', torrent },
      destination: seedDir,
      hops: 1,
      safeSeeding: true,
    })
    const seederHandle = seeder.engine.get(seeded.infoHash)!
    await until(
      () => seederHandle.status().state === 'DLSTATUS_SEEDING',
      60_000,
      'the seeder to check its data',
    )
    // its introduction points are exits of its own side, and each announced itself in the DHT
    const introHosts = EXITS.map(seederSide)
    await until(
      () => EXITS.some((i) => a.net.node(i).community.pexCommunities.length > 0),
      90_000,
      'an introduction point',
    )
    const storesAtIntroPoints = (): number =>
      EXITS.reduce((n, i) => n + (a.dhts[i]?.statistics.messages.get(3)?.packetsOut ?? 0), 0)
    await until(() => storesAtIntroPoints() > 0, 60_000, 'an introduction point to store itself in the DHT')

    const findsAtDownloaderExits = (): number =>
      EXITS.reduce((n, i) => n + (b.dhts[i]?.statistics.messages.get(5)?.packetsOut ?? 0), 0)
    const findsBefore = findsAtDownloaderExits()
    const downloadDir = path.join(tmp, 'download')
    await downloader.engine.add({
      source: { kind: 'torrent', torrent },
      destination: downloadDir,
      hops: 1,
      safeSeeding: true,
    })
    const handle = downloader.engine.get(seeded.infoHash)!
    const saw = new Set<string>()
    await until(
      () => {
        for (const p of handle.peers()) saw.add(`${p.ip}:${p.port}`)
        return handle.status().state === 'DLSTATUS_SEEDING'
      },
      240_000,
      'the hidden download to complete',
    )
    expect((await fsp.readFile(path.join(downloadDir, 'payload.bin'))).equals(data)).toBe(true)
    // its peers were end-to-end circuits only
    expect(saw.size).toBeGreaterThan(0)
    for (const key of saw) expect(key.endsWith(':1024')).toBe(true)

    // The downloader's side never knew the seeder's side in the tunnel community: no exit it could ask directly
    // was an introduction point. Its own exits looked the swarm up in the DHT.
    const downloaderHosts = [0, 1, 2, 3, 4].map(downloaderSide)
    for (const n of b.net.nodes)
      for (const peer of n.community.peers) expect(downloaderHosts).toContain(peer.address.host)
    for (const host of introHosts)
      expect(downloaderTunnels.getCandidates(PEER_FLAG_EXIT_BT).map((p) => p.address.host)).not.toContain(
        host,
      )
    expect(findsAtDownloaderExits()).toBeGreaterThan(findsBefore)
    // neither side's circuits run through the other's circuit node
    const seederKey = a.net.node(CIRCUITS_NODE).key.publicKey
    const downloaderKey = b.net.node(CIRCUITS_NODE).key.publicKey
    for (const c of seederTunnels.circuits.values())
      expect(c.hops.some((h) => h.publicKey.equals(downloaderKey))).toBe(false)
    for (const c of downloaderTunnels.circuits.values())
      expect(c.hops.some((h) => h.publicKey.equals(seederKey))).toBe(false)
    expect(seeder.engine.directTraffic()).toEqual({ tcpDials: 0, udpPacketsSent: 0 })
    expect(downloader.engine.directTraffic()).toEqual({ tcpDials: 0, udpPacketsSent: 0 })
    for (const n of [...a.net.nodes, ...b.net.nodes])
      expect(n.community.statistics.dropped.handlerError).toBe(0)
    for (const d of allDhts) expect(d.statistics.dropped.handlerError).toBe(0)
  }, 480_000)
})
