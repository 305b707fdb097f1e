import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildApiServer } from '../../src/api/index.js'
import { BitTorrentEngine, EngineError } from '../../src/bittorrent/engine/index.js'
import { UdpTrackerClient } from '../../src/bittorrent/tracker/index.js'
import { configureLogging } from '../../src/common/index.js'
import { type Circuit, TunnelCommunity } from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { formatMagnet } from '../../src/metainfo/index.js'
import { udpTransport } from '../../src/net/index.js'
import { Session } from '../../src/session/index.js'
import { startEngine, type TestEngine } from '../support/engine.js'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'
import { startUdpTracker } from '../support/tracker-servers.js'
import { until } from '../support/until.js'

// Our IPv8 nodes: the downloader's tunnel community on .211, relays .212–.215, exits .216 and .217. The
// downloader's BitTorrent engine listens on .218 (its direct stack, which anonymous downloads must never use),
// the libtorrent seeder on .219, the UDP tracker on .220.
const ipv8Host = (i: number): string => `127.0.0.${211 + i}`
const NODES = 7
const EXITS = [5, 6]
const EXIT_HOSTS = EXITS.map(ipv8Host)
const ENGINE_HOST = '127.0.0.218'
const SEEDER_HOST = '127.0.0.219'
const TRACKER_HOST = '127.0.0.220'
const DHT_SEEDER_HOST = '127.0.0.221'

configureLogging({ level: 'silent' })

// Every host name looked up in this process, with the stack that asked: only an exit (which runs in this process
// here, as it would in its own node) may resolve a tracker's name; the downloader never does.
const lookups = vi.hoisted(() => [] as { host: string; stack: string }[])
vi.mock('node:dns/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:dns/promises')>()
  const lookup = ((host: string, ...rest: unknown[]) => {
    lookups.push({ host, stack: new Error().stack ?? '' })
    return (real.lookup as (...args: unknown[]) => unknown)(host, ...rest)
  }) as typeof real.lookup
  return { ...real, lookup, default: { ...real, lookup } }
})

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined)
})

/** Tunnel nodes over real UDP, each on its own loopback address; the last two are exits. */
async function startTunnels(): Promise<OverlayTestNetwork<TunnelCommunity>> {
  const net = await OverlayTestNetwork.create(
    NODES,
    (deps, i, bootstrap) =>
      new TunnelCommunity(deps, {
        walkIntervalMs: 100,
        bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
        tunnel: { exit: EXITS.includes(i), minCircuits: 2, maxCircuits: 4 },
        exitBindHost: ipv8Host(i),
      }),
    { transport: udpTransport, hostOf: ipv8Host },
  )
  cleanup.push(() => net.stopAll())
  await net.startAll()
  const client = net.node(0).community
  await until(
    () => client.getCandidates().length >= NODES - 1 && net.minPeers >= 3,
    60_000,
    'tunnel peers to meet',
  )
  return net
}

interface Shared {
  torrent: Buffer
  infoHash: string
  data: Buffer
  seedDir: string
  seeder: LibtorrentPeer
}

/** A libtorrent seeder of one random file, listening on its own address (uTP and TCP). */
async function startSeeder(tmp: string, size: number): Promise<Shared> {
  const seedDir = path.join(tmp, 'seed')
  const files = await writeRandomFiles(seedDir, { 'payload.bin': size })
  const made = await createTorrent({
    path: path.join(seedDir, 'payload.bin'),
    out: path.join(tmp, 'payload.torrent'),
    pieceLength: 262_144,
  })
  const seeder = await LibtorrentPeer.start({ host: SEEDER_HOST })
  cleanup.push(() => seeder.stop())
  await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
  await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)
  return {
    torrent: await fsp.readFile(made.torrentPath),
    infoHash: made.infoHash,
    data: files.get('payload.bin')!,
    seedDir,
    seeder,
  }
}

/** Puts the seeder's address into a UDP tracker: an announce for its torrent, sent from the seeder's own host. */
async function announceSeeder(shared: Shared, url: string): Promise<void> {
  const socket = await udpTransport.bind({ host: SEEDER_HOST, port: 0 })
  cleanup.push(() => socket.close())
  const announcer = new UdpTrackerClient({ socket })
  cleanup.push(async () => announcer.close())
  await announcer.announce(url, {
    infoHash: Buffer.from(shared.infoHash, 'hex'),
    peerId: Buffer.from('-LT0000-seederseeder'),
    port: shared.seeder.port,
    uploaded: 0,
    downloaded: 0,
    left: 0,
    event: 'started',
  })
}

/**
 * Every address the seeder has seen a peer at: its peer list sampled until `stop`, and the addresses in its peer
 * connect and disconnect alerts, which also catch a peer that came and went between two samples.
 */
function watchSeederPeers(seeder: LibtorrentPeer): { hosts: Set<string>; stop: () => Promise<void> } {
  const hosts = new Set<string>()
  const firstAlert = seeder.alerts.length
  const fromAlerts = (): void => {
    for (const alert of seeder.alerts.slice(firstAlert)) {
      if (!alert.type.startsWith('peer_')) continue
      for (const match of alert.message.matchAll(/\b(\d{1,3}(?:\.\d{1,3}){3}):\d+/g))
        hosts.add(match[1] as string)
    }
  }
  let running = true
  const loop = (async () => {
    while (running) {
      const status = await seeder.status().catch(() => undefined)
      for (const peer of status?.torrents[0]?.peers ?? []) hosts.add(peer.ip)
      fromAlerts()
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })()
  return {
    hosts,
    stop: async () => {
      running = false
      await loop
      fromAlerts()
    },
  }
}

async function engineWithTunnels(tmp: string, net: OverlayTestNetwork<TunnelCommunity>): Promise<TestEngine> {
  const stateDir = path.join(tmp, 'state')
  await fsp.mkdir(stateDir, { recursive: true })
  const node = await startEngine({ stateDir, host: ENGINE_HOST, tunnels: () => net.node(0).community })
  cleanup.push(() => node.stop())
  return node
}

async function tempDir(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'anon-lt-'))
  cleanup.push(() => fsp.rm(dir, { recursive: true, force: true }))
  return dir
}

/** What every anonymous download must show: no byte left through the direct stack, the seeder saw only exits. */
function expectOnlyExitsSeen(node: TestEngine, seen: Set<string>): void {
  expect(seen.size).toBeGreaterThan(0)
  for (const host of seen) expect(EXIT_HOSTS).toContain(host)
  expect(seen.has(ENGINE_HOST)).toBe(false)
  expect(seen.has(ipv8Host(0))).toBe(false)
  expect(node.engine.directTraffic()).toEqual({ tcpDials: 0, udpPacketsSent: 0 })
}

describe('an engine without tunnels', () => {
  it('refuses downloads with hops > 0 with a clear error, and still takes 0 hops', async () => {
    const tmp = await tempDir()
    const node = await startEngine({ stateDir: tmp, host: ENGINE_HOST })
    cleanup.push(() => node.stop())
    const magnet = `magnet:?xt=urn:btih:${'ab'.repeat(20)}`
    const err = await node.engine.add({ source: { kind: 'magnet', magnet }, hops: 1 }).catch((e) => e)
    expect(err).toBeInstanceOf(EngineError)
    expect(err.code).toBe('ANON_NOT_SUPPORTED')
    expect(node.engine.list()).toHaveLength(0)
    const added = await node.engine.add({
      source: { kind: 'magnet', magnet },
      destination: tmp,
      stopped: true,
    })
    expect(added.added).toBe(true)
  })
})

describe.skipIf(!libtorrentAvailable())(
  'anonymous downloads from a libtorrent seeder through our circuits',
  () => {
    for (const [hops, size] of [
      [1, 8 * 1024 * 1024],
      [2, 6 * 1024 * 1024],
      [3, 4 * 1024 * 1024],
    ] as const) {
      it(`downloads ${size / 1024 / 1024} MiB over ${hops}-hop circuits; the seeder sees only exits`, async () => {
        const tmp = await tempDir()
        const [net, shared] = await Promise.all([startTunnels(), startSeeder(tmp, size)])
        const node = await engineWithTunnels(tmp, net)
        const seen = watchSeederPeers(shared.seeder)
        cleanup.push(() => seen.stop())
        const out = path.join(tmp, 'out')
        const states: string[] = []
        node.engine.events.on('state', ({ state }) => states.push(state))
        // the seeder's address comes in the magnet (x.pe)
        const magnet = formatMagnet({
          infoHash: Buffer.from(shared.infoHash, 'hex'),
          trackers: [],
          webSeeds: [],
          peers: [{ host: SEEDER_HOST, port: shared.seeder.port }],
        })
        const { infoHash } = await node.engine.add({
          source: { kind: 'magnet', magnet },
          destination: out,
          hops,
          safeSeeding: true,
        })
        // no circuit of this length was wanted before: the download waits for one
        expect(node.engine.get(infoHash)?.status()).toMatchObject({ hops, state: 'DLSTATUS_CIRCUITS' })
        await until(
          () => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING',
          240_000,
          `the ${hops}-hop download`,
        )
        const got = await fsp.readFile(path.join(out, 'payload.bin'))
        expect(got.equals(shared.data)).toBe(true)
        const download = node.engine.download(infoHash)!
        expect(download.totals.hashFailures).toBe(0)
        expect(download.connections.tcp).toBe(0)
        expect(states[0]).toBe('DLSTATUS_CIRCUITS')
        // circuits of the wanted length carried it
        expect(net.node(0).community.findCircuits({ hops }).length).toBeGreaterThan(0)
        await seen.stop()
        expectOnlyExitsSeen(node, seen.hosts)
        const status = node.engine.get(infoHash)!.status()
        expect(status.trackers.find((t) => t.url === '[DHT]')?.status).toBe('Disabled')
        expect(status.trackers.find((t) => t.url === '[LSD]')?.status).toBe('Disabled')
      })
    }

    it('finishes with correct data when a relay of its circuit stops mid-download', async () => {
      const tmp = await tempDir()
      const [net, shared] = await Promise.all([startTunnels(), startSeeder(tmp, 24 * 1024 * 1024)])
      // slow enough that the relay stops while data still flows
      await shared.seeder.stop()
      const seeder = await LibtorrentPeer.start({ host: SEEDER_HOST, uploadRate: 1024 * 1024 })
      cleanup.push(() => seeder.stop())
      await seeder.addTorrent({ torrentPath: path.join(tmp, 'payload.torrent'), savePath: shared.seedDir })
      await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)
      const node = await engineWithTunnels(tmp, net)
      const seen = watchSeederPeers(seeder)
      cleanup.push(() => seen.stop())
      const out = path.join(tmp, 'out')
      const { infoHash } = await node.engine.add({
        source: { kind: 'torrent', torrent: shared.torrent },
        destination: out,
        hops: 2,
        safeSeeding: true,
      })
      node.engine.addPeers(infoHash, [{ host: SEEDER_HOST, port: seeder.port }])
      const progress = (): number => node.engine.get(infoHash)?.status().progress ?? 0
      await until(() => progress() > 0.15, 180_000, 'the download to get going')
      expect(progress()).toBeLessThan(1)
      // Stop every relay (not exit) of our 2-hop circuits: the circuit carrying the download dies for sure.
      const client = net.node(0).community
      const before = client.findCircuits({ hops: 2 })
      const used = new Set(before.flatMap((c) => c.hops.map((h) => h.publicKey.midHex)))
      const relays = net.nodes.filter(
        (n) => n.index !== 0 && !EXITS.includes(n.index) && used.has(n.key.publicKey.midHex),
      )
      expect(relays.length).toBeGreaterThan(0)
      expect(relays.length).toBeLessThanOrEqual(2)
      const stopped = new Set(relays.map((n) => n.key.publicKey.midHex))
      for (const c of before) expect(c.hops.some((h) => stopped.has(h.publicKey.midHex))).toBe(true)
      for (const relay of relays) await relay.community.stop()
      const isNew = (c: Circuit): boolean =>
        !before.includes(c) && !c.hops.some((h) => stopped.has(h.publicKey.midHex))
      await until(() => client.findCircuits({ hops: 2 }).some(isNew), 120_000, 'a new circuit')
      await until(
        () => !client.findCircuits({ hops: 2 }).some((c) => before.includes(c)),
        60_000,
        'old circuits gone',
      )
      await until(
        () => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING',
        240_000,
        'the download',
      )
      const got = await fsp.readFile(path.join(out, 'payload.bin'))
      expect(got.equals(shared.data)).toBe(true)
      expect(node.engine.download(infoHash)!.totals.hashFailures).toBe(0)
      await seen.stop()
      expectOnlyExitsSeen(node, seen.hosts)
    })

    it('finds the seeder through a UDP tracker reached over a 1-hop circuit', async () => {
      const tmp = await tempDir()
      const [net, shared] = await Promise.all([startTunnels(), startSeeder(tmp, 4 * 1024 * 1024)])
      const tracker = await startUdpTracker(TRACKER_HOST, '::1')
      cleanup.push(() => tracker.stop())
      const url = `udp://${TRACKER_HOST}:${tracker.port}/announce`
      await announceSeeder(shared, url)
      const node = await engineWithTunnels(tmp, net)
      const seen = watchSeederPeers(shared.seeder)
      cleanup.push(() => seen.stop())
      const out = path.join(tmp, 'out')
      const magnet = formatMagnet({
        infoHash: Buffer.from(shared.infoHash, 'hex'),
        trackers: [url],
        webSeeds: [],
        peers: [],
      })
      const { infoHash } = await node.engine.add({
        source: { kind: 'magnet', magnet },
        destination: out,
        hops: 1,
        safeSeeding: true,
      })
      // The tracker's state while downloading: once finished with safe seeding, the download leaves the
      // tracker and seeds as a hidden service only.
      const trackerStates = new Set<string>()
      await until(
        () => {
          const status = node.engine.get(infoHash)?.status()
          const entry = status?.trackers.find((t) => t.url === url)
          if (entry !== undefined) trackerStates.add(entry.status)
          return status?.state === 'DLSTATUS_SEEDING'
        },
        240_000,
        'the download',
      )
      const got = await fsp.readFile(path.join(out, 'payload.bin'))
      expect(got.equals(shared.data)).toBe(true)
      expect(trackerStates).toContain('Working')
      await seen.stop()
      expectOnlyExitsSeen(node, seen.hosts)
    })

    it('finds the seeder through a UDP tracker named by host name, which only the exit resolves', async () => {
      const tmp = await tempDir()
      const [net, shared] = await Promise.all([startTunnels(), startSeeder(tmp, 4 * 1024 * 1024)])
      // `localhost` resolves to 127.0.0.1 through the hosts file (the exit prefers IPv4, as py-ipv8 does)
      const tracker = await startUdpTracker('127.0.0.1', '::1')
      cleanup.push(() => tracker.stop())
      await announceSeeder(shared, `udp://127.0.0.1:${tracker.port}/announce`)
      const node = await engineWithTunnels(tmp, net)
      const seen = watchSeederPeers(shared.seeder)
      cleanup.push(() => seen.stop())
      lookups.length = 0
      const out = path.join(tmp, 'out')
      const url = `udp://localhost:${tracker.port}/announce`
      const magnet = formatMagnet({
        infoHash: Buffer.from(shared.infoHash, 'hex'),
        trackers: [url],
        webSeeds: [],
        peers: [],
      })
      const { infoHash } = await node.engine.add({
        source: { kind: 'magnet', magnet },
        destination: out,
        hops: 1,
        safeSeeding: true,
      })
      await until(
        () => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING',
        240_000,
        'the download',
      )
      const got = await fsp.readFile(path.join(out, 'payload.bin'))
      expect(got.equals(shared.data)).toBe(true)
      // Without the DHT and with no peer in the magnet, the seeder could only come from the tracker: the
      // downloader announced (event started) and got it. With safe seeding the finished download leaves the
      // tracker afterwards, for its introduction points.
      expect(
        tracker.announces.some((a) => a.event === 'start' && !a.from.startsWith(`${SEEDER_HOST}:`)),
      ).toBe(true)
      // the downloader's announces reached the tracker from an exit
      const ours = tracker.announces.filter((a) => !a.from.startsWith(`${SEEDER_HOST}:`))
      expect(ours.length).toBeGreaterThan(0)
      for (const a of ours) expect(EXIT_HOSTS).toContain(a.from.replace(/:\d+$/, ''))
      // the name was resolved, and only ever by an exit
      const named = lookups.filter((l) => l.host === 'localhost')
      expect(named.length).toBeGreaterThan(0)
      for (const l of named) expect(l.stack).toContain('systemExitLookup')
      await seen.stop()
      expectOnlyExitsSeen(node, seen.hosts)
    })

    it('previews a magnet and downloads it over REST with anon_hops=1; PATCH anon_hops=2 re-adds it, seeding through 2 hops', async () => {
      const tmp = await tempDir()
      const [net, shared] = await Promise.all([startTunnels(), startSeeder(tmp, 4 * 1024 * 1024)])
      const session = new Session({ stateDir: path.join(tmp, 'core'), publicNetwork: false })
      cleanup.push(() => session.stop())
      session.updateSettings({
        libtorrent: { dht: false },
        download_defaults: { saveas: path.join(tmp, 'out') },
      })
      session.addService(
        (deps) =>
          new BitTorrentEngine(deps, {
            listenHost: ENGINE_HOST,
            port: 0,
            tunnels: () => net.node(0).community,
          }),
      )
      const { app } = await buildApiServer(session)
      await session.start()
      const seen = watchSeederPeers(shared.seeder)
      cleanup.push(() => seen.stop())
      const magnet = formatMagnet({
        infoHash: Buffer.from(shared.infoHash, 'hex'),
        trackers: [],
        webSeeds: [],
        peers: [{ host: SEEDER_HOST, port: shared.seeder.port }],
      })
      // The metadata preview goes through circuits too: by default (number_hops 1, anonymity on) and when asked.
      const queries: Record<string, string>[] = [{ uri: magnet }, { uri: magnet, hops: '2' }]
      for (const query of queries) {
        const info = await app.inject({ method: 'GET', url: `/torrentinfo?${new URLSearchParams(query)}` })
        expect(info.statusCode).toBe(200)
        expect(info.json().metainfo.info.name).toBe('payload.bin')
      }
      const badHops = await app.inject({
        method: 'GET',
        url: `/torrentinfo?${new URLSearchParams({ uri: magnet, hops: '4' })}`,
      })
      expect(badHops.json()).toEqual({ error: 'hops must be 0, 1, 2 or 3' })
      expect(seen.hosts.has(ENGINE_HOST)).toBe(false)
      const put = await app.inject({
        method: 'PUT',
        url: '/downloads',
        payload: new URLSearchParams({ uri: magnet, anon_hops: '1', safe_seeding: '1' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
      expect(put.json()).toEqual({ started: true, infohash: shared.infoHash })
      const listed = async (): Promise<{ status: string; hops: number; progress: number }> =>
        (await app.inject({ method: 'GET', url: '/downloads' })).json().downloads[0]
      let last = await listed()
      const deadline = Date.now() + 240_000
      while (last.status !== 'DLSTATUS_SEEDING' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200))
        last = await listed()
      }
      expect(last).toMatchObject({ status: 'DLSTATUS_SEEDING', hops: 1, progress: 1 })
      expect((await fsp.readFile(path.join(tmp, 'out', 'payload.bin'))).equals(shared.data)).toBe(true)

      const patch = await app.inject({
        method: 'PATCH',
        url: `/downloads/${shared.infoHash}`,
        payload: 'anon_hops=2',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
      expect(patch.json()).toEqual({ modified: true, infohash: shared.infoHash })
      const until2 = Date.now() + 120_000
      do {
        await new Promise((resolve) => setTimeout(resolve, 200))
        last = await listed()
      } while (!(last.hops === 2 && last.status === 'DLSTATUS_SEEDING') && Date.now() < until2)
      expect(last).toMatchObject({ status: 'DLSTATUS_SEEDING', hops: 2, progress: 1 })
      // nothing left directly: no TCP dial, no datagram from the direct socket (the DHT is off)
      expect(session.service<BitTorrentEngine>('bittorrent')?.directTraffic()).toEqual({
        tcpDials: 0,
        udpPacketsSent: 0,
      })
      await seen.stop()
      expect(seen.hosts.size).toBeGreaterThan(0)
      for (const host of seen.hosts) expect(EXIT_HOSTS).toContain(host)
      expect(seen.hosts.has(ENGINE_HOST)).toBe(false)
    })

    it('finds the seeder through the DHT, every DHT message and the peer connection going through 1-hop circuits', async () => {
      const tmp = await tempDir()
      const [net, shared] = await Promise.all([startTunnels(), startSeeder(tmp, 4 * 1024 * 1024)])
      // Our engine seeds the same data directly and is the DHT node the downloader bootstraps from.
      const seederState = path.join(tmp, 'dht-seeder')
      await fsp.mkdir(seederState, { recursive: true })
      const seeder = await startEngine({
        stateDir: seederState,
        host: DHT_SEEDER_HOST,
        settings: { libtorrent: { dht: true } },
      })
      cleanup.push(() => seeder.stop())
      const { infoHash } = await seeder.engine.add({
        source: { kind: 'torrent', torrent: shared.torrent },
        destination: shared.seedDir,
      })
      await until(
        () => seeder.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING',
        60_000,
        'seeder check',
      )
      const stateDir = path.join(tmp, 'state')
      await fsp.mkdir(stateDir, { recursive: true })
      const node = await startEngine({
        stateDir,
        host: ENGINE_HOST,
        settings: { libtorrent: { dht: true } },
        dhtBootstrap: [{ host: DHT_SEEDER_HOST, port: seeder.engine.port }],
        tunnels: () => net.node(0).community,
      })
      cleanup.push(() => node.stop())
      const out = path.join(tmp, 'out')
      const remotes = new Set<string>()
      const sample = setInterval(() => {
        for (const peer of seeder.engine.get(infoHash)?.peers() ?? []) remotes.add(peer.ip)
      }, 100)
      cleanup.push(async () => clearInterval(sample))
      // no tracker, no peer given: only the DHT can tell it where the seeder is
      await node.engine.add({
        source: { kind: 'torrent', torrent: shared.torrent },
        destination: out,
        hops: 1,
      })
      await until(
        () => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING',
        240_000,
        'the download',
      )
      clearInterval(sample)
      expect((await fsp.readFile(path.join(out, 'payload.bin'))).equals(shared.data)).toBe(true)
      const dht = node.engine
        .get(infoHash)!
        .status()
        .trackers.find((t) => t.url === '[DHT]')
      expect(dht).toMatchObject({ status: 'Working' })
      expect(dht!.peers).toBeGreaterThan(0)
      expect(remotes.size).toBeGreaterThan(0)
      for (const host of remotes) expect(EXIT_HOSTS).toContain(host)
      // The direct DHT node bootstraps from the same node (it knows nothing of this torrent), but no peer
      // connection left directly.
      expect(node.engine.directTraffic().tcpDials).toBe(0)
      expect(node.engine.download(infoHash)!.connections.tcp).toBe(0)
    })
  },
)
