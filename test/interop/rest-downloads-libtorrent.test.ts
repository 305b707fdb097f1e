import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { parseTorrent } from '../../src/metainfo/index.js'
import { apiUrl, type CliProcess, runCli, tempStateDir } from '../integration/cli-harness.js'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'
import { freePort } from '../support/tracker-servers.js'

const KEY = 'rest-dl-k3y'
const HEADERS = { 'x-api-key': KEY }

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function core(stateDir: string): CliProcess {
  const proc = runCli(['--port', '0', '--api-key', KEY], { stateDir })
  cleanups.push(() => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
  })
  return proc
}

async function stop(proc: CliProcess, base: string): Promise<void> {
  await fetch(`${base}/shutdown`, { method: 'PUT', headers: HEADERS })
  await proc.exited
}

/** The `/events` stream of a core, collected line by line. */
function listen(base: string): Array<{ type: string; event?: Record<string, unknown> }> {
  const seen: Array<{ type: string; event?: Record<string, unknown> }> = []
  const req = request(`${base}/events`, { headers: HEADERS }, (res) => {
    let buffered = ''
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      buffered += chunk
      let newline = buffered.indexOf('\n')
      while (newline !== -1) {
        const line = buffered.slice(0, newline).trim()
        buffered = buffered.slice(newline + 1)
        if (line !== '') seen.push(JSON.parse(line))
        newline = buffered.indexOf('\n')
      }
    })
  })
  req.on('error', () => {})
  req.end()
  cleanups.push(() => req.destroy())
  return seen
}

// biome-ignore lint/suspicious/noExplicitAny: the REST answers are checked by the assertions
type Json = any

async function call(
  base: string,
  method: string,
  path: string,
  form?: Record<string, string>,
): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: HEADERS,
    ...(form === undefined ? {} : { body: new URLSearchParams(form).toString() }),
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

async function downloads(base: string): Promise<Json[]> {
  return (await call(base, 'GET', '/downloads?get_peers=1&get_pieces=1&get_files=1')).body.downloads
}

describe.skipIf(!libtorrentAvailable())('the /downloads REST API against a real core and libtorrent', () => {
  it('downloads a magnet from a libtorrent seeder, reports it, exports its .torrent and drives it', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tribler-rest-dl-'))
    const contents = await writeRandomFiles(join(tmp, 'seed', 'album'), {
      'one.bin': 700_000,
      'cd2/two.bin': 300_001,
    })
    const made = await createTorrent({
      path: join(tmp, 'seed', 'album'),
      out: join(tmp, 'album.torrent'),
      pieceLength: 32_768,
    })
    const seeder = await LibtorrentPeer.start({ host: '127.0.0.63' })
    cleanups.push(() => seeder.stop())
    await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: join(tmp, 'seed') })
    await seeder.waitFor((s) => s.torrents[0]?.state === 'seeding')

    const stateDir = tempStateDir()
    writeFileSync(
      join(stateDir, 'settings.json'),
      JSON.stringify({
        libtorrent: { port: await freePort('127.0.0.1'), dht: false },
        download_defaults: { saveas: join(tmp, 'default') },
      }),
    )
    const proc = core(stateDir)
    const base = await apiUrl(proc)
    const events = listen(base)

    const magnet = `magnet:?xt=urn:btih:${made.infoHash}&x.pe=${seeder.host}:${seeder.port}`
    const dest = join(tmp, 'got')
    const put = await call(base, 'PUT', '/downloads', { uri: magnet, destination: dest })
    expect(put).toEqual({ status: 200, body: { started: true, infohash: made.infoHash } })
    // the same magnet again is the same download
    expect((await call(base, 'PUT', '/downloads', { uri: magnet })).body.infohash).toBe(made.infoHash)

    await vi.waitFor(
      () =>
        expect(events).toContainEqual({
          type: 'torrent_finished',
          event: { infohash: made.infoHash, name: 'album' },
        }),
      { timeout: 120_000, interval: 250 },
    )
    for (const [relative, data] of contents)
      expect(readFileSync(join(dest, 'album', relative)).equals(data)).toBe(true)

    const [listed, ...others] = await downloads(base)
    expect(others).toEqual([])
    expect(listed).toMatchObject({
      name: 'album',
      infohash: made.infoHash,
      status: 'DLSTATUS_SEEDING',
      progress: 1,
      size: made.totalLength,
      total_pieces: made.numPieces,
      destination: dest,
      hops: 0,
      anon_download: false,
      vod_mode: false,
      error: '',
    })
    expect(listed.files).toEqual(
      made.files.map((f, index) => ({ index, name: f.path, size: f.length, included: true, progress: 1 })),
    )
    const bits = Buffer.from(listed.pieces, 'base64')
    expect(bits.length).toBe(Math.ceil(made.numPieces / 8))
    for (let i = 0; i < made.numPieces; i++) expect((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))).not.toBe(0)
    // two seeds have nothing to exchange: libtorrent and the engine both drop the connection once complete
    expect(Array.isArray(listed.peers)).toBe(true)

    // the .torrent rebuilt from the metadata the seeder sent is the seeder's torrent
    const exported = await fetch(`${base}/downloads/${made.infoHash}/torrent`, { headers: HEADERS })
    expect(exported.status).toBe(200)
    expect(exported.headers.get('content-type')).toBe('application/x-bittorrent')
    expect(exported.headers.get('content-disposition')).toBe(`attachment; filename=${made.infoHash}.torrent`)
    const torrent = parseTorrent(Buffer.from(await exported.arrayBuffer()))
    expect(torrent.infoHashHex).toBe(made.infoHash)
    expect(Buffer.from(torrent.infoBytes).toString('hex')).toBe(made.infoHex)

    // the metadata of a magnet already downloading comes at once
    const info = await call(base, 'GET', `/torrentinfo?uri=${encodeURIComponent(magnet)}`)
    expect(info.status).toBe(200)
    expect(info.body.metainfo).toMatchObject({ info: { name: 'album' }, download_exists: true })

    expect((await call(base, 'PATCH', `/downloads/${made.infoHash}`, { state: 'stop' })).status).toBe(200)
    await vi.waitFor(async () => expect((await downloads(base))[0]?.status).toBe('DLSTATUS_STOPPED'), {
      timeout: 30_000,
      interval: 250,
    })
    await call(base, 'PATCH', `/downloads/${made.infoHash}`, { state: 'resume' })
    await vi.waitFor(async () => expect((await downloads(base))[0]?.status).toBe('DLSTATUS_SEEDING'), {
      timeout: 60_000,
      interval: 250,
    })
    const bad = await call(base, 'PATCH', `/downloads/${made.infoHash}`, { 'selected_files[]': '2' })
    expect(bad).toEqual({ status: 400, body: { error: 'index 2 out of range' } })
    const selected = await call(base, 'PATCH', `/downloads/${made.infoHash}`, { 'selected_files[]': '1' })
    expect(selected.status).toBe(200)
    const files = await call(base, 'GET', `/downloads/${made.infoHash}/files`)
    expect(files.body.files.map((f: { included: boolean }) => f.included)).toEqual([false, true])

    // 1 hop re-adds it anonymously: this core's tunnel community knows no peers, so it waits for circuits;
    // back to 0 hops it seeds again, its choices kept
    const hops = await call(base, 'PATCH', `/downloads/${made.infoHash}`, { anon_hops: '1' })
    expect(hops).toEqual({ status: 200, body: { modified: true, infohash: made.infoHash } })
    expect((await downloads(base))[0]).toMatchObject({ hops: 1, status: 'DLSTATUS_CIRCUITS' })
    const back = await call(base, 'PATCH', `/downloads/${made.infoHash}`, { anon_hops: '0' })
    expect(back.status).toBe(200)
    await vi.waitFor(
      async () =>
        expect((await downloads(base))[0]).toMatchObject({
          infohash: made.infoHash,
          hops: 0,
          destination: dest,
          status: 'DLSTATUS_SEEDING',
          files: [expect.objectContaining({ included: false }), expect.objectContaining({ included: true })],
        }),
      { timeout: 60_000, interval: 250 },
    )

    const removed = await call(base, 'DELETE', `/downloads/${made.infoHash}`, { remove_data: '1' })
    expect(removed).toEqual({ status: 200, body: { removed: true, infohash: made.infoHash } })
    expect(await downloads(base)).toEqual([])
    await vi.waitFor(() => expect(existsSync(join(dest, 'album', 'one.bin'))).toBe(false), {
      timeout: 30_000,
      interval: 250,
    })
    await stop(proc, base)
  })

  it('resumes a download after kill -9 of the core without fetching its verified pieces again', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tribler-rest-restart-'))
    const size = 24 * 1024 * 1024
    const contents = await writeRandomFiles(join(tmp, 'seed'), { 'film.bin': size })
    const made = await createTorrent({
      path: join(tmp, 'seed', 'film.bin'),
      out: join(tmp, 'film.torrent'),
      pieceLength: 262_144,
    })
    // slow enough that the core is killed mid-download; over TCP, whose connections the kernel resets when the
    // process dies (a uTP connection would linger at the seeder until it times out and hold its upload slot)
    const seeder = await LibtorrentPeer.start({ host: '127.0.0.66', uploadRate: 1024 * 1024, utp: false })
    cleanups.push(() => seeder.stop())
    await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: join(tmp, 'seed') })
    await seeder.waitFor((s) => s.torrents[0]?.state === 'seeding')

    const stateDir = tempStateDir()
    writeFileSync(
      join(stateDir, 'settings.json'),
      JSON.stringify({ libtorrent: { port: await freePort('127.0.0.1'), dht: false } }),
    )
    const magnet = `magnet:?xt=urn:btih:${made.infoHash}&x.pe=${seeder.host}:${seeder.port}`
    const dest = join(tmp, 'got')
    const first = core(stateDir)
    let base = await apiUrl(first)
    expect((await call(base, 'PUT', '/downloads', { uri: magnet, destination: dest })).status).toBe(200)
    await vi.waitFor(async () => expect((await downloads(base))[0]?.progress).toBeGreaterThanOrEqual(0.5), {
      timeout: 120_000,
      interval: 200,
    })
    first.child.kill('SIGKILL')
    await first.exited

    const second = core(stateDir)
    base = await apiUrl(second)
    // The download comes back from the store; what is on disk counts again, checked or from resume data.
    const resumed = await vi.waitFor(
      async () => {
        const [listed] = await downloads(base)
        expect(listed).toMatchObject({ infohash: made.infoHash, status: 'DLSTATUS_DOWNLOADING' })
        return listed
      },
      { timeout: 60_000, interval: 100 },
    )
    expect(resumed.progress).toBeGreaterThanOrEqual(0.4)
    // the same magnet again names the seeder for the running download
    expect((await call(base, 'PUT', '/downloads', { uri: magnet })).status).toBe(200)
    const done = await vi.waitFor(
      async () => {
        const [listed] = await downloads(base)
        expect(listed).toMatchObject({ status: 'DLSTATUS_SEEDING', progress: 1 })
        return listed
      },
      { timeout: 120_000, interval: 250 },
    )
    // only what was missing came over the wire again (plus blocks in flight and protocol slack)
    expect(done.total_down).toBeLessThanOrEqual(size * (1 - resumed.progress) + 2 * 1024 * 1024)
    expect(readFileSync(join(dest, 'film.bin')).equals(contents.get('film.bin') as Buffer)).toBe(true)
    await stop(second, base)
  })

  it('fetches a magnet’s metadata for /torrentinfo from a seeder, and times out without one', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tribler-rest-info-'))
    await writeRandomFiles(join(tmp, 'seed'), { 'film.bin': 200_000 })
    const made = await createTorrent({ path: join(tmp, 'seed', 'film.bin'), out: join(tmp, 'film.torrent') })
    const seeder = await LibtorrentPeer.start({ host: '127.0.0.64' })
    cleanups.push(() => seeder.stop())
    await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: join(tmp, 'seed') })
    await seeder.waitFor((s) => s.torrents[0]?.state === 'seeding')
    const stateDir = tempStateDir()
    writeFileSync(
      join(stateDir, 'settings.json'),
      JSON.stringify({ libtorrent: { dht: false }, download_defaults: { saveas: join(tmp, 'default') } }),
    )
    const proc = core(stateDir)
    const base = await apiUrl(proc)
    const magnet = `magnet:?xt=urn:btih:${made.infoHash}&x.pe=${seeder.host}:${seeder.port}`
    // through circuits (the default with anonymity on, or hops=1) nothing can be fetched in this isolated core, and
    // the seeder is never contacted; hops=0 fetches it directly
    const anonymous = await call(base, 'GET', `/torrentinfo?uri=${encodeURIComponent(magnet)}&timeout=2`)
    expect(anonymous).toEqual({ status: 408, body: { error: 'timeout' } })
    expect((await seeder.status()).torrents[0]?.peers).toEqual([])
    const info = await call(base, 'GET', `/torrentinfo?uri=${encodeURIComponent(magnet)}&timeout=60&hops=0`)
    expect(info.status).toBe(200)
    expect(info.body.metainfo.info).toMatchObject({ name: 'film.bin', length: 200_000 })
    expect(info.body.metainfo.download_exists).toBe(false)
    // bad input is refused by a real core as by the contract, and adds nothing
    const file = join(tmp, 'plain-file')
    writeFileSync(file, 'x')
    const port = await freePort('127.0.0.1')
    const refusals: Array<[Record<string, string>, number, string | RegExp]> = [
      [{}, 400, 'uri parameter missing'],
      [{ uri: 'abcd' }, 500, 'invalid uri'],
      [{ uri: 'magnet:?dn=x' }, 400, 'missing infohash'],
      [{ uri: `http://127.0.0.1:${port}/x.torrent` }, 500, /ECONNREFUSED/],
      [{ uri: `file:${file}` }, 500, /^invalid torrent file/],
      [{ uri: magnet, destination: join(file, 'sub') }, 400, /^destination is not a writable directory/],
      [{ uri: magnet, anon_hops: '1' }, 400, 'Cannot set anonymous download without safe seeding enabled'],
    ]
    for (const [form, status, error] of refusals) {
      const res = await call(base, 'PUT', '/downloads', form)
      expect({ form, status: res.status }).toEqual({ form, status })
      expect(res.body.error).toMatch(error)
    }
    expect(await downloads(base)).toEqual([])
    // nobody has this one
    const lonely = `magnet:?xt=urn:btih:${'ab'.repeat(20)}`
    const timeout = await call(base, 'GET', `/torrentinfo?uri=${encodeURIComponent(lonely)}&timeout=1`)
    expect(timeout).toEqual({ status: 408, body: { error: 'timeout' } })
    expect(await downloads(base)).toEqual([])
    await stop(proc, base)
  })

  it('seeds a torrent made with POST /createtorrent?download=1 to a libtorrent leecher, listing it as a peer', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tribler-rest-create-'))
    const contents = await writeRandomFiles(join(tmp, 'mine'), { 'song.bin': 400_000 })
    const stateDir = tempStateDir()
    const enginePort = await freePort('127.0.0.1')
    // the upload limit keeps the leecher connected long enough to be listed
    const uploadLimit = 64 * 1024
    writeFileSync(
      join(stateDir, 'settings.json'),
      JSON.stringify({
        libtorrent: { port: enginePort, dht: false, max_upload_rate: uploadLimit },
        download_defaults: { saveas: join(tmp, 'default') },
      }),
    )
    const proc = core(stateDir)
    const base = await apiUrl(proc)
    const created = await call(base, 'POST', '/createtorrent?download=1', {
      'files[]': join(tmp, 'mine', 'song.bin'),
    })
    expect(created.status).toBe(200)
    const bytes = Buffer.from(created.body.torrent, 'base64')
    const infoHash = parseTorrent(bytes).infoHashHex
    await vi.waitFor(
      async () =>
        expect((await downloads(base))[0]).toMatchObject({ infohash: infoHash, status: 'DLSTATUS_SEEDING' }),
      { timeout: 60_000, interval: 250 },
    )
    writeFileSync(join(tmp, 'song.torrent'), bytes)
    const leecher = await LibtorrentPeer.start({ host: '127.0.0.65' })
    cleanups.push(() => leecher.stop())
    await leecher.addTorrent({ torrentPath: join(tmp, 'song.torrent'), savePath: join(tmp, 'leech') })
    const seen = await vi.waitFor(
      async () => {
        // libtorrent drops a manual peer it could not reach while the torrent was still being checked
        if ((await leecher.status()).torrents[0]?.numPeers === 0) {
          await leecher.addPeer({ ip: '127.0.0.1', port: enginePort })
        }
        const [listed] = await downloads(base)
        const peer = listed?.peers.find((p: { ip: string }) => p.ip === leecher.host)
        // listed from its handshake on; its interested message may come a moment later
        expect(peer).toMatchObject({ uinterested: true })
        return { listed, peer }
      },
      { timeout: 60_000, interval: 250 },
    )
    expect(seen.listed).toMatchObject({ max_upload_speed: uploadLimit, max_download_speed: 0 })
    expect(seen.peer).toMatchObject({
      ip: leecher.host,
      direction: 'R',
      uinterested: true,
      dinterested: false,
      seed: false,
      extended_version: expect.stringContaining('libtorrent'),
    })
    expect(seen.peer.id).toMatch(/^[0-9a-f]{40}$/)
    await leecher.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs: 120_000 })
    expect(
      readFileSync(join(tmp, 'leech', 'song.bin')).equals(contents.get('song.bin') ?? Buffer.alloc(0)),
    ).toBe(true)
    await stop(proc, base)
  })

  it('starts a torrent from the watch folder once, reports a corrupt one, and does not start it again after a restart', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tribler-rest-watch-'))
    await writeRandomFiles(join(tmp, 'data'), { 'first.bin': 50_000, 'second.bin': 60_000 })
    const first = await createTorrent({
      path: join(tmp, 'data', 'first.bin'),
      out: join(tmp, 'first.torrent'),
    })
    const second = await createTorrent({
      path: join(tmp, 'data', 'second.bin'),
      out: join(tmp, 'second.torrent'),
    })
    const watched = join(tmp, 'watched')
    mkdirSync(watched)
    const stateDir = tempStateDir()
    writeFileSync(
      join(stateDir, 'settings.json'),
      JSON.stringify({
        libtorrent: { dht: false },
        download_defaults: { saveas: join(tmp, 'default'), anonymity_enabled: false },
        watch_folder: { enabled: true, directory: watched },
      }),
    )
    let proc = core(stateDir)
    let base = await apiUrl(proc)
    const events = listen(base)
    copyFileSync(first.torrentPath, join(watched, 'first.torrent'))
    writeFileSync(join(watched, 'corrupt.torrent'), 'd8:announce3:abce')
    await vi.waitFor(
      async () => expect((await downloads(base)).map((d) => d.infohash)).toEqual([first.infoHash]),
      { timeout: 60_000, interval: 250 },
    )
    await vi.waitFor(
      () =>
        expect(events).toContainEqual({
          type: 'watch_folder_corrupt_torrent',
          event: { name: 'corrupt.torrent' },
        }),
      { timeout: 60_000, interval: 250 },
    )
    expect(existsSync(join(watched, 'corrupt.torrent.corrupt'))).toBe(true)
    expect(events.filter((e) => e.type === 'watch_folder_corrupt_torrent')).toHaveLength(1)
    // the user removes it; the file stays in the folder
    await call(base, 'DELETE', `/downloads/${first.infoHash}`, { remove_data: '0' })
    await stop(proc, base)

    proc = core(stateDir)
    base = await apiUrl(proc)
    // a scan handles every file in one pass: once the new file is started, the old one was passed over
    copyFileSync(second.torrentPath, join(watched, 'second.torrent'))
    await vi.waitFor(
      async () => expect((await downloads(base)).map((d) => d.infohash)).toContain(second.infoHash),
      { timeout: 60_000, interval: 250 },
    )
    expect((await downloads(base)).map((d) => d.infohash)).toEqual([second.infoHash])
    await stop(proc, base)
  })
})
