import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { configureLogging } from '../../common/index.js'
import { TorrentService } from '../../content/torrents/index.js'
import { buildTorrent } from '../../content/torrents/testing.js'
import { parseTorrent } from '../../metainfo/index.js'
import { Session } from '../../session/index.js'
import { buildApiServer } from '../server.js'
import { ROUTE_MODULES } from './index.js'

configureLogging({ level: 'silent' })

const open: Session[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.stop()))
})

async function setup(): Promise<{ app: FastifyInstance; torrents: TorrentService; session: Session }> {
  const session = new Session({
    stateDir: mkdtempSync(join(tmpdir(), 'tribler-torrents-api-')),
    publicNetwork: false,
  })
  open.push(session)
  const torrents = session.addService((deps) => new TorrentService(deps))
  const { app } = await buildApiServer(session, { routes: ROUTE_MODULES })
  await session.start()
  return { app, torrents, session }
}

const MIB = 1024 * 1024
const show = buildTorrent({
  name: 'Show',
  files: [
    { path: 'ep1.mkv', size: 300 * MIB },
    { path: 'extras/notes.txt', size: 1000 },
  ],
  trackers: [['http://127.0.0.1:1/announce']],
})
const showHash = parseTorrent(show).infoHashHex

describe('GET /torrents/{infohash}', () => {
  it('answers a known torrent with its files (path and size) and trackers including DHT', async () => {
    const { app, torrents } = await setup()
    const known = torrents.remember(show)
    const res = await app.inject({ method: 'GET', url: `/torrents/${showHash}` })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({
      id: known.id,
      infohash: showHash,
      name: 'Show',
      size: 300 * MIB + 1000,
      category: 'Video',
      num_seeders: 0,
      num_leechers: 0,
      last_tracker_check: 0,
      files: [
        { path: 'ep1.mkv', size: 300 * MIB },
        { path: 'extras/notes.txt', size: 1000 },
      ],
      trackers: ['http://127.0.0.1:1/announce', 'DHT'],
    })
    expect((await app.inject({ method: 'GET', url: `/torrents/${showHash.toUpperCase()}` })).statusCode).toBe(
      200,
    )
  })

  it('is 404 "Unknown torrent" for an unknown infohash and for valid hex of another length', async () => {
    const { app } = await setup()
    for (const id of ['ab'.repeat(20), 'abcd']) {
      const res = await app.inject({ method: 'GET', url: `/torrents/${id}` })
      expect(res.statusCode).toBe(404)
      expect(res.json()).toEqual({ error: 'Unknown torrent' })
    }
  })

  it('is 400 "invalid infohash" for text that is not hex', async () => {
    const { app } = await setup()
    for (const id of ['xyz', 'abc', `${'a'.repeat(39)}g`]) {
      const res = await app.inject({ method: 'GET', url: `/torrents/${id}` })
      expect(res.statusCode).toBe(400)
      expect(res.json()).toEqual({ error: 'invalid infohash' })
    }
  })
})

describe('GET /torrents/{infohash}/trackers', () => {
  it('lists the trackers, or 404 "torrent not found in database"', async () => {
    const { app, torrents } = await setup()
    torrents.remember(show)
    const res = await app.inject({ method: 'GET', url: `/torrents/${showHash}/trackers` })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ trackers: ['http://127.0.0.1:1/announce', 'DHT'] })
    const missing = await app.inject({ method: 'GET', url: `/torrents/${'0'.repeat(40)}/trackers` })
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toEqual({ error: 'torrent not found in database' })
    expect((await app.inject({ method: 'GET', url: '/torrents/zz/trackers' })).statusCode).toBe(400)
  })
})

describe('GET /torrents/random', () => {
  it('gives at most `limit` known torrents (default 10) as torrent objects', async () => {
    const { app, torrents } = await setup()
    for (let i = 0; i < 12; i++)
      torrents.remember(buildTorrent({ name: `t${i}`, files: [{ path: `t${i}`, size: 10 }] }))
    const all = await app.inject({ method: 'GET', url: '/torrents/random' })
    expect(all.statusCode).toBe(200)
    expect(all.json().torrents).toHaveLength(10)
    const two = (await app.inject({ method: 'GET', url: '/torrents/random?limit=2' })).json()
    expect(two.torrents).toHaveLength(2)
    expect(Object.keys(two.torrents[0]).sort()).toEqual(
      [
        'category',
        'id',
        'infohash',
        'last_tracker_check',
        'name',
        'num_leechers',
        'num_seeders',
        'size',
      ].sort(),
    )
  })

  it('is 400 for a limit that is not a positive number', async () => {
    const { app } = await setup()
    for (const limit of ['0', '-3', 'ten', '']) {
      const res = await app.inject({ method: 'GET', url: `/torrents/random?limit=${limit}` })
      expect(res.statusCode).toBe(400)
      expect(res.json()).toEqual({ error: 'the limit parameter must be a positive number' })
    }
  })
})

describe('GET /torrents/{infohash}/health', () => {
  it('is 404 "torrent not found in database" for an unknown torrent', async () => {
    const { app } = await setup()
    const res = await app.inject({ method: 'GET', url: `/torrents/${'1'.repeat(40)}/health` })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toEqual({ error: 'torrent not found in database' })
  })

  it('is 400 when the torrent has no tracker to ask', async () => {
    const { app, torrents } = await setup()
    const lonely = torrents.remember(
      buildTorrent({ name: 'lonely', files: [{ path: 'lonely', size: 5 }], private: true }),
    )
    const res = await app.inject({ method: 'GET', url: `/torrents/${lonely.infohash}/health` })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ error: 'No trackers available for this torrent' })
  })

  it('reports the DHT honestly as not available', async () => {
    const { app, torrents } = await setup()
    const dhtOnly = torrents.remember(buildTorrent({ name: 'dht', files: [{ path: 'dht', size: 5 }] }))
    const res = await app.inject({ method: 'GET', url: `/torrents/${dhtOnly.infohash}/health?refresh=1` })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ health: { DHT: { error: 'DHT not available' } } })
    expect(torrents.get(dhtOnly.infohash)?.lastTrackerCheck).toBeGreaterThan(0)
  })

  it('answers from the database ("db") after a recent check unless refresh=1', async () => {
    const { app, torrents, session } = await setup()
    const known = torrents.remember(show)
    const nowSec = Math.floor(session.clock.now() / 1000)
    torrents.table.updateHealth(known.infohash, { seeders: 7, leechers: 3, checkedAtSec: nowSec - 60 })
    const res = await app.inject({ method: 'GET', url: `/torrents/${showHash}/health` })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ health: { db: { seeders: 7, leechers: 3, infohash: showHash } } })
    const torrent = await app.inject({ method: 'GET', url: `/torrents/${showHash}` })
    expect(torrent.json()).toMatchObject({ num_seeders: 7, num_leechers: 3, last_tracker_check: nowSec - 60 })
  })

  it('is 400 for a bad timeout and when torrent checking is disabled', async () => {
    const { app, torrents, session } = await setup()
    torrents.remember(show)
    for (const timeout of ['0', 'soon', '100000']) {
      const res = await app.inject({ method: 'GET', url: `/torrents/${showHash}/health?timeout=${timeout}` })
      expect(res.statusCode).toBe(400)
      expect(res.json().error).toMatch(/timeout/)
    }
    session.config.override('torrent_checking', 'enabled', false)
    const res = await app.inject({ method: 'GET', url: `/torrents/${showHash}/health?refresh=1` })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ error: 'torrent checking is disabled' })
  })
})
