import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildApiServer } from '../../src/api/index.js'
import { ROUTE_MODULES } from '../../src/api/routes/index.js'
import {
  BitTorrentEngine,
  DOWNLOAD_MANAGER_SERVICE,
  isDownloadManager,
} from '../../src/bittorrent/engine/index.js'
import { configureLogging } from '../../src/common/index.js'
import { TorrentService } from '../../src/content/torrents/index.js'
import { buildTorrent } from '../../src/content/torrents/testing.js'
import { Session } from '../../src/session/index.js'

configureLogging({ level: 'silent' })

const sessions: Session[] = []
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.stop()))
})

describe('the torrent store in a core with the BitTorrent engine', () => {
  it('learns the torrents of downloads, and leaves downloads out of /torrents/random', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tribler-store-engine-'))
    const session = new Session({ stateDir: join(tmp, 'state'), publicNetwork: false })
    sessions.push(session)
    session.config.override('libtorrent', 'dht', false)
    const engine = session.addService(
      (deps) => new BitTorrentEngine(deps, { listenHost: '127.0.0.1', port: 0 }),
    )
    session.addService(
      (deps) =>
        new TorrentService(deps, {
          downloads: () => {
            const manager = session.service(DOWNLOAD_MANAGER_SERVICE)
            return isDownloadManager(manager) ? manager : undefined
          },
        }),
    )
    const { app } = await buildApiServer(session, { routes: ROUTE_MODULES })
    await session.start()

    const downloaded = buildTorrent({
      name: 'clip',
      files: [{ path: 'clip', size: 100_000 }],
      trackers: [['http://127.0.0.1:1/announce']],
    })
    const { infoHash } = await engine.add({
      source: { kind: 'torrent', torrent: downloaded },
      destination: join(tmp, 'downloads'),
    })
    await vi.waitFor(
      async () => {
        const res = await app.inject({ method: 'GET', url: `/torrents/${infoHash}` })
        expect(res.statusCode).toBe(200)
        expect(res.json()).toMatchObject({
          infohash: infoHash,
          name: 'clip',
          size: 100_000,
          files: [{ path: 'clip', size: 100_000 }],
          trackers: ['http://127.0.0.1:1/announce', 'DHT'],
        })
      },
      { timeout: 20_000, interval: 100 },
    )

    const torrents = session.service<TorrentService>('torrents')
    const other = torrents?.remember(buildTorrent({ name: 'other', files: [{ path: 'other', size: 10 }] }))
    const random = await app.inject({ method: 'GET', url: '/torrents/random?limit=10' })
    expect(random.json().torrents.map((t: { infohash: string }) => t.infohash)).toEqual([other?.infohash])

    await engine.remove(infoHash, { removeData: true })
    const after = await app.inject({ method: 'GET', url: '/torrents/random?limit=10' })
    expect(after.json().torrents).toHaveLength(2)
  })
})
