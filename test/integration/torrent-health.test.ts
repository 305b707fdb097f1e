import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Server } from 'bittorrent-tracker'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { buildApiServer } from '../../src/api/index.js'
import { ROUTE_MODULES } from '../../src/api/routes/index.js'
import { UdpTrackerClient } from '../../src/bittorrent/tracker/index.js'
import { configureLogging } from '../../src/common/index.js'
import { TorrentService } from '../../src/content/torrents/index.js'
import { buildTorrent } from '../../src/content/torrents/testing.js'
import { parseTorrent } from '../../src/metainfo/index.js'
import { udpTransport } from '../../src/net/index.js'
import { Session } from '../../src/session/index.js'
import { announceRequest, freePort } from '../support/tracker-servers.js'

configureLogging({ level: 'silent' })

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

// HTTP scrapes are tested against opentracker (test/interop): this server's HTTP scrape mangles binary infohashes.
/** The UDP side of the npm `bittorrent-tracker` server on a loopback address. */
async function startTracker(host: string): Promise<{ udp: string }> {
  const port = await freePort(host)
  const server = new Server({ http: false, udp: true, ws: false, stats: false, interval: 60_000 })
  server.on('error', () => undefined)
  server.on('warning', () => undefined)
  await new Promise<void>((resolve) => server.listen(port, { udp: host }, () => resolve()))
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { udp: `udp://${host}:${port}` }
}

async function core(): Promise<{ app: FastifyInstance; torrents: TorrentService }> {
  const session = new Session({
    stateDir: mkdtempSync(join(tmpdir(), 'tribler-health-')),
    publicNetwork: false,
  })
  cleanups.push(() => session.stop())
  const torrents = session.addService((deps) => new TorrentService(deps, { udpRetransmitBaseMs: 500 }))
  const { app } = await buildApiServer(session, { routes: ROUTE_MODULES })
  await session.start()
  return { app, torrents }
}

describe('torrent health against real trackers on loopback', () => {
  it('scrapes every tracker at once, reports a dead one as an error and stores the best answer', async () => {
    const tracker = await startTracker('127.0.0.41')
    const dead = `http://127.0.0.41:${await freePort('127.0.0.41')}/announce`
    const torrent = buildTorrent({
      name: 'health',
      files: [{ path: 'health', size: 100_000 }],
      trackers: [[tracker.udp], [dead]],
    })
    const infoHash = parseTorrent(torrent).infoHash
    const hex = Buffer.from(infoHash).toString('hex')

    // One seeder and two leechers in the swarm.
    const socket = await udpTransport.bind({ host: '127.0.0.42', port: 0 })
    cleanups.push(() => socket.close())
    const udp = new UdpTrackerClient({ socket }, { retransmitBaseMs: 500, maxRetransmits: 3 })
    await udp.announce(tracker.udp, announceRequest(infoHash, 7201, { left: 0 }))
    await udp.announce(tracker.udp, announceRequest(infoHash, 7202, { left: 10 }))
    await udp.announce(tracker.udp, announceRequest(infoHash, 7203, { left: 10 }))
    udp.close()

    const { app, torrents } = await core()
    torrents.remember(torrent)
    const res = await app.inject({ method: 'GET', url: `/torrents/${hex}/health?timeout=10` })
    expect(res.statusCode).toBe(200)
    const { health } = res.json()
    expect(health[tracker.udp]).toEqual({ seeders: 1, leechers: 2, infohash: hex })
    expect(health[dead]).toEqual({ error: expect.any(String) })
    expect(health.DHT).toEqual({ error: 'DHT not available' })

    const stored = (await app.inject({ method: 'GET', url: `/torrents/${hex}` })).json()
    expect(stored).toMatchObject({ num_seeders: 1, num_leechers: 2 })
    expect(stored.last_tracker_check).toBeGreaterThan(0)
    const cached = await app.inject({ method: 'GET', url: `/torrents/${hex}/health` })
    expect(cached.json()).toEqual({ health: { db: { seeders: 1, leechers: 2, infohash: hex } } })
  })

  it('counts nobody for a torrent the tracker does not know', async () => {
    const tracker = await startTracker('127.0.0.43')
    const torrent = buildTorrent({
      name: 'unknown-here',
      files: [{ path: 'unknown-here', size: 1000 }],
      trackers: [[tracker.udp]],
      private: true,
    })
    const { app, torrents } = await core()
    const known = torrents.remember(torrent)
    const res = await app.inject({ method: 'GET', url: `/torrents/${known.infohash}/health?refresh=1` })
    expect(res.json()).toEqual({
      health: { [tracker.udp]: { seeders: 0, leechers: 0, infohash: known.infohash } },
    })
  })
})
