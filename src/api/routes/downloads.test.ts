import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { decode } from '../../bencode/index.js'
import {
  type AddDownloadOptions,
  type AddDownloadResult,
  type DownloadEvents,
  type DownloadHandle,
  type DownloadManager,
  type DownloadStatus,
  EngineError,
  type FileStatus,
  type PeerStatus,
  type RateLimits,
} from '../../bittorrent/engine/index.js'
import { configureLogging, type Service, TypedEmitter } from '../../common/index.js'
import { TorrentService } from '../../content/torrents/index.js'
import { createTorrent, parseMagnet, parseTorrent, type TorrentInfo } from '../../metainfo/index.js'
import { Session } from '../../session/index.js'
import { buildApiServer } from '../server.js'
import { fileUri } from './gui.js'

configureLogging({ level: 'silent' })

// An in-process stand-in for the engine that records what the REST layer asks of it. It pins the HTTP mapping
// only; the real engine is exercised by the integration and interop tests.
class DownloadManagerDouble implements DownloadManager, Service {
  readonly name = 'bittorrent' as const
  readonly events = new TypedEmitter<DownloadEvents>()
  readonly downloads = new Map<string, HandleDouble>()
  readonly added: AddDownloadOptions[] = []
  readonly removed: Array<{ infoHash: string; removeData: boolean }> = []
  readonly hopChanges: Array<{ infoHash: string; hops: number }> = []
  /** Torrents fetchMetadata knows, by infohash; others time out. */
  readonly swarm = new Map<string, Uint8Array>()
  failRemove = false
  failAddHops: number | undefined

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async add(options: AddDownloadOptions): Promise<AddDownloadResult> {
    this.added.push(options)
    if (options.hops === this.failAddHops) throw new EngineError('ANON_NOT_SUPPORTED', {}, 'no circuits')
    const info = options.source.kind === 'torrent' ? parseTorrent(options.source.torrent) : undefined
    const infoHash =
      info?.infoHashHex ?? parseMagnet((options.source as { magnet: string }).magnet).infoHashHex
    if (this.downloads.has(infoHash)) return { infoHash, added: false }
    this.downloads.set(infoHash, new HandleDouble(infoHash, options, info))
    return { infoHash, added: true }
  }

  get(infoHash: string): DownloadHandle | undefined {
    return this.downloads.get(infoHash)
  }

  list(): readonly DownloadHandle[] {
    return [...this.downloads.values()]
  }

  async remove(infoHash: string, options: { readonly removeData: boolean }): Promise<boolean> {
    if (this.failRemove) throw new Error('disk on fire')
    this.removed.push({ infoHash, removeData: options.removeData })
    return this.downloads.delete(infoHash)
  }

  async setHops(infoHash: string, hops: number): Promise<boolean> {
    this.hopChanges.push({ infoHash, hops })
    const handle = this.downloads.get(infoHash)
    if (handle === undefined) return false
    if (hops === this.failAddHops) {
      throw new EngineError('ANON_NOT_SUPPORTED', {}, 'cannot change the hops: no circuits')
    }
    this.downloads.set(infoHash, new HandleDouble(infoHash, { ...handle.options, hops }, handle.info))
    return true
  }

  async fetchMetadata(magnet: string, options: { readonly timeoutMs: number }): Promise<Uint8Array> {
    const found = this.swarm.get(parseMagnet(magnet).infoHashHex)
    if (found === undefined) throw new EngineError('METADATA_TIMEOUT', { timeoutMs: options.timeoutMs })
    return found
  }

  rateLimits(): { readonly download: number; readonly upload: number } {
    return { download: 1000, upload: 2000 }
  }
}

class HandleDouble implements DownloadHandle {
  state: DownloadStatus['state']
  selected: number[]
  readonly calls: string[] = []
  limits: RateLimits

  constructor(
    readonly infoHash: string,
    readonly options: AddDownloadOptions,
    readonly info: TorrentInfo | undefined,
  ) {
    this.state = info === undefined ? 'DLSTATUS_METADATA' : 'DLSTATUS_DOWNLOADING'
    this.selected = [...(options.selectedFiles ?? info?.files.map((f) => f.index) ?? [])]
    this.limits = { downloadBytesPerSec: 0, uploadBytesPerSec: 0, ...options.rateLimits }
  }

  status(): DownloadStatus {
    return {
      infoHash: this.infoHash,
      name: this.info?.name ?? 'Unknown name',
      state: this.state,
      progress: 0.25,
      size: this.info?.totalLength ?? 0,
      speedDown: 10,
      speedUp: 5,
      totalDown: 100,
      totalUp: 50,
      ratio: 0.5,
      eta: 42,
      numPeers: 3,
      numSeeds: 2,
      numConnectedPeers: 1,
      numConnectedSeeds: 1,
      trackers: [{ url: '[DHT]', peers: 0, status: 'Working' }],
      hops: this.options.hops ?? 0,
      safeSeeding: this.options.safeSeeding ?? false,
      destination: this.options.destination ?? '/default',
      availability: 1.5,
      totalPieces: this.info?.pieceCount ?? 0,
      error: '',
      timeAdded: 1_700_000_000,
      hasMetadata: this.info !== undefined,
      rateLimits: this.limits,
    }
  }

  peers(): readonly PeerStatus[] {
    return [
      {
        id: '2d5452333030302d000000000000',
        client: 'Transmission 3.00',
        ip: '127.0.0.2',
        port: 51413,
        optimistic: false,
        weInterested: true,
        weChoked: false,
        peerInterested: true,
        peerChoked: true,
        snubbed: false,
        seed: true,
        uploadOnly: false,
        direction: 'L',
        upRate: 7,
        downRate: 9,
        totalUp: 70,
        totalDown: 90,
        completed: 1,
        connectionType: 1,
        encryption: 'none',
      },
    ]
  }

  files(): readonly FileStatus[] {
    return (this.info?.files ?? []).map((f) => ({
      index: f.index,
      name: f.path,
      size: f.length,
      included: this.selected.includes(f.index),
      progress: 0,
    }))
  }

  pieces(): Uint8Array {
    return Uint8Array.from([0b1010_0000])
  }

  torrentFile(): Uint8Array | undefined {
    return this.options.source.kind === 'torrent' ? this.options.source.torrent : undefined
  }

  async resume(): Promise<void> {
    this.calls.push('resume')
    this.state = 'DLSTATUS_DOWNLOADING'
  }

  async stop(): Promise<void> {
    this.calls.push('stop')
    this.state = 'DLSTATUS_STOPPED'
  }

  async recheck(): Promise<void> {
    this.calls.push('recheck')
  }

  async setSelectedFiles(indices: readonly number[]): Promise<void> {
    this.calls.push(`select ${indices.join(',')}`)
    this.selected = [...indices]
  }

  setRateLimits(limits: Partial<RateLimits>): void {
    this.calls.push(`limits ${limits.downloadBytesPerSec ?? '-'}/${limits.uploadBytesPerSec ?? '-'}`)
    this.limits = { ...this.limits, ...limits }
  }
}

const open: Array<{ session: Session; servers: Server[] }> = []
afterEach(async () => {
  for (const { session, servers } of open.splice(0)) {
    await session.stop()
    for (const server of servers) server.close()
  }
})

interface Setup {
  app: FastifyInstance
  manager: DownloadManagerDouble
  session: Session
  dir: string
  servers: Server[]
}

async function setup(opts: { engine?: boolean; torrentStore?: boolean } = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'tribler-dl-'))
  const session = new Session({ stateDir: join(dir, 'state'), publicNetwork: false })
  const servers: Server[] = []
  open.push({ session, servers })
  const manager = new DownloadManagerDouble()
  if (opts.engine !== false) session.addService(() => manager)
  if (opts.torrentStore === true) session.addService((deps) => new TorrentService(deps))
  const { app } = await buildApiServer(session)
  await session.start()
  return { app, manager, session, dir, servers }
}

/** A real two-file torrent made by our torrent maker, written to `<dir>/album.torrent`. */
async function albumTorrent(dir: string): Promise<{ path: string; bytes: Buffer; info: TorrentInfo }> {
  const album = join(dir, 'album')
  mkdirSync(join(album, 'cd1'), { recursive: true })
  writeFileSync(join(album, 'cd1', 'one.flac'), Buffer.alloc(40_000, 1))
  writeFileSync(join(album, 'two.flac'), Buffer.alloc(30_000, 2))
  const { torrent, info } = await createTorrent(album, { trackers: ['http://127.0.0.1:1/announce'] })
  const path = join(dir, 'my album.torrent')
  writeFileSync(path, torrent)
  return { path, bytes: torrent, info }
}

function form(fields: Record<string, string | string[]>): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(fields)) {
    for (const item of [value].flat()) params.append(key, item)
  }
  return params.toString()
}

async function put(app: FastifyInstance, fields: Record<string, string | string[]>) {
  return app.inject({ method: 'PUT', url: '/downloads', payload: form(fields) })
}

async function serve(s: Setup, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler)
  s.servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

const MAGNET_IH = 'c9e15763f722f23e98a29decdfae341b98d53056'

describe('OpenAPI description', () => {
  it('describes every download, torrent info and create route with its tag', async () => {
    const { app } = await setup()
    const { paths } = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const tags = (path: string, method: string) => paths[path]?.[method]?.tags
    expect(tags('/downloads', 'get')).toEqual(['downloads'])
    expect(tags('/downloads', 'put')).toEqual(['downloads'])
    for (const method of ['patch', 'delete'])
      expect(tags('/downloads/{infohash}', method)).toEqual(['downloads'])
    expect(tags('/downloads/{infohash}/torrent', 'get')).toEqual(['downloads'])
    expect(tags('/downloads/{infohash}/files', 'get')).toEqual(['downloads'])
    expect(tags('/torrentinfo', 'get')).toEqual(['torrentinfo'])
    expect(tags('/createtorrent', 'post')).toEqual(['torrentinfo'])
    expect(paths['/downloads/{infohash}/torrent'].get.responses['200'].content).toHaveProperty(
      'application/x-bittorrent',
    )
  })
})

describe('without the BitTorrent engine', () => {
  it('lists no downloads, knows none and cannot start one', async () => {
    const { app } = await setup({ engine: false })
    expect((await app.inject({ method: 'GET', url: '/downloads' })).json()).toEqual({ downloads: [] })
    const files = await app.inject({ method: 'GET', url: `/downloads/${MAGNET_IH}/files` })
    expect(files.statusCode).toBe(404)
    expect(files.json()).toEqual({ error: 'this download does not exist' })
    const res = await put(app, { uri: `magnet:?xt=urn:btih:${MAGNET_IH}` })
    expect(res.statusCode).toBe(500)
    expect(res.json()).toEqual({
      error: { handled: true, code: 'RuntimeError', message: 'BitTorrent engine is not running' },
    })
    const info = await app.inject({
      method: 'GET',
      url: `/torrentinfo?uri=${encodeURIComponent(`magnet:?xt=urn:btih:${MAGNET_IH}`)}`,
    })
    expect(info.statusCode).toBe(500)
    expect(info.json().error.message).toBe('BitTorrent engine is not running')
  })
})

describe('GET /downloads', () => {
  it('maps every field of a download, and peers, pieces and files on request', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    await put(s.app, { uri: fileUri(album.path), destination: join(s.dir, 'out') })
    const plain = (await s.app.inject({ method: 'GET', url: '/downloads' })).json()
    expect(plain).toEqual({
      downloads: [
        {
          name: 'album',
          progress: 0.25,
          infohash: album.info.infoHashHex,
          speed_down: 10,
          speed_up: 5,
          status: 'DLSTATUS_DOWNLOADING',
          size: 70_000,
          eta: 42,
          num_peers: 3,
          num_seeds: 2,
          num_connected_peers: 1,
          num_connected_seeds: 1,
          total_up: 50,
          total_down: 100,
          ratio: 0.5,
          trackers: [{ url: '[DHT]', peers: 0, status: 'Working' }],
          hops: 0,
          anon_download: false,
          safe_seeding: false,
          max_upload_speed: 2000,
          max_download_speed: 1000,
          download_limit: 0,
          upload_limit: 0,
          destination: join(s.dir, 'out'),
          availability: 1.5,
          total_pieces: album.info.pieceCount,
          vod_mode: false,
          vod_prebuffering_progress: 0,
          vod_prebuffering_progress_consec: 0,
          error: '',
          time_added: 1_700_000_000,
          credit_mining: false,
          channel_download: false,
        },
      ],
    })
    const full = (
      await s.app.inject({ method: 'GET', url: '/downloads?get_peers=1&get_pieces=1&get_files=1' })
    ).json().downloads[0]
    expect(full.pieces).toBe(Buffer.from([0b1010_0000]).toString('base64'))
    expect(full.files).toEqual([
      { index: 0, name: 'album/cd1/one.flac', size: 40_000, included: true, progress: 0 },
      { index: 1, name: 'album/two.flac', size: 30_000, included: true, progress: 0 },
    ])
    expect(full.peers).toEqual([
      {
        id: '2d5452333030302d000000000000',
        extended_version: 'Transmission 3.00',
        ip: '127.0.0.2',
        port: 51413,
        optimistic: false,
        direction: 'L',
        uprate: 7,
        uinterested: true,
        uchoked: false,
        uhasqueries: false,
        uflushed: false,
        downrate: 9,
        dinterested: true,
        dchoked: true,
        snubbed: false,
        utotal: 70,
        dtotal: 90,
        completed: 1,
        speed: 7,
        connection_type: 1,
        seed: true,
        upload_only: false,
      },
    ])
    const flagsNotOne = (await s.app.inject({ method: 'GET', url: '/downloads?get_peers=true' })).json()
    expect(flagsNotOne.downloads[0]).not.toHaveProperty('peers')
  })
})

describe('PUT /downloads', () => {
  it('rejects a missing or empty uri and anonymous hops without safe seeding', async () => {
    const { app, manager } = await setup()
    for (const body of [{}, { uri: '' }] as Array<Record<string, string>>) {
      const res = await put(app, body)
      expect(res.statusCode).toBe(400)
      expect(res.json()).toEqual({ error: 'uri parameter missing' })
    }
    const anon = await put(app, { uri: `magnet:?xt=urn:btih:${MAGNET_IH}`, anon_hops: '1' })
    expect(anon.statusCode).toBe(400)
    expect(anon.json()).toEqual({ error: 'Cannot set anonymous download without safe seeding enabled' })
    const tooMany = await put(app, {
      uri: `magnet:?xt=urn:btih:${MAGNET_IH}`,
      anon_hops: '4',
      safe_seeding: '1',
    })
    expect(tooMany.statusCode).toBe(400)
    expect(manager.added).toEqual([])
  })

  it('answers an unsupported scheme with 500 "invalid uri"', async () => {
    const { app } = await setup()
    const res = await put(app, { uri: 'abcd' })
    expect(res.statusCode).toBe(500)
    expect(res.json()).toEqual({ error: 'invalid uri' })
    expect((await put(app, { uri: 'ftp://example/x.torrent' })).json()).toEqual({ error: 'invalid uri' })
  })

  it('starts a .torrent from a percent-encoded file: URI with hops, safe seeding and destination', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    expect(fileUri(album.path)).toContain('%20')
    const res = await put(s.app, {
      uri: fileUri(album.path),
      anon_hops: '2',
      safe_seeding: '1',
      destination: join(s.dir, 'new', 'folder'),
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ started: true, infohash: album.info.infoHashHex })
    const added = s.manager.added[0]
    expect(added?.source).toEqual({ kind: 'torrent', torrent: album.bytes })
    expect(added).toMatchObject({ hops: 2, safeSeeding: true, destination: join(s.dir, 'new', 'folder') })
    // file:///path works too, and a non-digit anon_hops counts as 0
    await put(s.app, { uri: `file://${album.path}`, anon_hops: 'x1' })
    expect(s.manager.added[1]?.hops).toBe(0)
  })

  it('starts a download with its own rate limits, and rejects one that is not a whole number', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    const bad = await put(s.app, { uri: fileUri(album.path), upload_limit: '-5' })
    expect(bad.statusCode).toBe(400)
    expect(bad.json()).toEqual({
      error: 'upload_limit must be a whole number of bytes per second (0 = unlimited)',
    })
    expect(s.manager.added).toEqual([])
    const res = await put(s.app, { uri: fileUri(album.path), download_limit: '65536', upload_limit: '0' })
    expect(res.statusCode).toBe(200)
    expect(s.manager.added[0]?.rateLimits).toEqual({ downloadBytesPerSec: 65_536, uploadBytesPerSec: 0 })
    const listed = (await s.app.inject({ method: 'GET', url: '/downloads' })).json().downloads[0]
    expect(listed).toMatchObject({ download_limit: 65_536, upload_limit: 0 })
  })

  it('is idempotent for an infohash already downloading', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    for (let i = 0; i < 2; i++) {
      const res = await put(s.app, { uri: fileUri(album.path) })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({ started: true, infohash: album.info.infoHashHex })
    }
    expect((await s.app.inject({ method: 'GET', url: '/downloads' })).json().downloads).toHaveLength(1)
  })

  it('answers a missing file and a file that is not a torrent with 500 and the reason', async () => {
    const s = await setup()
    const missing = await put(s.app, { uri: fileUri(join(s.dir, 'nothing.torrent')) })
    expect(missing.statusCode).toBe(500)
    expect(missing.json().error).toMatch(/^file not found: /)
    const junk = join(s.dir, 'junk.torrent')
    writeFileSync(junk, 'this is not bencode')
    const bad = await put(s.app, { uri: fileUri(junk) })
    expect(bad.statusCode).toBe(500)
    expect(bad.json().error).toMatch(/^invalid torrent file \(invalid bencode/)
    const relative = await put(s.app, { uri: 'file:x.torrent' })
    expect(relative.statusCode).toBe(400)
    expect(s.manager.added).toEqual([])
  })

  it('answers channel metadata (.mdblob) as not supported yet, and a missing one as not found', async () => {
    const s = await setup()
    const missing = await put(s.app, { uri: fileUri(join(s.dir, 'channel.mdblob')) })
    expect(missing.statusCode).toBe(400)
    expect(missing.json()).toEqual({ error: 'file not found' })
    writeFileSync(join(s.dir, 'channel.mdblob'), Buffer.alloc(100, 1))
    const present = await put(s.app, { uri: fileUri(join(s.dir, 'channel.mdblob')) })
    expect(present.statusCode).toBe(500)
    expect(present.json()).toEqual({ error: 'channel metadata (.mdblob) is not supported yet' })
    const info = await s.app.inject({
      method: 'GET',
      url: `/torrentinfo?uri=${encodeURIComponent(fileUri(join(s.dir, 'channel.mdblob')))}`,
    })
    expect(info.statusCode).toBe(500)
    expect(info.json()).toEqual({ error: 'channel metadata (.mdblob) is not supported yet' })
    expect(s.manager.added).toEqual([])
  })

  it('starts a magnet, unquoting it first, and rejects one without an infohash', async () => {
    const s = await setup()
    const res = await put(s.app, { uri: `magnet:?xt=urn:btih:${MAGNET_IH}&dn=Cosmos+Laundromat` })
    expect(res.json()).toEqual({ started: true, infohash: MAGNET_IH })
    expect(s.manager.added[0]?.source).toEqual({
      kind: 'magnet',
      magnet: `magnet:?xt=urn:btih:${MAGNET_IH}&dn=Cosmos Laundromat`,
    })
    const listed = (await s.app.inject({ method: 'GET', url: '/downloads' })).json().downloads[0]
    expect(listed).toMatchObject({ name: 'Unknown name', status: 'DLSTATUS_METADATA' })
    const bad = await put(s.app, { uri: 'magnet:?dn=nothing' })
    expect(bad.statusCode).toBe(400)
    expect(bad.json()).toEqual({ error: 'missing infohash' })
  })

  it('fetches a .torrent over http, follows a redirect to a magnet and reports an unreachable URL', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    const base = await serve(s, (request, response) => {
      if (request.url === '/album.torrent') response.end(album.bytes)
      else if (request.url === '/magnet') {
        response.writeHead(302, { location: `magnet:?xt=urn:btih:${MAGNET_IH}` }).end()
      } else response.writeHead(404).end()
    })
    const ok = await put(s.app, { uri: `${base}/album.torrent` })
    expect(ok.json()).toEqual({ started: true, infohash: album.info.infoHashHex })
    const magnet = await put(s.app, { uri: `${base}/magnet` })
    expect(magnet.json()).toEqual({ started: true, infohash: MAGNET_IH })
    const missing = await put(s.app, { uri: `${base}/missing.torrent` })
    expect(missing.statusCode).toBe(500)
    expect(missing.json()).toEqual({ error: `${base}/missing.torrent answered HTTP 404` })
    const port = await closedPort()
    const refused = await put(s.app, { uri: `http://127.0.0.1:${port}/x.torrent` })
    expect(refused.statusCode).toBe(500)
    expect(refused.json()).toEqual({ error: `cannot fetch http://127.0.0.1:${port}/x.torrent: ECONNREFUSED` })
  })

  it('refuses a destination that is not a writable directory, before adding anything', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    const file = join(s.dir, 'plain-file')
    writeFileSync(file, 'x')
    const res = await put(s.app, { uri: fileUri(album.path), destination: join(file, 'sub') })
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toMatch(
      /^destination is not a writable directory: .*plain-file\/sub \(ENOTDIR\)$/,
    )
    const relative = await put(s.app, { uri: fileUri(album.path), destination: 'downloads' })
    expect(relative.json()).toEqual({ error: 'destination must be an absolute path' })
    expect(s.manager.added).toEqual([])
  })

  it('selects files by their names, with or without the torrent folder', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    const res = await put(s.app, { uri: fileUri(album.path), 'selected_files[]': ['two.flac'] })
    expect(res.statusCode).toBe(200)
    expect(s.manager.added[0]?.selectedFiles).toEqual([1])
    await s.app.inject({
      method: 'DELETE',
      url: `/downloads/${album.info.infoHashHex}`,
      payload: 'remove_data=0',
    })
    await put(s.app, { uri: fileUri(album.path), 'selected_files[]': ['album/cd1/one.flac', 'two.flac'] })
    expect(s.manager.added[1]?.selectedFiles).toEqual([0, 1])
    const unknown = await put(s.app, { uri: fileUri(album.path), 'selected_files[]': ['three.flac'] })
    expect(unknown.statusCode).toBe(400)
    expect(unknown.json()).toEqual({ error: 'file not in the torrent: three.flac' })
    const magnet = await put(s.app, {
      uri: `magnet:?xt=urn:btih:${MAGNET_IH}`,
      'selected_files[]': ['two.flac'],
    })
    expect(magnet.statusCode).toBe(400)
  })

  it('maps engine refusals to error bodies', async () => {
    const s = await setup()
    s.manager.failAddHops = 1
    const res = await put(s.app, {
      uri: `magnet:?xt=urn:btih:${MAGNET_IH}`,
      anon_hops: '1',
      safe_seeding: '1',
    })
    expect(res.statusCode).toBe(500)
    expect(res.json()).toEqual({ error: 'no circuits' })
  })
})

describe('PATCH /downloads/{infohash}', () => {
  async function withAlbum() {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    await put(s.app, { uri: fileUri(album.path), destination: join(s.dir, 'out') })
    const ih = album.info.infoHashHex
    const handle = () => s.manager.downloads.get(ih) as HandleDouble
    const patch = (payload: string, target = ih) =>
      s.app.inject({ method: 'PATCH', url: `/downloads/${target}`, payload })
    return { ...s, album, ih, handle, patch }
  }

  it('checks the infohash first: unknown is 404 whatever the parameters, bad hex 400', async () => {
    const { patch } = await withAlbum()
    const unknown = await patch('anon_hops=1&state=nonsense', MAGNET_IH)
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json()).toEqual({ error: 'this download does not exist' })
    expect((await patch('', 'abcd')).statusCode).toBe(404)
    const bad = await patch('', 'xyz')
    expect(bad.statusCode).toBe(400)
    expect(bad.json()).toEqual({ error: 'invalid infohash' })
  })

  it('answers modified for no parameters and drives stop, resume and recheck', async () => {
    const { patch, ih, handle } = await withAlbum()
    expect((await patch('')).json()).toEqual({ modified: true, infohash: ih })
    await patch('state=stop')
    expect(handle().state).toBe('DLSTATUS_STOPPED')
    await patch('state=resume')
    await patch('state=recheck')
    expect(handle().calls).toEqual(['stop', 'resume', 'recheck'])
    const bad = await patch('state=pause')
    expect(bad.statusCode).toBe(400)
    expect(bad.json()).toEqual({ error: 'unknown state parameter' })
  })

  it('replaces the selection by indices and rejects an index out of range without changing anything', async () => {
    const { patch, handle } = await withAlbum()
    expect((await patch('selected_files[]=1')).statusCode).toBe(200)
    expect(handle().selected).toEqual([1])
    const out = await patch('selected_files[]=0&selected_files[]=2')
    expect(out.statusCode).toBe(400)
    expect(out.json()).toEqual({ error: 'index 2 out of range' })
    const notNumber = await patch('selected_files[]=one')
    expect(notNumber.json()).toEqual({ error: 'index one out of range' })
    const withBadState = await patch('selected_files[]=0&state=pause')
    expect(withBadState.statusCode).toBe(400)
    expect(handle().selected).toEqual([1])
  })

  it("sets the download's own rate limits, one at a time or both, and rejects a bad one changing nothing", async () => {
    const { patch, ih, app, handle } = await withAlbum()
    expect((await patch('download_limit=100000')).json()).toEqual({ modified: true, infohash: ih })
    expect((await patch('upload_limit=2048&download_limit=0')).statusCode).toBe(200)
    expect(handle().calls).toEqual(['limits 100000/-', 'limits 0/2048'])
    const listed = (await app.inject({ method: 'GET', url: '/downloads' })).json().downloads[0]
    expect(listed).toMatchObject({ download_limit: 0, upload_limit: 2048, max_download_speed: 1000 })
    for (const bad of ['download_limit=-1', 'upload_limit=1.5', 'upload_limit=fast', 'download_limit=']) {
      const res = await patch(`selected_files[]=1&state=stop&${bad}`)
      expect(res.statusCode).toBe(400)
      expect(res.json().error).toMatch(/_limit must be a whole number of bytes per second/)
    }
    expect(handle().calls).toHaveLength(2)
    expect(handle().state).toBe('DLSTATUS_DOWNLOADING')
  })

  it('takes anon_hops only alone and hands the hop change to the engine', async () => {
    const { patch, ih, manager, handle } = await withAlbum()
    const mixed = await patch('anon_hops=1&state=stop')
    expect(mixed.statusCode).toBe(400)
    expect(mixed.json()).toEqual({ error: 'anon_hops must be the only parameter in this request' })
    const res = await patch('anon_hops=2')
    expect(res.json()).toEqual({ modified: true, infohash: ih })
    expect(manager.hopChanges).toEqual([{ infoHash: ih, hops: 2 }])
    expect(handle().status().hops).toBe(2)
  })

  it("answers with the engine's error code when the hop count cannot change", async () => {
    const { patch, ih, manager } = await withAlbum()
    manager.failAddHops = 3
    const res = await patch('anon_hops=3')
    expect(res.statusCode).toBe(500)
    expect(res.json().error).toMatchObject({ handled: true, code: 'ANON_NOT_SUPPORTED' })
    expect(manager.downloads.get(ih)?.status().hops).toBe(0)
  })
})

describe('DELETE /downloads/{infohash}', () => {
  it('requires remove_data before anything else, then knows the infohash', async () => {
    const s = await setup()
    const missing = await s.app.inject({ method: 'DELETE', url: `/downloads/${MAGNET_IH}` })
    expect(missing.statusCode).toBe(400)
    expect(missing.json()).toEqual({ error: 'remove_data parameter missing' })
    const unknown = await s.app.inject({
      method: 'DELETE',
      url: `/downloads/${MAGNET_IH}`,
      payload: 'remove_data=1',
    })
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json()).toEqual({ error: 'this download does not exist' })
  })

  it('removes with or without data (only "1" removes it) and reports a failure as handled', async () => {
    const s = await setup()
    await put(s.app, { uri: `magnet:?xt=urn:btih:${MAGNET_IH}` })
    const kept = await s.app.inject({
      method: 'DELETE',
      url: `/downloads/${MAGNET_IH.toUpperCase()}`,
      payload: 'remove_data=True',
    })
    expect(kept.json()).toEqual({ removed: true, infohash: MAGNET_IH })
    await put(s.app, { uri: `magnet:?xt=urn:btih:${MAGNET_IH}` })
    await s.app.inject({ method: 'DELETE', url: `/downloads/${MAGNET_IH}`, payload: 'remove_data=1' })
    expect(s.manager.removed).toEqual([
      { infoHash: MAGNET_IH, removeData: false },
      { infoHash: MAGNET_IH, removeData: true },
    ])
    await put(s.app, { uri: `magnet:?xt=urn:btih:${MAGNET_IH}` })
    s.manager.failRemove = true
    const failed = await s.app.inject({
      method: 'DELETE',
      url: `/downloads/${MAGNET_IH}`,
      payload: 'remove_data=0',
    })
    expect(failed.statusCode).toBe(500)
    expect(failed.json()).toEqual({ error: { handled: true, code: 'RuntimeError', message: 'disk on fire' } })
  })
})

describe('GET /downloads/{infohash}/torrent and /files', () => {
  it('exports the .torrent with its headers and lists the files', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    await put(s.app, { uri: fileUri(album.path) })
    const ih = album.info.infoHashHex
    const res = await s.app.inject({ method: 'GET', url: `/downloads/${ih}/torrent` })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('application/x-bittorrent')
    expect(res.headers['content-disposition']).toBe(`attachment; filename=${ih}.torrent`)
    expect(parseTorrent(res.rawPayload).infoHashHex).toBe(ih)
    const files = await s.app.inject({ method: 'GET', url: `/downloads/${ih}/files` })
    expect(files.json()).toEqual({
      files: [
        { index: 0, name: 'album/cd1/one.flac', size: 40_000, included: true, progress: 0 },
        { index: 1, name: 'album/two.flac', size: 30_000, included: true, progress: 0 },
      ],
    })
  })

  it('answers 404 for an unknown download and for one whose metadata is not known yet', async () => {
    const s = await setup()
    await put(s.app, { uri: `magnet:?xt=urn:btih:${MAGNET_IH}` })
    const pending = await s.app.inject({ method: 'GET', url: `/downloads/${MAGNET_IH}/torrent` })
    expect(pending.statusCode).toBe(404)
    expect(pending.json()).toEqual({ error: 'this download does not exist' })
    const unknown = await s.app.inject({ method: 'GET', url: `/downloads/${'ab'.repeat(20)}/torrent` })
    expect(unknown.statusCode).toBe(404)
    expect((await s.app.inject({ method: 'GET', url: `/downloads/${MAGNET_IH}/files` })).json()).toEqual({
      files: [],
    })
    expect((await s.app.inject({ method: 'GET', url: '/downloads/zz/files' })).statusCode).toBe(400)
  })
})

describe('GET /torrentinfo', () => {
  it('validates uri, scheme, magnet and timeout', async () => {
    const { app } = await setup()
    const cases: Array<[string, number, string]> = [
      ['/torrentinfo', 400, 'uri parameter missing'],
      ['/torrentinfo?uri=', 400, 'uri parameter missing'],
      ['/torrentinfo?uri=abcd', 400, 'invalid uri'],
      [`/torrentinfo?uri=${encodeURIComponent('magnet:?dn=x')}`, 400, 'missing infohash'],
      [`/torrentinfo?uri=magnet:&timeout=-1`, 400, 'timeout must be a number of seconds from 0 to 300'],
    ]
    for (const [url, status, error] of cases) {
      const res = await app.inject({ method: 'GET', url })
      expect(res.statusCode, url).toBe(status)
      expect(res.json(), url).toEqual({ error })
    }
  })

  it('reads a file: torrent as JSON with base64 pieces and whether it is downloading', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    const url = `/torrentinfo?uri=${encodeURIComponent(fileUri(album.path))}`
    const res = await s.app.inject({ method: 'GET', url })
    expect(res.statusCode).toBe(200)
    const { metainfo } = res.json()
    expect(metainfo.info.name).toBe('album')
    expect(metainfo.info['piece length']).toBe(album.info.pieceLength)
    expect(metainfo.info.files).toEqual([
      { length: 40_000, path: ['cd1', 'one.flac'] },
      { length: 30_000, path: ['two.flac'] },
    ])
    expect(Buffer.from(metainfo.info.pieces, 'base64')).toEqual(Buffer.concat(album.info.pieces))
    expect(metainfo.announce).toBe('http://127.0.0.1:1/announce')
    expect(metainfo.download_exists).toBe(false)
    await put(s.app, { uri: fileUri(album.path) })
    expect((await s.app.inject({ method: 'GET', url })).json().metainfo.download_exists).toBe(true)
  })

  it('keeps the torrents it reads and creates in the torrent store', async () => {
    const s = await setup({ torrentStore: true })
    const album = await albumTorrent(s.dir)
    const ih = album.info.infoHashHex
    expect((await s.app.inject({ method: 'GET', url: `/torrents/${ih}` })).statusCode).toBe(404)
    await s.app.inject({ method: 'GET', url: `/torrentinfo?uri=${encodeURIComponent(fileUri(album.path))}` })
    const known = await s.app.inject({ method: 'GET', url: `/torrents/${ih}` })
    expect(known.statusCode).toBe(200)
    expect(known.json()).toMatchObject({ infohash: ih, name: 'album', size: 70_000 })
    const created = await s.app.inject({
      method: 'POST',
      url: '/createtorrent',
      payload: form({ 'files[]': join(s.dir, 'album', 'two.flac') }),
    })
    const createdHash = parseTorrent(Buffer.from(created.json().torrent, 'base64')).infoHashHex
    expect((await s.app.inject({ method: 'GET', url: `/torrents/${createdHash}` })).statusCode).toBe(200)
  })

  it('answers a corrupt or missing file with 500', async () => {
    const s = await setup()
    const junk = join(s.dir, 'junk.torrent')
    writeFileSync(junk, 'd4:infoi1ee')
    const res = await s.app.inject({
      method: 'GET',
      url: `/torrentinfo?uri=${encodeURIComponent(fileUri(junk))}`,
    })
    expect(res.statusCode).toBe(500)
    expect(res.json().error).toMatch(/^error while decoding torrent file: /)
    const missing = await s.app.inject({
      method: 'GET',
      url: `/torrentinfo?uri=${encodeURIComponent(fileUri(join(s.dir, 'none.torrent')))}`,
    })
    expect(missing.statusCode).toBe(500)
  })

  it('fetches a magnet through the engine, with 408 when the metadata does not come', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    const magnet = `magnet:?xt=urn:btih:${album.info.infoHashHex}`
    const timeout = await s.app.inject({
      method: 'GET',
      url: `/torrentinfo?uri=${encodeURIComponent(magnet)}&timeout=0.5`,
    })
    expect(timeout.statusCode).toBe(408)
    expect(timeout.json()).toEqual({ error: 'timeout' })
    s.manager.swarm.set(album.info.infoHashHex, album.bytes)
    const res = await s.app.inject({ method: 'GET', url: `/torrentinfo?uri=${encodeURIComponent(magnet)}` })
    expect(res.json().metainfo.info.name).toBe('album')
    s.manager.swarm.set(album.info.infoHashHex, Buffer.from('garbage'))
    const garbage = await s.app.inject({
      method: 'GET',
      url: `/torrentinfo?uri=${encodeURIComponent(magnet)}`,
    })
    expect(garbage.statusCode).toBe(500)
    expect(garbage.json().error).toMatch(/^invalid torrent file: /)
  })

  it('fetches over http and reports an unreachable URL', async () => {
    const s = await setup()
    const album = await albumTorrent(s.dir)
    const base = await serve(s, (_request, response) => response.end(album.bytes))
    const ok = await s.app.inject({
      method: 'GET',
      url: `/torrentinfo?uri=${encodeURIComponent(`${base}/a`)}`,
    })
    expect(ok.json().metainfo.info.name).toBe('album')
    const port = await closedPort()
    const refused = await s.app.inject({
      method: 'GET',
      url: `/torrentinfo?uri=${encodeURIComponent(`http://127.0.0.1:${port}/x`)}`,
    })
    expect(refused.statusCode).toBe(500)
    expect(refused.json().error).toMatch(/ECONNREFUSED/)
  })
})

describe('POST /createtorrent', () => {
  function files(dir: string): string[] {
    mkdirSync(join(dir, 'share', 'sub'), { recursive: true })
    writeFileSync(join(dir, 'share', 'a.bin'), Buffer.alloc(20_000, 7))
    writeFileSync(join(dir, 'share', 'sub', 'b.bin'), Buffer.alloc(10_000, 8))
    writeFileSync(join(dir, 'share', 'left-out.bin'), Buffer.alloc(5, 9))
    return [join(dir, 'share', 'sub', 'b.bin'), join(dir, 'share', 'a.bin')]
  }

  it('requires files and reports a missing one as a handled IOError', async () => {
    const s = await setup()
    const none = await s.app.inject({ method: 'POST', url: '/createtorrent', payload: 'name=x' })
    expect(none.statusCode).toBe(400)
    expect(none.json()).toEqual({ error: 'files parameter missing' })
    const missing = await s.app.inject({
      method: 'POST',
      url: '/createtorrent',
      payload: form({ 'files[]': join(s.dir, 'nope.bin') }),
    })
    expect(missing.statusCode).toBe(500)
    expect(missing.json().error).toMatchObject({ handled: true, code: 'IOError' })
  })

  it('makes a single-file torrent with the documented fields', async () => {
    const s = await setup()
    const [, a] = files(s.dir)
    const res = await s.app.inject({
      method: 'POST',
      url: '/createtorrent',
      payload: form({
        'files[]': a ?? '',
        description: 'my comment',
        'trackers[]': ['http://127.0.0.1:1/announce', 'udp://127.0.0.1:2'],
      }),
    })
    expect(res.statusCode).toBe(200)
    const bytes = Buffer.from(res.json().torrent, 'base64')
    const info = parseTorrent(bytes)
    expect(info.name).toBe('a.bin')
    expect(info.totalLength).toBe(20_000)
    expect(info.comment).toBe('my comment')
    expect(info.createdBy).toBe(`Tribler version: ${s.session.version}`)
    const raw = decode(bytes, { strict: false }) as Record<string, unknown>
    expect(Buffer.from(raw.announce as Uint8Array).toString()).toBe('http://127.0.0.1:1/announce')
    expect(info.trackers).toEqual([['http://127.0.0.1:1/announce'], ['udp://127.0.0.1:2']])
    expect(s.manager.added).toEqual([])
  })

  it('makes a multi-file torrent of exactly the given files and seeds it with download=1', async () => {
    const s = await setup()
    const chosen = files(s.dir)
    const res = await s.app.inject({
      method: 'POST',
      url: '/createtorrent?download=1',
      payload: form({ 'files[]': chosen }),
    })
    expect(res.statusCode).toBe(200)
    const info = parseTorrent(Buffer.from(res.json().torrent, 'base64'))
    expect(info.name).toBe('share')
    expect(info.files.map((f) => f.path)).toEqual(['share/a.bin', 'share/sub/b.bin'])
    expect(s.manager.added).toHaveLength(1)
    expect(s.manager.added[0]).toMatchObject({ destination: s.dir, hops: 0 })
    // a duplicate is left as it is
    const again = await s.app.inject({
      method: 'POST',
      url: '/createtorrent?download=1',
      payload: form({ 'files[]': chosen }),
    })
    expect(again.statusCode).toBe(200)
    expect(s.manager.downloads.size).toBe(1)
  })

  it('cannot seed without the engine', async () => {
    const s = await setup({ engine: false })
    const [, a] = files(s.dir)
    const res = await s.app.inject({
      method: 'POST',
      url: '/createtorrent?download=1',
      payload: form({ 'files[]': a ?? '' }),
    })
    expect(res.statusCode).toBe(500)
    expect(res.json().error.message).toBe('BitTorrent engine is not running')
  })
})
