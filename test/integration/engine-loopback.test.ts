import { existsSync } from 'node:fs'
import * as fsp from 'node:fs/promises'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { makeTorrent, sameBytes, until } from '../../src/bittorrent/download/swarm.test-support.js'
import {
  type DownloadState,
  EngineError,
  MAX_PENDING_INCOMING,
  torrentFileOf,
} from '../../src/bittorrent/engine/index.js'
import { formatMagnet } from '../../src/metainfo/index.js'
import { startEngine, type TestEngine } from '../support/engine.js'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function tempDir(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'engine-it-'))
  cleanup.push(() => fsp.rm(dir, { recursive: true, force: true }))
  return dir
}

async function engineAt(
  stateDir: string,
  host: string,
  extra: { tcp?: boolean } & Partial<Parameters<typeof startEngine>[0]> = {},
): Promise<TestEngine> {
  await fsp.mkdir(stateDir, { recursive: true })
  const node = await startEngine({ stateDir, host, ...extra })
  cleanup.push(() => node.stop())
  return node
}

function stateOf(node: TestEngine, infoHash: string): DownloadState | undefined {
  return node.engine.get(infoHash)?.status().state
}

describe('BitTorrentEngine over loopback sockets', () => {
  for (const [transport, seedHost, leechHost] of [
    ['tcp', '127.0.0.61', '127.0.0.62'],
    ['utp', '127.0.0.61', '127.0.0.62'],
    ['tcp', '::1', '::1'],
    ['utp', '::1', '::1'],
  ] as const) {
    it(`downloads a torrent from another engine over ${transport.toUpperCase()} on ${seedHost} and every byte matches`, async () => {
      const t = await makeTorrent({ 'a.bin': 3_000_000, 'dir/b.bin': 500_000 }, { pieceLength: 65_536 })
      cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
      const base = await tempDir()
      const seeder = await engineAt(path.join(base, 'seeder'), seedHost)
      const leecher = await engineAt(path.join(base, 'leecher'), leechHost, {
        tcp: transport === 'tcp',
        utp: transport === 'utp',
      })
      const torrentFile = torrentFileOf(t.torrent, [])
      const added = await seeder.engine.add({
        source: { kind: 'torrent', torrent: torrentFile },
        destination: t.seedDir,
      })
      expect(added.added).toBe(true)
      await until(() => stateOf(seeder, added.infoHash) === 'DLSTATUS_SEEDING', 20_000, 'seeder check')

      const finished: string[] = []
      leecher.events.on('torrent_finished', ({ infohash }) => finished.push(infohash))
      const dir = path.join(base, 'out')
      await leecher.engine.add({ source: { kind: 'torrent', torrent: torrentFile }, destination: dir })
      leecher.engine.addPeers(added.infoHash, [{ host: seedHost, port: seeder.engine.port }])
      await until(() => stateOf(leecher, added.infoHash) === 'DLSTATUS_SEEDING', 40_000, 'download')
      expect(await sameBytes(t, dir)).toBe(true)
      expect(finished).toEqual([added.infoHash])
      const connections = leecher.engine.download(added.infoHash)!.connections
      expect(connections[transport]).toBeGreaterThan(0)
      if (transport === 'utp') expect(connections.tcp).toBe(0)
    })
  }

  it('dials TCP peers from its listen address, the one they can dial back', async () => {
    const t = await makeTorrent({ 'a.bin': 100_000 }, { pieceLength: 32_768 })
    cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
    const base = await tempDir()
    const from: string[] = []
    const server = net.createServer((socket) => {
      from.push(socket.remoteAddress ?? '')
      socket.destroy()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.63', resolve))
    cleanup.push(() => new Promise((resolve) => server.close(resolve)))
    const node = await engineAt(path.join(base, 'state'), '127.0.0.64', { utp: false })
    const { infoHash } = await node.engine.add({
      source: { kind: 'torrent', torrent: torrentFileOf(t.torrent, []) },
      destination: path.join(base, 'out'),
    })
    node.engine.addPeers(infoHash, [{ host: '127.0.0.63', port: (server.address() as net.AddressInfo).port }])
    await until(() => from.length > 0, 20_000, 'a dial')
    expect(from[0]).toBe('127.0.0.64')
  })

  it('dials uTP first when both sides speak it, and falls back to TCP and remembers it when the seeder has uTP off', async () => {
    const t = await makeTorrent({ 'a.bin': 1_000_000 }, { pieceLength: 65_536 })
    cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
    const base = await tempDir()
    const torrentFile = torrentFileOf(t.torrent, [])
    const both = await engineAt(path.join(base, 'both'), '127.0.0.238')
    const tcpOnly = await engineAt(path.join(base, 'tcp-only'), '127.0.0.239', { utp: false })
    for (const seeder of [both, tcpOnly]) {
      await seeder.engine.add({ source: { kind: 'torrent', torrent: torrentFile }, destination: t.seedDir })
    }
    const ih = t.torrent.infoHashHex
    await until(
      () => stateOf(both, ih) === 'DLSTATUS_SEEDING' && stateOf(tcpOnly, ih) === 'DLSTATUS_SEEDING',
      20_000,
      'seeder checks',
    )
    for (const [seeder, host, expected] of [
      [both, '127.0.0.238', 'utp'],
      [tcpOnly, '127.0.0.239', 'tcp'],
    ] as const) {
      const leecher = await engineAt(path.join(base, `leech-${expected}`), '127.0.0.240')
      const dir = path.join(base, `out-${expected}`)
      await leecher.engine.add({ source: { kind: 'torrent', torrent: torrentFile }, destination: dir })
      leecher.engine.addPeers(ih, [{ host, port: seeder.engine.port }])
      await until(() => stateOf(leecher, ih) === 'DLSTATUS_SEEDING', 40_000, `download over ${expected}`)
      expect(await sameBytes(t, dir)).toBe(true)
      const connections = leecher.engine.download(ih)!.connections
      expect(connections[expected]).toBeGreaterThan(0)
      expect(connections[expected === 'utp' ? 'tcp' : 'utp']).toBe(0)
      if (expected === 'utp') expect(leecher.engine.directTraffic().tcpDials).toBe(0)
      else expect(leecher.engine.directTraffic().tcpDials).toBeGreaterThan(0)
      await leecher.stop()
    }
  })

  it('merges the trackers and dials the peers of a magnet added again for a download it already has', async () => {
    const t = await makeTorrent({ 'a.bin': 700_000 }, { pieceLength: 32_768 })
    cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
    const base = await tempDir()
    const seeder = await engineAt(path.join(base, 'seeder'), '127.0.0.63')
    const leecher = await engineAt(path.join(base, 'leecher'), '127.0.0.64')
    const torrentFile = torrentFileOf(t.torrent, [])
    const { infoHash } = await seeder.engine.add({
      source: { kind: 'torrent', torrent: torrentFile },
      destination: t.seedDir,
    })
    await until(() => stateOf(seeder, infoHash) === 'DLSTATUS_SEEDING', 20_000, 'seeder check')
    const dir = path.join(base, 'out')
    expect(
      await leecher.engine.add({ source: { kind: 'torrent', torrent: torrentFile }, destination: dir }),
    ).toEqual({ infoHash, added: true })
    const tracker = 'http://127.0.0.64:1/announce'
    const magnet = formatMagnet({
      infoHash: t.torrent.infoHash,
      trackers: [tracker],
      webSeeds: [],
      peers: [{ host: '127.0.0.63', port: seeder.engine.port }],
    })
    expect(await leecher.engine.add({ source: { kind: 'magnet', magnet } })).toEqual({
      infoHash,
      added: false,
    })
    expect(leecher.engine.list()).toHaveLength(1)
    expect(
      leecher.engine
        .get(infoHash)
        ?.status()
        .trackers.map((e) => e.url),
    ).toContain(tracker)
    await until(
      () => stateOf(leecher, infoHash) === 'DLSTATUS_SEEDING',
      40_000,
      'download from the merged peer',
    )
    expect(await sameBytes(t, dir)).toBe(true)
  })

  it('gets a magnet’s metadata from its x.pe peer, downloads, and keeps it all across a restart', async () => {
    const t = await makeTorrent({ 'a.bin': 1_000_000, 'b.bin': 200_000 }, { pieceLength: 32_768 })
    cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
    const base = await tempDir()
    const seeder = await engineAt(path.join(base, 'seeder'), '127.0.0.63')
    const torrentFile = torrentFileOf(t.torrent, [])
    const { infoHash } = await seeder.engine.add({
      source: { kind: 'torrent', torrent: torrentFile },
      destination: t.seedDir,
    })
    await until(() => stateOf(seeder, infoHash) === 'DLSTATUS_SEEDING', 20_000, 'seeder check')
    const magnet = formatMagnet({
      infoHash: t.torrent.infoHash,
      name: 'from magnet',
      trackers: [],
      webSeeds: [],
      peers: [{ host: '127.0.0.63', port: seeder.engine.port }],
    })

    const leechState = path.join(base, 'leecher')
    const leecher = await engineAt(leechState, '127.0.0.64')
    const fetched = await leecher.engine.fetchMetadata(magnet, { timeoutMs: 20_000 })
    expect(Buffer.from(fetched).includes(Buffer.from(t.torrent.infoBytes))).toBe(true)

    const dir = path.join(base, 'out')
    await leecher.engine.add({ source: { kind: 'magnet', magnet }, destination: dir })
    await until(() => stateOf(leecher, infoHash) === 'DLSTATUS_SEEDING', 40_000, 'magnet download')
    expect(await sameBytes(t, dir)).toBe(true)
    expect(leecher.engine.get(infoHash)!.torrentFile()).toBeDefined()
    await leecher.engine.get(infoHash)!.stop()
    expect(stateOf(leecher, infoHash)).toBe('DLSTATUS_STOPPED')
    await leecher.stop()

    const again = await engineAt(leechState, '127.0.0.64')
    const handle = again.engine.get(infoHash)
    expect(handle).toBeDefined()
    expect(handle!.status().state).toBe('DLSTATUS_STOPPED')
    expect(handle!.status().name).toBe(t.torrent.displayName)
    await handle!.resume()
    await until(() => stateOf(again, infoHash) === 'DLSTATUS_SEEDING', 20_000, 'resumed seeding')
    expect(again.engine.download(infoHash)!.rechecked).toBe(false)
    expect(again.engine.download(infoHash)!.totals.down).toBe(0)

    expect(await again.engine.remove(infoHash, { removeData: true })).toBe(true)
    expect(again.engine.get(infoHash)).toBeUndefined()
    await expect(fsp.stat(path.join(dir, t.torrent.name, 'a.bin'))).rejects.toThrow()
  })

  it('counts the upload of earlier runs into the seeding ratio after a restart', async () => {
    const t = await makeTorrent({ 'a.bin': 1_000_000 }, { pieceLength: 32_768 })
    cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
    const size = t.torrent.totalLength
    const base = await tempDir()
    const ratio = { settings: { download_defaults: { seeding_mode: 'ratio', seeding_ratio: 1.5 } } }
    const seedState = path.join(base, 'seeder')
    const seeder = await engineAt(seedState, '127.0.0.171', ratio)
    const torrentFile = torrentFileOf(t.torrent, [])
    const { infoHash } = await seeder.engine.add({
      source: { kind: 'torrent', torrent: torrentFile },
      destination: t.seedDir,
    })
    await until(() => stateOf(seeder, infoHash) === 'DLSTATUS_SEEDING', 20_000, 'seeder check')

    // First run: one whole copy goes up, ratio 1 of 1.5, so the seeder keeps seeding.
    const first = await engineAt(path.join(base, 'first'), '127.0.0.172')
    await first.engine.add({
      source: { kind: 'torrent', torrent: torrentFile },
      destination: path.join(base, 'o1'),
    })
    first.engine.addPeers(infoHash, [{ host: '127.0.0.171', port: seeder.engine.port }])
    await until(() => stateOf(first, infoHash) === 'DLSTATUS_SEEDING', 40_000, 'first download')
    await until(() => seeder.engine.get(infoHash)!.status().totalUp >= size, 20_000, 'upload counted')
    await first.stop()
    const uploaded = seeder.engine.get(infoHash)!.status().totalUp
    expect(stateOf(seeder, infoHash)).toBe('DLSTATUS_SEEDING')
    await seeder.stop()

    // Second run: the stored total comes back, and half a copy more meets the ratio.
    const again = await engineAt(seedState, '127.0.0.171', ratio)
    expect(again.engine.get(infoHash)!.status().totalUp).toBe(uploaded)
    await until(() => stateOf(again, infoHash) === 'DLSTATUS_SEEDING', 20_000, 'seeder restart')
    expect(again.engine.download(infoHash)!.totals.up).toBe(0)
    const second = await engineAt(path.join(base, 'second'), '127.0.0.173')
    await second.engine.add({
      source: { kind: 'torrent', torrent: torrentFile },
      destination: path.join(base, 'o2'),
    })
    second.engine.addPeers(infoHash, [{ host: '127.0.0.171', port: again.engine.port }])
    await until(() => stateOf(again, infoHash) === 'DLSTATUS_STOPPED', 40_000, 'seeding ratio met')
    const thisRun = again.engine.download(infoHash)!.totals.up
    expect(thisRun).toBeGreaterThan(0)
    expect(thisRun).toBeLessThan(1.5 * size)
    expect(again.engine.get(infoHash)!.status().totalUp).toBe(uploaded + thisRun)
    expect(uploaded + thisRun).toBeGreaterThanOrEqual(1.5 * size)
  })

  it('finds the seeder through the DHT, with no tracker and no peer given', async () => {
    const t = await makeTorrent({ 'a.bin': 700_000 }, { pieceLength: 32_768 })
    cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
    const base = await tempDir()
    const dht = { settings: { libtorrent: { dht: true } } }
    const seeder = await engineAt(path.join(base, 'seeder'), '127.0.0.68', dht)
    const leecher = await engineAt(path.join(base, 'leecher'), '127.0.0.69', {
      ...dht,
      dhtBootstrap: [{ host: '127.0.0.68', port: seeder.engine.port }],
    })
    const torrentFile = torrentFileOf(t.torrent, [])
    const { infoHash } = await seeder.engine.add({
      source: { kind: 'torrent', torrent: torrentFile },
      destination: t.seedDir,
    })
    await until(() => stateOf(seeder, infoHash) === 'DLSTATUS_SEEDING', 20_000, 'seeder check')
    const dir = path.join(base, 'out')
    await leecher.engine.add({ source: { kind: 'torrent', torrent: torrentFile }, destination: dir })
    await until(
      () => stateOf(leecher, infoHash) === 'DLSTATUS_SEEDING',
      50_000,
      'download found through the DHT',
    )
    expect(await sameBytes(t, dir)).toBe(true)
    const dhtEntry = leecher.engine
      .get(infoHash)!
      .status()
      .trackers.find((e) => e.url === '[DHT]')
    expect(dhtEntry?.peers).toBeGreaterThan(0)
    // The routing table is kept in the state folder for the next start.
    await leecher.stop()
    expect(existsSync(path.join(base, 'leecher', 'dht.json'))).toBe(true)
  })

  it('still completes a download under the session upload limit of the seeder', async () => {
    const t = await makeTorrent({ 'a.bin': 1_500_000 }, { pieceLength: 65_536 })
    cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
    const base = await tempDir()
    const seeder = await engineAt(path.join(base, 'seeder'), '127.0.0.66')
    seeder.config.update({ libtorrent: { max_upload_rate: 1_000_000 } })
    const leecher = await engineAt(path.join(base, 'leecher'), '127.0.0.67')
    const torrentFile = torrentFileOf(t.torrent, [])
    const { infoHash } = await seeder.engine.add({
      source: { kind: 'torrent', torrent: torrentFile },
      destination: t.seedDir,
    })
    await until(() => stateOf(seeder, infoHash) === 'DLSTATUS_SEEDING', 20_000, 'seeder check')
    const dir = path.join(base, 'out')
    await leecher.engine.add({ source: { kind: 'torrent', torrent: torrentFile }, destination: dir })
    leecher.engine.addPeers(infoHash, [{ host: '127.0.0.66', port: seeder.engine.port }])
    await until(() => stateOf(leecher, infoHash) === 'DLSTATUS_SEEDING', 40_000, 'limited download')
    expect(await sameBytes(t, dir)).toBe(true)
    expect(seeder.engine.rateLimits().upload).toBe(1_000_000)
  })

  it("holds a seeding download's own upload limit on incoming peers, keeps it across a restart and lifts it live", async () => {
    const LIMIT = 256 * 1024
    const t = await makeTorrent({ 'a.bin': 4_000_000 }, { pieceLength: 65_536 })
    cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
    const base = await tempDir()
    const seederState = path.join(base, 'seeder')
    const first = await engineAt(seederState, '127.0.0.232')
    const torrentFile = torrentFileOf(t.torrent, [])
    const { infoHash } = await first.engine.add({
      source: { kind: 'torrent', torrent: torrentFile },
      destination: t.seedDir,
      rateLimits: { uploadBytesPerSec: LIMIT },
    })
    expect(() => first.engine.get(infoHash)!.setRateLimits({ downloadBytesPerSec: -1 })).toThrow(RangeError)
    await first.stop()
    const seeder = await engineAt(seederState, '127.0.0.232')
    expect(seeder.engine.get(infoHash)!.status().rateLimits).toEqual({
      downloadBytesPerSec: 0,
      uploadBytesPerSec: LIMIT,
    })
    await until(() => stateOf(seeder, infoHash) === 'DLSTATUS_SEEDING', 20_000, 'seeder check')

    const leecher = await engineAt(path.join(base, 'leecher'), '127.0.0.233')
    const dir = path.join(base, 'out')
    await leecher.engine.add({ source: { kind: 'torrent', torrent: torrentFile }, destination: dir })
    leecher.engine.addPeers(infoHash, [{ host: '127.0.0.232', port: seeder.engine.port }])
    const sent = () => seeder.engine.download(infoHash)!.totals.up
    await until(() => sent() > 64 * 1024, 30_000, 'the first blocks')
    // Bytes over a window, against the limit: at most 1.5 times it plus the bucket's burst and a few blocks.
    const startBytes = sent()
    const startMs = performance.now()
    await until(() => performance.now() - startMs >= 3000, 10_000, 'the window')
    const windowSec = (performance.now() - startMs) / 1000
    expect(sent() - startBytes).toBeLessThanOrEqual(LIMIT * windowSec * 1.5 + LIMIT / 2 + 4 * 16_384)
    expect(stateOf(leecher, infoHash)).toBe('DLSTATUS_DOWNLOADING')
    seeder.engine.get(infoHash)!.setRateLimits({ uploadBytesPerSec: 0 })
    await until(() => stateOf(leecher, infoHash) === 'DLSTATUS_SEEDING', 40_000, 'the rest, unlimited')
    expect(await sameBytes(t, dir)).toBe(true)
  })

  it('closes incoming connections beyond MAX_PENDING_INCOMING that name no torrent, and serves peers once they go', async () => {
    const t = await makeTorrent({ 'a.bin': 200_000 }, { pieceLength: 32_768 })
    cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
    const base = await tempDir()
    const seeder = await engineAt(path.join(base, 'seeder'), '127.0.0.67')
    const torrentFile = torrentFileOf(t.torrent, [])
    const added = await seeder.engine.add({
      source: { kind: 'torrent', torrent: torrentFile },
      destination: t.seedDir,
    })
    await until(() => stateOf(seeder, added.infoHash) === 'DLSTATUS_SEEDING', 20_000, 'seeder check')

    // Silent connections, as someone holding sockets open would make: the ones over the bound are closed at once.
    const extra = 20
    let closedByEngine = 0
    const silent: net.Socket[] = []
    for (let i = 0; i < MAX_PENDING_INCOMING + extra; i++) {
      const socket = net.connect({ host: '127.0.0.67', port: seeder.engine.port })
      socket.on('error', () => undefined)
      socket.on('close', () => closedByEngine++)
      silent.push(socket)
    }
    cleanup.push(async () => {
      for (const socket of silent) socket.destroy()
    })
    await until(() => closedByEngine >= extra, 15_000, 'the connections over the bound closed')
    for (const socket of silent) socket.destroy()

    const leecher = await engineAt(path.join(base, 'leecher'), '127.0.0.68', { tcp: true })
    const dir = path.join(base, 'out')
    await leecher.engine.add({ source: { kind: 'torrent', torrent: torrentFile }, destination: dir })
    leecher.engine.addPeers(added.infoHash, [{ host: '127.0.0.67', port: seeder.engine.port }])
    await until(() => stateOf(leecher, added.infoHash) === 'DLSTATUS_SEEDING', 40_000, 'download')
    expect(await sameBytes(t, dir)).toBe(true)
  })

  it('refuses anonymous downloads, bad torrents and bad magnets with coded errors', async () => {
    const base = await tempDir()
    const node = await engineAt(path.join(base, 'state'), '127.0.0.65')
    const codeOf = async (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'resolved',
        (err: unknown) => (err instanceof EngineError ? err.code : String(err)),
      )
    expect(
      await codeOf(
        node.engine.add({
          source: { kind: 'magnet', magnet: 'magnet:?xt=urn:btih:' + 'a'.repeat(40) },
          hops: 1,
        }),
      ),
    ).toBe('ANON_NOT_SUPPORTED')
    expect(
      await codeOf(node.engine.add({ source: { kind: 'torrent', torrent: Buffer.from('d4:infoi1ee') } })),
    ).toBe('INVALID_TORRENT')
    expect(await codeOf(node.engine.add({ source: { kind: 'magnet', magnet: 'magnet:?xt=nothing' } }))).toBe(
      'INVALID_MAGNET',
    )
    expect(
      await codeOf(node.engine.fetchMetadata('magnet:?xt=urn:btih:' + 'b'.repeat(40), { timeoutMs: 300 })),
    ).toBe('METADATA_TIMEOUT')
    expect(node.engine.rateLimits()).toEqual({ download: 0, upload: 0 })
    node.config.update({ libtorrent: { max_download_rate: 2_000_000, max_upload_rate: 500_000 } })
    expect(node.engine.rateLimits()).toEqual({ download: 2_000_000, upload: 500_000 })
  })
})
