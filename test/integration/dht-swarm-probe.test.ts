import { mkdtempSync } from 'node:fs'
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { buildApiServer } from '../../src/api/index.js'
import { ROUTE_MODULES } from '../../src/api/routes/index.js'
import { makeTorrent, until } from '../../src/bittorrent/download/swarm.test-support.js'
import { EngineError, torrentFileOf } from '../../src/bittorrent/engine/index.js'
import { configureLogging } from '../../src/common/index.js'
import { TorrentService } from '../../src/content/torrents/index.js'
import { buildTorrent } from '../../src/content/torrents/testing.js'
import { Session } from '../../src/session/index.js'
import { startEngine, type TestEngine } from '../support/engine.js'

configureLogging({ level: 'silent' })

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function tempDir(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'dht-probe-it-'))
  cleanup.push(() => fsp.rm(dir, { recursive: true, force: true }))
  return dir
}

async function engineAt(
  stateDir: string,
  host: string,
  extra: Partial<Parameters<typeof startEngine>[0]> = {},
): Promise<TestEngine> {
  await fsp.mkdir(stateDir, { recursive: true })
  const node = await startEngine({ stateDir, host, ...extra })
  cleanup.push(() => node.stop())
  return node
}

/** Retries `attempt` (each bounded by its own timeout) until it answers true, at most `timeoutMs`. */
async function retry(attempt: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await attempt())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
  }
}

const DHT = { settings: { libtorrent: { dht: true } } }

/** A seeding engine with the DHT on, and a second one whose DHT starts from the first. */
async function seederAndProber(seedHost: string, probeHost: string) {
  const t = await makeTorrent({ 'a.bin': 300_000 }, { pieceLength: 32_768 })
  cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
  const base = await tempDir()
  const seeder = await engineAt(path.join(base, 'seeder'), seedHost, DHT)
  const prober = await engineAt(path.join(base, 'prober'), probeHost, {
    ...DHT,
    dhtBootstrap: [{ host: seedHost, port: seeder.engine.port }],
  })
  const torrentFile = torrentFileOf(t.torrent, [])
  const { infoHash } = await seeder.engine.add({
    source: { kind: 'torrent', torrent: torrentFile },
    destination: t.seedDir,
  })
  await until(
    () => seeder.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING',
    20_000,
    'seeder check',
  )
  return { seeder, prober, infoHash, torrentFile }
}

/** A core answering REST with the torrent checker, whose download manager is `node`'s engine. */
async function core(node: TestEngine) {
  const session = new Session({
    stateDir: mkdtempSync(path.join(tmpdir(), 'dht-probe-core-')),
    publicNetwork: false,
  })
  cleanup.push(() => session.stop())
  const torrents = session.addService((deps) => new TorrentService(deps, { downloads: () => node.engine }))
  const { app } = await buildApiServer(session, { routes: ROUTE_MODULES })
  await session.start()
  return { app, torrents }
}

describe('swarm health through the DHT, between engines on loopback', () => {
  it('finds the seeder of a torrent through the DHT alone and counts 1 seeder, 0 leechers', async () => {
    const { prober, infoHash } = await seederAndProber('127.0.0.121', '127.0.0.122')
    // The seeder's announce reaches the DHT some time after it starts seeding: probe until it is found.
    let health: { seeders: number; leechers: number } | undefined
    await retry(
      async () => {
        try {
          health = await prober.engine.probeSwarm(infoHash, { timeoutMs: 5000 })
          return true
        } catch (err) {
          if (err instanceof EngineError && err.code === 'METADATA_TIMEOUT') return false
          throw err
        }
      },
      60_000,
      'swarm found through the DHT',
    )
    expect(health).toEqual({ seeders: 1, leechers: 0 })
    // The probe leaves no download behind.
    expect(prober.engine.get(infoHash)).toBeUndefined()
  })

  it('rejects an infohash nobody has with METADATA_TIMEOUT, and is DHT_DISABLED without the DHT', async () => {
    const base = await tempDir()
    const node = await engineAt(path.join(base, 'a'), '127.0.0.123', DHT)
    const unknown = 'ab'.repeat(20)
    const err = await node.engine.probeSwarm(unknown, { timeoutMs: 1500 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EngineError)
    expect((err as EngineError).code).toBe('METADATA_TIMEOUT')
    const noDht = await engineAt(path.join(base, 'b'), '127.0.0.123')
    const off = await noDht.engine.probeSwarm(unknown, { timeoutMs: 1500 }).catch((e: unknown) => e)
    expect((off as EngineError).code).toBe('DHT_DISABLED')
  })

  it('answers GET /torrents/{infohash}/health with the DHT entry from the engine', async () => {
    const { prober, infoHash, torrentFile } = await seederAndProber('127.0.0.124', '127.0.0.125')
    const session = new Session({
      stateDir: mkdtempSync(path.join(tmpdir(), 'dht-probe-core-')),
      publicNetwork: false,
    })
    cleanup.push(() => session.stop())
    const torrents = session.addService(
      (deps) => new TorrentService(deps, { downloads: () => prober.engine }),
    )
    const { app } = await buildApiServer(session, { routes: ROUTE_MODULES })
    await session.start()
    torrents.remember(torrentFile)
    let body: unknown
    await retry(
      async () => {
        const res = await app.inject({
          method: 'GET',
          url: `/torrents/${infoHash}/health?refresh=1&timeout=5`,
        })
        expect(res.statusCode).toBe(200)
        body = res.json()
        return !('error' in (body as { health: { DHT: object } }).health.DHT)
      },
      60_000,
      'health through the DHT',
    )
    expect(body).toEqual({ health: { DHT: { seeders: 1, leechers: 0, infohash: infoHash } } })
    expect(torrents.get(infoHash)).toMatchObject({ numSeeders: 1, numLeechers: 0 })
    // Nobody has this one: the DHT entry times out within the request's timeout.
    const lonely = torrents.remember(buildTorrent({ name: 'lonely', files: [{ path: 'lonely', size: 5 }] }))
    const res = await app.inject({
      method: 'GET',
      url: `/torrents/${lonely.infohash}/health?refresh=1&timeout=1`,
    })
    expect(res.json()).toEqual({ health: { DHT: { error: 'DHT timeout' } } })
  })

  it('reports the DHT entry as not available when the engine runs without the DHT', async () => {
    const base = await tempDir()
    const { app, torrents } = await core(await engineAt(path.join(base, 'a'), '127.0.0.126'))
    const known = torrents.remember(buildTorrent({ name: 'nodht', files: [{ path: 'nodht', size: 5 }] }))
    const res = await app.inject({
      method: 'GET',
      url: `/torrents/${known.infohash}/health?refresh=1&timeout=5`,
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ health: { DHT: { error: 'DHT not available' } } })
  })
})
