import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { configureLogging } from '../../src/common/index.js'
import { e2eAddress, HiddenTunnelCommunity } from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { createTorrent } from '../../src/metainfo/index.js'
import { udpTransport } from '../../src/net/index.js'
import { startEngine, type TestEngine } from '../support/engine.js'
import { startUdpTracker } from '../support/tracker-servers.js'
import { until } from '../support/until.js'

// IPv8 nodes on 127.0.0.230–237: 0 bootstraps and relays, 1–4 may be introduction and rendezvous points, 5 relays,
// 6 carries the seeder's circuits and 7 the downloader's. The seeder's engine listens on .238, the downloader's on
// .239 (their direct stacks, which must stay silent). The torrent names a UDP tracker on .240, reachable through
// the exits, that only ever knows the downloader while it downloads; there is no DHT. The hidden swarm is the only
// way the two can meet.
const ipv8Host = (i: number): string => `127.0.0.${230 + i}`
const NODES = 8
const EXITS = [1, 2, 3, 4]
const SEEDER = 6
const DOWNLOADER = 7
const SEEDER_ENGINE_HOST = '127.0.0.238'
const DOWNLOADER_ENGINE_HOST = '127.0.0.239'
const TRACKER_HOST = '127.0.0.240'
/** A plain (direct, hops 0) seeder of the same torrent, found through the tracker via the exits. */
const DIRECT_SEEDER_HOST = '127.0.0.241'

configureLogging({ level: 'silent' })

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined)
})

async function engineOn(
  tmp: string,
  name: string,
  host: string,
  community: HiddenTunnelCommunity | undefined,
  settings: Record<string, Record<string, unknown>> = {},
): Promise<TestEngine> {
  const stateDir = path.join(tmp, name)
  await fsp.mkdir(stateDir, { recursive: true })
  const node = await startEngine({ stateDir, host, tunnels: () => community, settings })
  cleanup.push(() => node.stop())
  return node
}

/** The tunnel nodes, once the seeder's and the downloader's know every exit. */
async function tunnelNetwork(): Promise<OverlayTestNetwork<HiddenTunnelCommunity>> {
  const net = await OverlayTestNetwork.create(
    NODES,
    (deps, i, bootstrap) =>
      new HiddenTunnelCommunity(deps, {
        walkIntervalMs: 100,
        bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
        tunnel: { exit: EXITS.includes(i), minCircuits: 1, maxCircuits: 4 },
        exitBindHost: ipv8Host(i),
      }),
    { transport: udpTransport, hostOf: ipv8Host },
  )
  cleanup.push(() => net.stopAll())
  await net.startAll()
  await until(
    () =>
      net.node(SEEDER).community.getCandidates(2).length === EXITS.length &&
      net.node(DOWNLOADER).community.getCandidates(2).length === EXITS.length,
    60_000,
    'tunnel peers to meet',
  )
  return net
}

describe('a hidden-service download between two engines', () => {
  it('completes through introduction and rendezvous points, and neither side learns the other address', async () => {
    const tmp = await fsp.mkdtemp(path.join(tmpdir(), 'hidden-download-'))
    cleanup.push(() => fsp.rm(tmp, { recursive: true, force: true }))
    const net = await tunnelNetwork()
    const seederTunnels = net.node(SEEDER).community
    const downloaderTunnels = net.node(DOWNLOADER).community

    // 1.5 MiB in 256 KiB pieces, seeded from its own folder
    const seedDir = path.join(tmp, 'seed')
    await fsp.mkdir(seedDir, { recursive: true })
    const data = randomBytes(1536 * 1024 + 777)
    await fsp.writeFile(path.join(seedDir, 'payload.bin'), data)
    const tracker = await startUdpTracker(TRACKER_HOST, '::1')
    cleanup.push(() => tracker.stop())
    const { torrent } = await createTorrent(path.join(seedDir, 'payload.bin'), {
      pieceLength: 262_144,
      trackers: [`udp://${TRACKER_HOST}:${tracker.port}/announce`],
    })

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

    const downloadDir = path.join(tmp, 'download')
    await downloader.engine.add({
      source: { kind: 'torrent', torrent },
      destination: downloadDir,
      hops: 1,
      safeSeeding: true,
    })
    const handle = downloader.engine.get(seeded.infoHash)!

    // Every peer address either side ever listed, sampled until the download completes.
    const downloaderSaw = new Set<string>()
    const seederSaw = new Set<string>()
    await until(
      () => {
        for (const p of handle.peers()) downloaderSaw.add(`${p.ip}:${p.port}`)
        for (const p of seederHandle.peers()) seederSaw.add(`${p.ip}:${p.port}`)
        return handle.status().state === 'DLSTATUS_SEEDING'
      },
      240_000,
      'the hidden download to complete',
    )
    expect((await fsp.readFile(path.join(downloadDir, 'payload.bin'))).equals(data)).toBe(true)

    // The downloader's peers were end-to-end circuits (stand-in addresses of its rendezvous circuits), and so
    // were the seeder's: never the other engine's or the other IPv8 node's host.
    const ownRendezvous = (community: HiddenTunnelCommunity, seen: Set<string>): void => {
      expect(seen.size).toBeGreaterThan(0)
      const hosts = new Set([...seen].map((key) => key.slice(0, key.lastIndexOf(':'))))
      for (const key of seen) expect(key.endsWith(':1024')).toBe(true)
      for (const h of [SEEDER_ENGINE_HOST, DOWNLOADER_ENGINE_HOST, ipv8Host(SEEDER), ipv8Host(DOWNLOADER)])
        expect(hosts.has(h)).toBe(false)
      const rendezvousHosts = [...community.circuits.values()]
        .filter((c) => c.purpose === 'rp-downloader' || c.purpose === 'rp-seeder')
        .map((c) => e2eAddress(c.circuitId).host)
      expect(rendezvousHosts.some((h) => hosts.has(h))).toBe(true)
    }
    ownRendezvous(downloaderTunnels, downloaderSaw)
    ownRendezvous(seederTunnels, seederSaw)

    // No circuit of either side runs through the other, or starts at the other's address.
    const seederKey = net.node(SEEDER).key.publicKey
    const downloaderKey = net.node(DOWNLOADER).key.publicKey
    for (const c of seederTunnels.circuits.values())
      expect(c.hops.some((h) => h.publicKey.equals(downloaderKey))).toBe(false)
    for (const c of downloaderTunnels.circuits.values())
      expect(c.hops.some((h) => h.publicKey.equals(seederKey))).toBe(false)
    for (const c of [...seederTunnels.circuits.values(), ...downloaderTunnels.circuits.values()])
      expect([ipv8Host(SEEDER), ipv8Host(DOWNLOADER)]).not.toContain(c.hops[0]?.address?.host)

    // The seeder, complete from the start with safe seeding, sent nothing through an exit: no announce to the
    // torrent's tracker, no peer. The downloader announced through an exit while it downloaded (the tracker saw
    // only exits), but never a completion. Nothing went through the direct stacks of the engines.
    expect(seeder.engine.anonymous(1).socket.stats.packetsSent).toBe(0)
    const seederIds = [seeder.engine.peerId, seeder.engine.anonymous(1).peerId].map((id) =>
      id.toString('hex'),
    )
    expect(tracker.announces.filter((a) => seederIds.includes(a.peerId))).toEqual([])
    const downloaderId = downloader.engine.anonymous(1).peerId.toString('hex')
    for (const a of tracker.announces) {
      expect(a.peerId).toBe(downloaderId)
      expect(a.event).not.toBe('complete')
      expect(EXITS.map(ipv8Host)).toContain(a.from.slice(0, a.from.lastIndexOf(':')))
    }
    expect(seeder.engine.directTraffic()).toEqual({ tcpDials: 0, udpPacketsSent: 0 })
    expect(downloader.engine.directTraffic()).toEqual({ tcpDials: 0, udpPacketsSent: 0 })

    // With safe seeding the finished download now seeds as a hidden service itself, through an introduction point.
    await until(
      () => downloaderTunnels.circuitInfos().some((c) => c.type === 'ip-seeder' && c.state === 'ready'),
      60_000,
      'the finished download to keep an introduction point',
    )
    for (const n of net.nodes) expect(n.community.statistics.dropped.handlerError).toBe(0)
  }, 420_000)

  it('also takes peers through exits while downloading, and with safe seeding leaves them once finished', async () => {
    const tmp = await fsp.mkdtemp(path.join(tmpdir(), 'hidden-download-'))
    cleanup.push(() => fsp.rm(tmp, { recursive: true, force: true }))
    const net = await tunnelNetwork()
    const seedDir = path.join(tmp, 'seed')
    await fsp.mkdir(seedDir, { recursive: true })
    const data = randomBytes(4 * 1024 * 1024 + 321)
    await fsp.writeFile(path.join(seedDir, 'payload.bin'), data)
    const tracker = await startUdpTracker(TRACKER_HOST, '::1')
    cleanup.push(() => tracker.stop())
    const { torrent } = await createTorrent(path.join(seedDir, 'payload.bin'), {
      pieceLength: 262_144,
      trackers: [`udp://${TRACKER_HOST}:${tracker.port}/announce`],
    })
    const add = (node: TestEngine, hops: number, destination: string) =>
      node.engine.add({ source: { kind: 'torrent', torrent }, destination, hops, safeSeeding: hops > 0 })

    // the hidden seeder, and a direct one on its own address that uploads slowly (256 KiB/s), so the download
    // meets both before it completes
    const hiddenSeeder = await engineOn(tmp, 'hidden', SEEDER_ENGINE_HOST, net.node(SEEDER).community)
    const directSeeder = await engineOn(tmp, 'direct', DIRECT_SEEDER_HOST, undefined, {
      libtorrent: { max_upload_rate: 262_144 },
    })
    const { infoHash } = await add(hiddenSeeder, 1, seedDir)
    await add(directSeeder, 0, seedDir)
    const direct = directSeeder.engine.get(infoHash)!
    await until(
      () =>
        hiddenSeeder.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING' &&
        direct.status().state === 'DLSTATUS_SEEDING' &&
        tracker.announces.some((a) => a.from.startsWith(`${DIRECT_SEEDER_HOST}:`)),
      60_000,
      'both seeders to seed and the direct one to announce',
    )

    const downloader = await engineOn(
      tmp,
      'downloader',
      DOWNLOADER_ENGINE_HOST,
      net.node(DOWNLOADER).community,
    )
    const downloadDir = path.join(tmp, 'download')
    await add(downloader, 1, downloadDir)
    const handle = downloader.engine.get(infoHash)!
    const saw = new Set<string>()
    const directSaw = new Set<string>()
    await until(
      () => {
        for (const p of handle.peers()) saw.add(`${p.ip}:${p.port}`)
        for (const p of direct.peers()) directSaw.add(p.ip)
        return handle.status().state === 'DLSTATUS_SEEDING'
      },
      240_000,
      'the download to complete',
    )
    expect((await fsp.readFile(path.join(downloadDir, 'payload.bin'))).equals(data)).toBe(true)
    // it met the direct seeder through an exit and the hidden one through an end-to-end circuit
    expect([...saw].some((key) => key === `${DIRECT_SEEDER_HOST}:${directSeeder.engine.port}`)).toBe(true)
    expect([...saw].some((key) => key.endsWith(':1024'))).toBe(true)

    // finished with safe seeding: its peers through exits are gone, on both ends, and it no longer announces
    await until(
      () =>
        handle.peers().every((p) => p.port === 1024) &&
        !direct.peers().some((p) => EXITS.map(ipv8Host).includes(p.ip)),
      60_000,
      'the peers through exits to be closed',
    )
    expect(tracker.announces.filter((a) => a.event === 'complete')).toEqual([])
    // the direct seeder only ever saw exits, never the downloader's addresses
    for (const p of direct.peers()) directSaw.add(p.ip)
    expect(directSaw.size).toBeGreaterThan(0)
    for (const ip of directSaw) expect(EXITS.map(ipv8Host)).toContain(ip)
    expect(downloader.engine.directTraffic()).toEqual({ tcpDials: 0, udpPacketsSent: 0 })
  }, 420_000)
})
