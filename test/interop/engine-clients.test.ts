/**
 * The engine against real clients other than libtorrent, on loopback, every byte compared with the source.
 *
 * - Transmission (transmission-cli 3.00): download from it and seed to it, over TCP and over uTP only (our engine
 *   with TCP off, Transmission's libutp on). Transmission never dials loopback addresses it learns from trackers,
 *   PEX or the DHT (they are "martian" to it), so in every test our engine dials Transmission, as a seed too.
 * - aria2 (aria2c 1.36): download from it and seed to it over TCP. aria2 has no uTP at all (it implements
 *   BitTorrent over TCP only), so there is no uTP test against it.
 * - libtorrent seeding next to a peer that sends corrupt pieces, and a libtorrent seeder found through opentracker.
 */
import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PeerWire } from '../../src/bittorrent/peer-wire/index.js'
import { createTorrent as createOurTorrent } from '../../src/metainfo/index.js'
import { startEngine, type TestEngine } from '../support/engine.js'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'
import {
  aria2Available,
  startAria2,
  startTransmission,
  transmissionAvailable,
} from '../support/other-clients.js'
import { freePort, opentrackerAvailable, startOpentracker } from '../support/tracker-servers.js'
import { until } from '../support/until.js'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function tempDir(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'engine-clients-'))
  cleanup.push(() => fsp.rm(dir, { recursive: true, force: true }))
  return dir
}

/** An engine on `host`; TCP only unless `transport` says uTP only. */
async function engineAt(
  stateDir: string,
  host: string,
  transport: 'tcp' | 'utp' = 'tcp',
): Promise<TestEngine> {
  await fsp.mkdir(stateDir, { recursive: true })
  const node = await startEngine({ stateDir, host, tcp: transport === 'tcp', utp: transport === 'utp' })
  cleanup.push(() => node.stop())
  return node
}

async function sameFiles(contents: Map<string, Buffer>, dir: string): Promise<boolean> {
  for (const [relative, data] of contents) {
    const got = await fsp.readFile(path.join(dir, relative)).catch(() => undefined)
    if (got === undefined || !got.equals(data)) return false
  }
  return true
}

/** Random files under `<tmp>/seed/share` and a .torrent of them made by us (optionally with a tracker). */
async function share(
  tmp: string,
  sizes: Record<string, number>,
  trackers: string[] = [],
): Promise<{
  contents: Map<string, Buffer>
  seedDir: string
  torrentPath: string
  bytes: Buffer
  infoHash: string
}> {
  const seedDir = path.join(tmp, 'seed')
  const files = await writeRandomFiles(path.join(seedDir, 'share'), sizes)
  const contents = new Map([...files].map(([k, v]) => [path.join('share', k), v]))
  const made = await createOurTorrent(path.join(seedDir, 'share'), { pieceLength: 262_144, trackers })
  const torrentPath = path.join(tmp, 'share.torrent')
  await fsp.writeFile(torrentPath, made.torrent)
  return { contents, seedDir, torrentPath, bytes: made.torrent, infoHash: made.info.infoHashHex }
}

describe.skipIf(!transmissionAvailable())('BitTorrentEngine and Transmission', () => {
  for (const transport of ['tcp', 'utp'] as const) {
    const over = transport === 'tcp' ? 'TCP' : 'uTP only'
    it(`downloads from a transmission-cli seeder it dials over ${over}`, async () => {
      const tmp = await tempDir()
      const { contents, seedDir, torrentPath, bytes, infoHash } = await share(tmp, {
        'a.bin': 6_000_000,
        'b.txt': 999,
      })
      const port = await freePort('127.0.0.1')
      const seeder = await startTransmission({
        torrentPath,
        dir: seedDir,
        configDir: path.join(tmp, 'tr'),
        port,
        utp: transport === 'utp',
      })
      cleanup.push(() => seeder.stop())
      const node = await engineAt(path.join(tmp, 'state'), '127.0.0.1', transport)
      const out = path.join(tmp, 'out')
      await node.engine.add({ source: { kind: 'torrent', torrent: bytes }, destination: out })
      // Transmission checks its data before it serves; a dial during the check is refused, so dial until served.
      try {
        await until(
          () => {
            const download = node.engine.download(infoHash)!
            if (download.connections.tcp + download.connections.utp === 0) {
              node.engine.addPeers(infoHash, [{ host: '127.0.0.1', port }])
            }
            return node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING'
          },
          120_000,
          'download',
        )
      } catch (err) {
        throw new Error(`${String(err)}; transmission said: ${seeder.output().slice(-2000)}`)
      }
      expect(await sameFiles(contents, out)).toBe(true)
      const download = node.engine.download(infoHash)!
      expect(download.connections[transport]).toBeGreaterThan(0)
      expect(download.connections[transport === 'tcp' ? 'utp' : 'tcp']).toBe(0)
      expect(download.totals.hashFailures).toBe(0)
    })

    it(`seeds to a transmission-cli leecher over ${over}`, async () => {
      const tmp = await tempDir()
      const { contents, seedDir, torrentPath, bytes, infoHash } = await share(tmp, {
        'a.bin': 5_000_000,
        'c/d.bin': 54_321,
      })
      const node = await engineAt(path.join(tmp, 'state'), '127.0.0.1', transport)
      await node.engine.add({ source: { kind: 'torrent', torrent: bytes }, destination: seedDir })
      await until(() => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING', 30_000, 'check')

      const port = await freePort('127.0.0.1')
      const out = path.join(tmp, 'tr-out')
      await fsp.mkdir(out, { recursive: true })
      const leecher = await startTransmission({
        torrentPath,
        dir: out,
        configDir: path.join(tmp, 'tr'),
        port,
        utp: transport === 'utp',
      })
      cleanup.push(() => leecher.stop())
      // Transmission ignores loopback peers from trackers and PEX, so we dial it; it keeps seeding once done,
      // so completion is its files on disk, complete and renamed from `.part`, equal to ours.
      let complete = false
      try {
        await until(
          () => {
            const download = node.engine.download(infoHash)!
            if (download.connections.tcp + download.connections.utp === 0) {
              node.engine.addPeers(infoHash, [{ host: '127.0.0.1', port }])
            }
            return /Seeding/.test(leecher.output())
          },
          120_000,
          'transmission to finish',
        )
        complete = await sameFiles(contents, out)
      } catch (err) {
        throw new Error(`${String(err)}; transmission said: ${leecher.output().slice(-2000)}`)
      }
      expect(complete).toBe(true)
      const download = node.engine.download(infoHash)!
      expect(download.totals.up).toBeGreaterThanOrEqual(5_054_321)
      expect(download.connections[transport]).toBeGreaterThan(0)
      expect(download.connections[transport === 'tcp' ? 'utp' : 'tcp']).toBe(0)
    })
  }
})

describe.skipIf(!aria2Available())('BitTorrentEngine and aria2', () => {
  it('downloads from an aria2c seeder over TCP', async () => {
    const tmp = await tempDir()
    const { contents, seedDir, torrentPath, bytes, infoHash } = await share(tmp, {
      'a.bin': 6_000_000,
      'c/d.bin': 4321,
    })
    const port = await freePort('127.0.0.1')
    const seeder = startAria2({ torrentPath, dir: seedDir, port, seed: true })
    cleanup.push(() => seeder.stop())
    const node = await engineAt(path.join(tmp, 'state'), '127.0.0.1')
    const out = path.join(tmp, 'out')
    await node.engine.add({ source: { kind: 'torrent', torrent: bytes }, destination: out })
    node.engine.addPeers(infoHash, [{ host: '127.0.0.1', port }])
    try {
      await until(() => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING', 120_000, 'download')
    } catch (err) {
      throw new Error(`${String(err)}; aria2 said: ${seeder.output().slice(-2000)}`)
    }
    expect(await sameFiles(contents, out)).toBe(true)
  })

  it.skipIf(!opentrackerAvailable())(
    'seeds to an aria2c leecher that finds it through opentracker',
    async () => {
      const tmp = await tempDir()
      const trackerHost = '127.0.0.1'
      // The whitelist needs the info hash before the torrent exists: make the data, hash it, then start the tracker.
      const port = await freePort(trackerHost)
      const probe = await share(tmp, { 'a.bin': 5_000_000, 'b.bin': 12_345 })
      const tracker = await startOpentracker(trackerHost, [Buffer.from(probe.infoHash, 'hex')])
      cleanup.push(() => tracker.stop())
      const withTracker = await createOurTorrent(path.join(probe.seedDir, 'share'), {
        pieceLength: 262_144,
        trackers: [`${tracker.url}/announce`],
      })
      expect(withTracker.info.infoHashHex).toBe(probe.infoHash)
      const torrentPath = path.join(tmp, 'tracked.torrent')
      await fsp.writeFile(torrentPath, withTracker.torrent)

      const node = await engineAt(path.join(tmp, 'state'), '127.0.0.1')
      const { infoHash } = await node.engine.add({
        source: { kind: 'torrent', torrent: withTracker.torrent },
        destination: probe.seedDir,
      })
      await until(() => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING', 30_000, 'check')
      await until(
        () =>
          node.engine
            .get(infoHash)!
            .status()
            .trackers.some((t) => t.status === 'Working'),
        30_000,
        'announce',
      )
      const out = path.join(tmp, 'aria-out')
      const leecher = startAria2({ torrentPath, dir: out, port, seed: false })
      cleanup.push(() => leecher.stop())
      const code = await Promise.race([
        leecher.exited,
        new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 120_000)),
      ])
      expect(code, leecher.output().slice(-2000)).toBe(0)
      expect(await sameFiles(probe.contents, out)).toBe(true)
      expect(node.engine.download(infoHash)!.totals.up).toBeGreaterThan(0)
    },
  )
})

describe.skipIf(!libtorrentAvailable())('BitTorrentEngine with libtorrent and bad peers', () => {
  it('bans a peer that sends corrupt pieces and completes from a libtorrent seeder', async () => {
    const tmp = await tempDir()
    const seedDir = path.join(tmp, 'seed')
    const contents = await writeRandomFiles(path.join(seedDir, 'share'), { 'a.bin': 4_000_000 })
    const made = await createTorrent({
      path: path.join(seedDir, 'share'),
      out: path.join(tmp, 's.torrent'),
      pieceLength: 65_536,
    })
    const infoHash = Buffer.from(made.infoHash, 'hex')
    let corruptBlocks = 0
    const evil = net.createServer((socket) => {
      socket.on('error', () => undefined)
      const wire = new PeerWire(socket, { peerId: randomBytes(20) })
      wire.once('handshake', () => {
        wire.handshake(infoHash)
        wire.setNumPieces(made.numPieces)
        wire.haveAll()
        wire.unchoke()
      })
      wire.on('request', (req) => {
        corruptBlocks++
        wire.piece(req.index, req.begin, randomBytes(req.length))
      })
    })
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.93', resolve))
    cleanup.push(() => new Promise((resolve) => evil.close(resolve)))
    const evilPort = (evil.address() as net.AddressInfo).port

    const node = await engineAt(path.join(tmp, 'state'), '127.0.0.94')
    const out = path.join(tmp, 'out')
    const bytes = await fsp.readFile(made.torrentPath)
    await node.engine.add({ source: { kind: 'torrent', torrent: bytes }, destination: out })
    const download = node.engine.download(made.infoHash)!
    node.engine.addPeers(made.infoHash, [{ host: '127.0.0.93', port: evilPort }])
    await until(() => download.bannedHosts.length > 0, 60_000, 'the ban')
    expect(download.bannedHosts).toEqual(['127.0.0.93'])
    expect(corruptBlocks).toBeGreaterThan(0)

    const seeder = await LibtorrentPeer.start({ host: '127.0.0.95' })
    cleanup.push(() => seeder.stop())
    await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
    await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)
    const before = corruptBlocks
    node.engine.addPeers(made.infoHash, [
      { host: seeder.host, port: seeder.port },
      { host: '127.0.0.93', port: evilPort },
    ])
    await until(() => download.state === 'DLSTATUS_SEEDING', 120_000, 'download from the good peer')
    expect(corruptBlocks).toBe(before)
    const got = await fsp.readFile(path.join(out, 'share', 'a.bin'))
    expect(got.equals(contents.get('a.bin')!)).toBe(true)
  })

  it.skipIf(!opentrackerAvailable())(
    'finds a libtorrent seeder through opentracker (HTTP) and downloads',
    async () => {
      const tmp = await tempDir()
      const probe = await share(tmp, { 'a.bin': 3_000_000 })
      const tracker = await startOpentracker('127.0.0.1', [Buffer.from(probe.infoHash, 'hex')])
      cleanup.push(() => tracker.stop())
      const made = await createOurTorrent(path.join(probe.seedDir, 'share'), {
        pieceLength: 262_144,
        trackers: [`${tracker.url}/announce`],
      })
      const torrentPath = path.join(tmp, 'tracked.torrent')
      await fsp.writeFile(torrentPath, made.torrent)
      const seeder = await LibtorrentPeer.start({ host: '127.0.0.1' })
      cleanup.push(() => seeder.stop())
      await seeder.addTorrent({ torrentPath, savePath: probe.seedDir })
      await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)

      const node = await engineAt(path.join(tmp, 'state'), '127.0.0.1')
      const out = path.join(tmp, 'out')
      const { infoHash } = await node.engine.add({
        source: { kind: 'torrent', torrent: made.torrent },
        destination: out,
      })
      // No peer given: the only way to the seeder is the tracker (re-announced until it has announced too).
      await until(
        () => node.engine.get(infoHash)!.status().state === 'DLSTATUS_SEEDING',
        120_000,
        'download via the tracker',
      )
      expect(await sameFiles(probe.contents, out)).toBe(true)
      const trackers = node.engine.get(infoHash)!.status().trackers
      expect(trackers.find((t) => t.url.startsWith(tracker.url))?.status).toBe('Working')
    },
  )
})
