import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildApiServer } from '../../src/api/index.js'
import { ROUTE_MODULES } from '../../src/api/routes/index.js'
import { configureLogging } from '../../src/common/index.js'
import { TorrentService } from '../../src/content/torrents/index.js'
import { createTorrent } from '../../src/metainfo/index.js'
import { Session } from '../../src/session/index.js'
import { LibtorrentPeer, libtorrentAvailable, writeRandomFiles } from '../support/libtorrent.js'
import { opentrackerAvailable, startOpentracker, startUdpTracker } from '../support/tracker-servers.js'

configureLogging({ level: 'silent' })

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

async function core(): Promise<{ app: FastifyInstance; torrents: TorrentService }> {
  const session = new Session({
    stateDir: mkdtempSync(join(tmpdir(), 'tribler-health-')),
    publicNetwork: false,
  })
  cleanups.push(() => session.stop())
  const torrents = session.addService((deps) => new TorrentService(deps, { udpRetransmitBaseMs: 1000 }))
  const { app } = await buildApiServer(session, { routes: ROUTE_MODULES })
  await session.start()
  return { app, torrents }
}

/** Polls the health endpoint (with refresh) until `tracker` reports a seeder; returns that answer. */
async function healthOnceSeeded(app: FastifyInstance, infohash: string, tracker: string) {
  let last: unknown
  await vi.waitFor(
    async () => {
      const res = await app.inject({
        method: 'GET',
        url: `/torrents/${infohash}/health?refresh=1&timeout=10`,
      })
      expect(res.statusCode).toBe(200)
      last = res.json().health
      expect((last as Record<string, { seeders?: number }>)[tracker]?.seeders).toBe(1)
    },
    { timeout: 60_000, interval: 500 },
  )
  return last as Record<string, unknown>
}

describe.skipIf(!libtorrentAvailable() || !opentrackerAvailable())(
  'torrent health of a real libtorrent seeder',
  () => {
    it('sees the seeder on opentracker over an HTTP scrape and on a UDP tracker over a UDP scrape', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tribler-health-seed-'))
      await writeRandomFiles(dir, { 'seed.bin': 300_000 })
      const udpTracker = await startUdpTracker('127.0.0.51', '::1')
      cleanups.push(() => udpTracker.stop())
      const udpUrl = `udp://127.0.0.51:${udpTracker.port}`
      // libtorrent announces to the first working tier only: one torrent per tracker (different piece sizes make
      // different infohashes of the same file).
      const viaUdp = await createTorrent(join(dir, 'seed.bin'), { pieceLength: 16_384, trackers: [[udpUrl]] })
      // opentracker serves whitelisted infohashes only; the trackers are outside the info dictionary
      const provisional = await createTorrent(join(dir, 'seed.bin'), { pieceLength: 32_768 })
      const opentracker = await startOpentracker('127.0.0.52', [provisional.info.infoHash])
      cleanups.push(() => opentracker.stop())
      const httpUrl = `${opentracker.url}/announce`
      const viaHttp = await createTorrent(join(dir, 'seed.bin'), {
        pieceLength: 32_768,
        trackers: [[httpUrl]],
      })
      expect(viaHttp.info.infoHashHex).toBe(provisional.info.infoHashHex)

      const seeder = await LibtorrentPeer.start({ host: '127.0.0.53' })
      cleanups.push(() => seeder.stop())
      for (const created of [viaUdp, viaHttp]) {
        const file = join(dir, `${created.info.infoHashHex}.torrent`)
        writeFileSync(file, created.torrent)
        await seeder.addTorrent({ torrentPath: file, savePath: dir })
      }
      await seeder.waitFor((s) => s.torrents.length === 2 && s.torrents.every((t) => t.state === 'seeding'))

      const { app, torrents } = await core()
      torrents.remember(viaUdp.torrent)
      torrents.remember(viaHttp.torrent)

      const overHttp = await healthOnceSeeded(app, viaHttp.info.infoHashHex, httpUrl)
      expect(overHttp[httpUrl]).toEqual({ seeders: 1, leechers: 0, infohash: viaHttp.info.infoHashHex })
      expect(overHttp.DHT).toEqual({ error: 'DHT not available' })
      const overUdp = await healthOnceSeeded(app, viaUdp.info.infoHashHex, udpUrl)
      expect(overUdp[udpUrl]).toEqual({ seeders: 1, leechers: 0, infohash: viaUdp.info.infoHashHex })

      const stored = (await app.inject({ method: 'GET', url: `/torrents/${viaUdp.info.infoHashHex}` })).json()
      expect(stored).toMatchObject({ num_seeders: 1, num_leechers: 0, trackers: [udpUrl, 'DHT'] })
    })
  },
)
