import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildApiServer, fileUri } from '../../src/api/index.js'
import { BitTorrentEngine } from '../../src/bittorrent/engine/index.js'
import { configureLogging } from '../../src/common/index.js'
import { createTorrent } from '../../src/metainfo/index.js'
import { Session } from '../../src/session/index.js'

configureLogging({ level: 'silent' })

const sessions: Session[] = []
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.stop()))
})

async function core(
  settings: Record<string, Record<string, unknown>>,
): Promise<{ app: FastifyInstance; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tribler-rest-engine-'))
  const session = new Session({ stateDir: join(dir, 'state'), publicNetwork: false })
  sessions.push(session)
  session.updateSettings({
    libtorrent: { dht: false },
    download_defaults: { saveas: join(dir, 'default') },
    ...settings,
  })
  session.addService((deps) => new BitTorrentEngine(deps, { listenHost: '127.0.0.1', port: 0 }))
  const { app } = await buildApiServer(session)
  await session.start()
  return { app, dir }
}

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}

describe('the /downloads routes on the real engine in a core', () => {
  it('answers clearly while BitTorrent is disabled', async () => {
    const { app } = await core({ libtorrent: { enabled: false } })
    expect((await app.inject({ method: 'GET', url: '/downloads' })).json()).toEqual({ downloads: [] })
    const put = await app.inject({
      method: 'PUT',
      url: '/downloads',
      payload: form({ uri: `magnet:?xt=urn:btih:${'ab'.repeat(20)}` }),
    })
    expect(put.statusCode).toBe(500)
    expect(put.json()).toEqual({
      error: { handled: true, code: 'RuntimeError', message: 'BitTorrent engine is not running' },
    })
  })

  it('adds a .torrent whose data is on disk, seeds it after the check, exports, stops, resumes and removes it with its data', async () => {
    const { app, dir } = await core({})
    const data = join(dir, 'share', 'film')
    mkdirSync(data, { recursive: true })
    writeFileSync(join(data, 'a.bin'), Buffer.alloc(100_000, 3))
    writeFileSync(join(data, 'b.bin'), Buffer.alloc(50_000, 4))
    const { torrent, info } = await createTorrent(data)
    const torrentPath = join(dir, 'film.torrent')
    writeFileSync(torrentPath, torrent)
    const ih = info.infoHashHex

    const put = await app.inject({
      method: 'PUT',
      url: '/downloads',
      payload: form({ uri: fileUri(torrentPath), destination: join(dir, 'share') }),
    })
    expect(put.json()).toEqual({ started: true, infohash: ih })
    const list = async () =>
      (await app.inject({ method: 'GET', url: '/downloads?get_files=1' })).json().downloads
    await vi.waitFor(
      async () => expect((await list())[0]).toMatchObject({ status: 'DLSTATUS_SEEDING', progress: 1 }),
      {
        timeout: 30_000,
        interval: 100,
      },
    )
    expect((await list())[0]).toMatchObject({
      name: 'film',
      infohash: ih,
      size: 150_000,
      destination: join(dir, 'share'),
      files: [
        { index: 0, name: 'film/a.bin', size: 100_000, included: true, progress: 1 },
        { index: 1, name: 'film/b.bin', size: 50_000, included: true, progress: 1 },
      ],
    })

    const exported = await app.inject({ method: 'GET', url: `/downloads/${ih}/torrent` })
    expect(exported.rawPayload.equals(torrent)).toBe(true)

    await app.inject({ method: 'PATCH', url: `/downloads/${ih}`, payload: 'state=stop' })
    await vi.waitFor(async () => expect((await list())[0]?.status).toBe('DLSTATUS_STOPPED'), {
      timeout: 30_000,
      interval: 100,
    })
    await app.inject({ method: 'PATCH', url: `/downloads/${ih}`, payload: 'state=recheck' })
    await app.inject({ method: 'PATCH', url: `/downloads/${ih}`, payload: 'state=resume' })
    await vi.waitFor(async () => expect((await list())[0]?.status).toBe('DLSTATUS_SEEDING'), {
      timeout: 30_000,
      interval: 100,
    })

    const removed = await app.inject({ method: 'DELETE', url: `/downloads/${ih}`, payload: 'remove_data=1' })
    expect(removed.json()).toEqual({ removed: true, infohash: ih })
    expect(await list()).toEqual([])
    await vi.waitFor(() => expect(existsSync(join(data, 'a.bin'))).toBe(false), {
      timeout: 30_000,
      interval: 100,
    })
    // the .torrent itself is not data of the download
    expect(readFileSync(torrentPath).equals(torrent)).toBe(true)
  })
})
