import { existsSync } from 'node:fs'
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { formatMagnet } from '../../src/metainfo/index.js'
import { startEngine, type TestEngine } from '../support/engine.js'
import {
  createTorrent,
  LibtorrentPeer,
  type LibtorrentTorrent,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'
import { until } from '../support/until.js'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function tempDir(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'engine-lt-'))
  cleanup.push(() => fsp.rm(dir, { recursive: true, force: true }))
  return dir
}

async function engineAt(stateDir: string, host: string, extra: { tcp?: boolean } = {}): Promise<TestEngine> {
  await fsp.mkdir(stateDir, { recursive: true })
  const node = await startEngine({ stateDir, host, ...extra })
  cleanup.push(() => node.stop())
  return node
}

async function expectSameFiles(
  contents: Map<string, Buffer>,
  dir: string,
  skip: string[] = [],
): Promise<void> {
  for (const [relative, data] of contents) {
    const file = path.join(dir, relative)
    if (skip.includes(relative)) {
      expect(existsSync(file)).toBe(false)
      continue
    }
    const got = await fsp.readFile(file)
    expect(got.length).toBe(data.length)
    expect(got.equals(data)).toBe(true)
  }
}

/** A shared folder of random files and its torrent, made by libtorrent. */
async function share(
  tmp: string,
  sizes: Record<string, number>,
  pieceLength = 262_144,
): Promise<{ made: LibtorrentTorrent; contents: Map<string, Buffer>; seedDir: string; bytes: Buffer }> {
  const seedDir = path.join(tmp, 'seed')
  const files = await writeRandomFiles(path.join(seedDir, 'share'), sizes)
  const contents = new Map([...files].map(([k, v]) => [path.join('share', k), v]))
  const made = await createTorrent({
    path: path.join(seedDir, 'share'),
    out: path.join(tmp, 's.torrent'),
    pieceLength,
  })
  return { made, contents, seedDir, bytes: await fsp.readFile(made.torrentPath) }
}

describe.skipIf(!libtorrentAvailable())('BitTorrentEngine against libtorrent', () => {
  for (const transport of ['tcp', 'utp'] as const) {
    it(`downloads 8 MiB from a libtorrent seeder over ${transport.toUpperCase()} only`, async () => {
      const tmp = await tempDir()
      const { made, contents, seedDir, bytes } = await share(tmp, {
        'big.bin': 8 * 1024 * 1024,
        'small.txt': 1234,
      })
      const seeder = await LibtorrentPeer.start({
        host: '127.0.0.71',
        tcp: transport === 'tcp',
        utp: transport === 'utp',
      })
      cleanup.push(() => seeder.stop())
      await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
      await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)

      const node = await engineAt(path.join(tmp, 'state'), '127.0.0.72', { tcp: transport === 'tcp' })
      const out = path.join(tmp, 'out')
      const { infoHash } = await node.engine.add({
        source: { kind: 'torrent', torrent: bytes },
        destination: out,
      })
      expect(infoHash).toBe(made.infoHash)
      node.engine.addPeers(infoHash, [{ host: seeder.host, port: seeder.port }])
      await until(() => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING', 120_000, 'download')
      await expectSameFiles(contents, out)
      const connections = node.engine.download(infoHash)!.connections
      expect(connections[transport]).toBeGreaterThan(0)
      expect(connections[transport === 'tcp' ? 'utp' : 'tcp']).toBe(0)
      expect(node.engine.download(infoHash)!.totals.hashFailures).toBe(0)
    })

    it(`seeds 8 MiB to a libtorrent leecher over ${transport.toUpperCase()} only`, async () => {
      const tmp = await tempDir()
      const { made, contents, seedDir, bytes } = await share(tmp, {
        'big.bin': 8 * 1024 * 1024,
        'x/y.bin': 77_777,
      })
      const node = await engineAt(path.join(tmp, 'state'), '127.0.0.73', { tcp: transport === 'tcp' })
      const { infoHash } = await node.engine.add({
        source: { kind: 'torrent', torrent: bytes },
        destination: seedDir,
      })
      await until(() => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING', 30_000, 'check')

      const leecher = await LibtorrentPeer.start({
        host: '127.0.0.74',
        tcp: transport === 'tcp',
        utp: transport === 'utp',
      })
      cleanup.push(() => leecher.stop())
      const out = path.join(tmp, 'lt-out')
      await leecher.addTorrent({ torrentPath: made.torrentPath, savePath: out })
      await leecher.addPeer({ ip: '127.0.0.73', port: node.engine.port })
      await leecher.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs: 120_000 })
      await expectSameFiles(contents, out)
      const up = node.engine.download(infoHash)!
      expect(up.totals.up).toBeGreaterThanOrEqual(made.totalLength)
      expect(up.connections[transport]).toBeGreaterThan(0)
    })
  }

  for (const c of [
    { level: 'rc4', name: 'RC4', hosts: ['127.0.0.79', '127.0.0.80'] },
    { level: 'plaintext', name: 'a plaintext payload', hosts: ['127.0.0.230', '127.0.0.231'] },
  ] as const) {
    it(`seeds to a libtorrent leecher that forces encryption (MSE, ${c.name}) and reports it as such`, async () => {
      const [engineHost, leecherHost] = c.hosts
      const tmp = await tempDir()
      const { made, contents, seedDir, bytes } = await share(tmp, { 'big.bin': 3 * 1024 * 1024 })
      const node = await engineAt(path.join(tmp, 'state'), engineHost)
      const { infoHash } = await node.engine.add({
        source: { kind: 'torrent', torrent: bytes },
        destination: seedDir,
      })
      await until(() => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING', 30_000, 'check')
      // Paced to about 3 s, so the leecher is still connected when the polls below look: unpaced, 3 MiB cross
      // loopback within one poll interval and the finished leecher leaves.
      node.engine.get(infoHash)!.setRateLimits({ uploadBytesPerSec: 1024 * 1024 })
      const leecher = await LibtorrentPeer.start({
        host: leecherHost,
        encryption: 'forced',
        encryptionLevel: c.level,
      })
      cleanup.push(() => leecher.stop())
      const out = path.join(tmp, 'lt-out')
      await leecher.addTorrent({ torrentPath: made.torrentPath, savePath: out })
      await leecher.addPeer({ ip: engineHost, port: node.engine.port })
      const seen = new Set<string>()
      await until(
        () => {
          for (const p of node.engine.get(infoHash)!.peers()) seen.add(p.encryption)
          return seen.size > 0
        },
        60_000,
        'the leecher among our peers',
      )
      // libtorrent dials only with MSE here, so every connection we saw settled on the method it allows.
      expect([...seen]).toEqual([c.level])
      const status = await leecher.waitFor((s) => (s.torrents[0]?.peers.length ?? 0) > 0, {
        timeoutMs: 60_000,
      })
      expect(status.torrents[0]!.peers.every((p) => p.encryption === c.level)).toBe(true)
      await leecher.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs: 120_000 })
      await expectSameFiles(contents, out)
    })
  }

  it('downloads a magnet whose metadata comes from the libtorrent peer', async () => {
    const tmp = await tempDir()
    const { made, contents, seedDir } = await share(tmp, { 'a.bin': 3_000_000, 'b/c.bin': 100_000 }, 65_536)
    const seeder = await LibtorrentPeer.start({ host: '127.0.0.75' })
    cleanup.push(() => seeder.stop())
    await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
    await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)
    const node = await engineAt(path.join(tmp, 'state'), '127.0.0.76')
    const magnet = formatMagnet({
      infoHash: Buffer.from(made.infoHash, 'hex'),
      trackers: [],
      webSeeds: [],
      peers: [{ host: seeder.host, port: seeder.port }],
    })
    const out = path.join(tmp, 'out')
    const { infoHash } = await node.engine.add({ source: { kind: 'magnet', magnet }, destination: out })
    expect(['DLSTATUS_METADATA', 'DLSTATUS_DOWNLOADING', 'DLSTATUS_SEEDING']).toContain(
      node.engine.get(infoHash)!.status().state,
    )
    await until(
      () => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING',
      60_000,
      'magnet download',
    )
    expect(node.engine.get(infoHash)!.status().name).toBe('share')
    await expectSameFiles(contents, out)
  })

  it('downloads only the selected files of a multi-file torrent', async () => {
    const tmp = await tempDir()
    const sizes = {
      'keep1.bin': 1_000_000,
      'skip.bin': 1_500_000,
      'keep2.bin': 700_001,
      'skip2.bin': 300_000,
    }
    const { made, contents, seedDir, bytes } = await share(tmp, sizes, 65_536)
    const seeder = await LibtorrentPeer.start({ host: '127.0.0.77' })
    cleanup.push(() => seeder.stop())
    await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
    await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)
    const node = await engineAt(path.join(tmp, 'state'), '127.0.0.78')
    const index = (name: string): number => made.files.findIndex((f) => f.path.endsWith(name))
    const out = path.join(tmp, 'out')
    const { infoHash } = await node.engine.add({
      source: { kind: 'torrent', torrent: bytes },
      destination: out,
      selectedFiles: [index('keep1.bin'), index('keep2.bin')],
    })
    node.engine.addPeers(infoHash, [{ host: seeder.host, port: seeder.port }])
    await until(
      () => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING',
      60_000,
      'selected files',
    )
    await expectSameFiles(contents, out, [path.join('share', 'skip.bin'), path.join('share', 'skip2.bin')])
    const files = node.engine.get(infoHash)!.files()
    expect(files.filter((f) => f.included).every((f) => f.progress === 1)).toBe(true)
    expect(
      files
        .filter((f) => !f.included)
        .map((f) => path.basename(f.name))
        .sort(),
    ).toEqual(['skip.bin', 'skip2.bin'])
    // Less than the whole torrent came down: skipped files were not downloaded (boundary pieces aside).
    expect(node.engine.download(infoHash)!.totals.down).toBeLessThan(made.totalLength - 1_500_000)
  })
})
