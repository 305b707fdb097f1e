/**
 * The engine finds libtorrent, and libtorrent finds the engine, through the DHT alone: no tracker in the torrent, no
 * peer added by hand, no LSD or PEX to learn from. Each libtorrent session is bootstrapped from the engine's DHT node
 * on loopback only, and the engine's DHT knows no bootstrap node at all (the public routers are never used without
 * the public network), so the two DHT nodes form a network of their own.
 */
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startEngine, type TestEngine } from '../support/engine.js'
import {
  createTorrent,
  LibtorrentPeer,
  type LibtorrentTorrent,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'

const ANNOUNCE_EVERY_MS = 3000

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function tempDir(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'engine-dht-lt-'))
  cleanup.push(() => fsp.rm(dir, { recursive: true, force: true }))
  return dir
}

/** An engine with its DHT on and no bootstrap node: it learns of other nodes only when they contact it. */
async function dhtEngineAt(stateDir: string, host: string): Promise<TestEngine> {
  await fsp.mkdir(stateDir, { recursive: true })
  const node = await startEngine({
    stateDir,
    host,
    settings: { libtorrent: { dht: true } },
    dhtBootstrap: [],
  })
  cleanup.push(() => node.stop())
  expect(node.engine.dht).toBeDefined()
  return node
}

/**
 * Polls `predicate` until it holds; every {@link ANNOUNCE_EVERY_MS} meanwhile, `tick` runs (libtorrent announces into
 * the DHT at start and then only every 15 minutes, so the test asks it again).
 */
async function until(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  tick?: () => Promise<unknown>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let nextTick = 0
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    if (tick !== undefined && Date.now() >= nextTick) {
      nextTick = Date.now() + ANNOUNCE_EVERY_MS
      await tick()
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function expectSameFiles(contents: Map<string, Buffer>, dir: string): Promise<void> {
  for (const [relative, data] of contents) {
    const got = await fsp.readFile(path.join(dir, relative))
    expect(got.length).toBe(data.length)
    expect(got.equals(data)).toBe(true)
  }
}

/** Random files and a torrent of them without trackers, made by libtorrent. */
async function share(
  tmp: string,
  sizes: Record<string, number>,
): Promise<{ made: LibtorrentTorrent; contents: Map<string, Buffer>; seedDir: string; bytes: Buffer }> {
  const seedDir = path.join(tmp, 'seed')
  const files = await writeRandomFiles(path.join(seedDir, 'share'), sizes)
  const contents = new Map([...files].map(([k, v]) => [path.join('share', k), v]))
  const made = await createTorrent({
    path: path.join(seedDir, 'share'),
    out: path.join(tmp, 's.torrent'),
    pieceLength: 262_144,
  })
  const bytes = await fsp.readFile(made.torrentPath)
  expect(bytes.includes(Buffer.from('announce'))).toBe(false)
  return { made, contents, seedDir, bytes }
}

describe.skipIf(!libtorrentAvailable())('BitTorrentEngine and libtorrent through the DHT alone', () => {
  it('finds a libtorrent seeder through the DHT and downloads every byte', async () => {
    const tmp = await tempDir()
    const { made, contents, seedDir, bytes } = await share(tmp, { 'a.bin': 4_000_000, 'b/c.bin': 33_333 })
    const node = await dhtEngineAt(path.join(tmp, 'state'), '127.0.0.85')
    const seeder = await LibtorrentPeer.start({
      host: '127.0.0.86',
      dht: { bootstrap: [{ host: '127.0.0.85', port: node.engine.port }] },
    })
    cleanup.push(() => seeder.stop())
    await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
    await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)
    const dht = node.engine.dht!
    await until(() => dht.nodes().some((n) => n.host === seeder.host), 60_000, 'libtorrent in our DHT table')

    const out = path.join(tmp, 'out')
    const { infoHash } = await node.engine.add({
      source: { kind: 'torrent', torrent: bytes },
      destination: out,
    })
    expect(infoHash).toBe(made.infoHash)
    try {
      await until(
        () => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING',
        120_000,
        'the download',
        () => seeder.dhtAnnounce(),
      )
    } catch (err) {
      throw new Error(`${String(err)}; libtorrent alerts: ${JSON.stringify(seeder.alerts.slice(-20))}`)
    }
    await expectSameFiles(contents, out)
    const handle = node.engine.get(infoHash)!
    // Our own lookups named the seeder (not only the seeder dialling us after finding us).
    expect(handle.status().trackers.find((t) => t.url === '[DHT]')?.peers).toBeGreaterThan(0)
    expect(handle.status().trackers.filter((t) => !t.url.startsWith('['))).toEqual([])
    expect(node.engine.download(infoHash)!.totals.hashFailures).toBe(0)
    expect(dht.nodes().every((n) => n.host.startsWith('127.'))).toBe(true)
  })

  it('seeds to a libtorrent leecher that finds it through the DHT', async () => {
    const tmp = await tempDir()
    const { made, contents, seedDir, bytes } = await share(tmp, { 'a.bin': 4_000_000, 'd.txt': 4321 })
    const node = await dhtEngineAt(path.join(tmp, 'state'), '127.0.0.87')
    const { infoHash } = await node.engine.add({
      source: { kind: 'torrent', torrent: bytes },
      destination: seedDir,
    })
    await until(() => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING', 30_000, 'check')

    const leecher = await LibtorrentPeer.start({
      host: '127.0.0.88',
      dht: { bootstrap: [{ host: '127.0.0.87', port: node.engine.port }] },
    })
    cleanup.push(() => leecher.stop())
    const dht = node.engine.dht!
    await until(() => dht.nodes().some((n) => n.host === leecher.host), 60_000, 'libtorrent in our DHT table')
    const out = path.join(tmp, 'lt-out')
    await leecher.addTorrent({ torrentPath: made.torrentPath, savePath: out })
    try {
      await until(
        async () => (await leecher.status()).torrents[0]?.isSeeding === true,
        120_000,
        'libtorrent to finish',
        () => leecher.dhtAnnounce(),
      )
    } catch (err) {
      throw new Error(`${String(err)}; libtorrent alerts: ${JSON.stringify(leecher.alerts.slice(-20))}`)
    }
    await expectSameFiles(contents, out)
    // libtorrent's own DHT lookups named us (whoever then dialled whom).
    const fromDht = leecher.alerts
      .filter((a) => a.type === 'dht_reply_alert')
      .map((a) => Number(/received DHT peers: (\d+)/.exec(a.message)?.[1] ?? 0))
    expect(Math.max(0, ...fromDht)).toBeGreaterThan(0)
    expect(node.engine.download(infoHash)!.totals.up).toBeGreaterThanOrEqual(made.totalLength)
    expect(dht.nodes().every((n) => n.host.startsWith('127.'))).toBe(true)
  })
})
