import { EventEmitter } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { CoreClient, restErrorText } from './client.js'
import { type ClientIo, downloadUri, parseClientArgs, runClientCommand } from './commands.js'
import type { DownloadView } from './format.js'

const IH = '0123456789abcdef0123456789abcdef01234567'

interface Recorded {
  method: string
  path: string
  body: URLSearchParams
  apiKey: string | undefined
}

/**
 * A REST API on loopback that answers as a core would, for the CLI client: `/state`, `/events`, and
 * `/downloads` backed by a list the test drives.
 */
class RestFake {
  readonly requests: Recorded[] = []
  downloads: DownloadView[] = []
  /** Called on every GET /downloads before answering (advances a download). */
  onList: () => void = () => {}
  /** Answer of PUT /downloads: status and body. */
  addAnswer: { status: number; body: unknown } = { status: 200, body: { started: true, infohash: IH } }
  state = 'STARTED'
  readableState = 'Started'
  apiKey: string | undefined
  readonly #streams = new Set<ServerResponse>()
  readonly #server: Server
  port = 0

  constructor() {
    this.#server = createServer((req, res) => void this.#handle(req, res))
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    this.port = (this.#server.address() as AddressInfo).port
    return this
  }

  /** Sends an event line to every /events listener. */
  emit(type: string, event?: unknown): void {
    for (const res of this.#streams)
      res.write(`${JSON.stringify(event === undefined ? { type } : { type, event })}\n`)
  }

  get listeners(): number {
    return this.#streams.size
  }

  async stop(): Promise<void> {
    for (const res of this.#streams) res.end()
    this.#server.closeAllConnections()
    await new Promise((resolve) => this.#server.close(resolve))
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = ''
    for await (const chunk of req) text += chunk
    const url = new URL(req.url ?? '/', 'http://x')
    const apiKey = req.headers['x-api-key'] as string | undefined
    this.requests.push({
      method: req.method ?? '',
      path: url.pathname,
      body: new URLSearchParams(text),
      apiKey,
    })
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (this.apiKey !== undefined && apiKey !== this.apiKey)
      return json(401, { error: 'Unauthorized access' })
    if (url.pathname === '/state')
      return json(200, { state: this.state, last_exception: 'boom', readable_state: this.readableState })
    if (url.pathname === '/events') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      res.write(
        `${JSON.stringify({ type: 'events_start', event: { tribler_started: true, version: 'x' } })}\n`,
      )
      this.#streams.add(res)
      res.on('close', () => this.#streams.delete(res))
      return
    }
    if (url.pathname === '/downloads' && req.method === 'PUT')
      return json(this.addAnswer.status, this.addAnswer.body)
    if (url.pathname === '/downloads' && req.method === 'GET') {
      this.onList()
      return json(200, { downloads: this.downloads })
    }
    const match = /^\/downloads\/([0-9a-f]+)$/.exec(url.pathname)
    if (match !== null) {
      const found = this.downloads.find((d) => d.infohash === match[1])
      if (found === undefined) return json(404, { error: 'this download does not exist' })
      if (req.method === 'DELETE') {
        this.downloads = this.downloads.filter((d) => d !== found)
        return json(200, { removed: true, infohash: found.infohash })
      }
      const body = new URLSearchParams(text)
      const limits = {
        ...(body.has('download_limit') && { download_limit: Number(body.get('download_limit')) }),
        ...(body.has('upload_limit') && { upload_limit: Number(body.get('upload_limit')) }),
      }
      this.downloads = this.downloads.map((d) => (d === found ? { ...d, ...limits } : d))
      return json(200, { modified: true, infohash: found.infohash })
    }
    json(404, { error: 'not found' })
  }
}

function view(extra: Partial<DownloadView> = {}): DownloadView {
  return {
    infohash: IH,
    name: 'data.bin',
    status: 'DLSTATUS_DOWNLOADING',
    progress: 0,
    size: 4 * 1024 * 1024,
    speed_down: 0,
    speed_up: 0,
    eta: 1e9,
    num_connected_peers: 0,
    num_connected_seeds: 1,
    ...extra,
  }
}

interface Run {
  code: Promise<number>
  out: string[]
  err: string[]
  raw: string[]
  signals: EventEmitter
}

function run(argv: string[], opts: { tty?: boolean; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Run {
  const out: string[] = []
  const err: string[] = []
  const raw: string[] = []
  const signals = new EventEmitter()
  const io: ClientIo = {
    stdout: (line) => out.push(line),
    stderr: (line) => err.push(line),
    write: (text) => raw.push(text),
    isTTY: opts.tty ?? false,
    columns: 120,
    env: opts.env ?? {},
    cwd: opts.cwd ?? tmpdir(),
    signals: signals as unknown as ClientIo['signals'],
    pollMs: 20,
    lineEveryMs: 60_000,
  }
  return { code: runClientCommand(argv, io), out, err, raw, signals }
}

const fakes: RestFake[] = []
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.stop()))
})

async function fake(): Promise<RestFake> {
  const f = await new RestFake().start()
  fakes.push(f)
  return f
}

/** A download that gains a quarter per poll and then seeds. */
function progressing(f: RestFake): void {
  f.downloads = [view()]
  let step = 0
  f.onList = () => {
    step++
    const progress = Math.min(1, step / 4)
    f.downloads = [
      view({
        progress,
        status: progress >= 1 ? 'DLSTATUS_SEEDING' : 'DLSTATUS_DOWNLOADING',
        speed_down: progress >= 1 ? 0 : 1024 * 1024,
        eta: 3,
        num_connected_peers: 1,
      }),
    ]
  }
}

describe('parseClientArgs', () => {
  it('reads the download options and the connection defaults', () => {
    const args = parseClientArgs(
      [
        'download',
        'magnet:?xt=urn:btih:x',
        '--hops',
        '2',
        '--dest',
        'out',
        '--select',
        'a/b',
        '--select',
        'c',
      ],
      { TRIBLER_API_KEY: 'k' },
    )
    expect(args).toMatchObject({
      command: 'download',
      target: 'magnet:?xt=urn:btih:x',
      hops: 2,
      dest: 'out',
      select: ['a/b', 'c'],
      host: '127.0.0.1',
      port: 8085,
      apiKey: 'k',
    })
    expect(parseClientArgs(['download', 'a', '--down-limit', '500k', '--up-limit', '1.5m'])).toMatchObject({
      downLimit: 512_000,
      upLimit: 1_572_864,
    })
    expect(parseClientArgs(['limit', IH, '--down', '0', '--up', '65536'])).toMatchObject({
      command: 'limit',
      downLimit: 0,
      upLimit: 65_536,
    })
    expect(parseClientArgs(['limit', IH])).toMatchObject({ downLimit: undefined, upLimit: undefined })
    expect(parseClientArgs(['remove', IH, '--with-data', '--api-key', 'x', '--port', '9000'])).toMatchObject({
      withData: true,
      apiKey: 'x',
      port: 9000,
    })
  })

  it('rejects bad arguments with a usage message', () => {
    const bad = [
      ['download'],
      ['download', 'a', 'b'],
      ['download', 'a', '--hops', '4'],
      ['download', 'a', '--port', '0'],
      ['downloads', 'extra'],
      ['pause'],
      ['pause', IH, '--with-data'],
      ['remove', IH, '--hops', '1'],
      ['download', 'a', '--bogus'],
      ['download', 'a', '--down-limit', 'fast'],
      ['download', 'a', '--up-limit', '-1'],
      ['limit', IH, '--down-limit', '1'],
      ['limit', IH, '--up', '2x'],
      ['limit'],
    ]
    for (const argv of bad) expect(() => parseClientArgs(argv), argv.join(' ')).toThrow()
    expect(parseClientArgs(['download', '--help']).help).toBe(true)
  })
})

describe('downloadUri', () => {
  it('keeps links and turns a local file into a percent-encoded absolute file: URI', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tribler cli #'))
    writeFileSync(join(dir, 'a b%.torrent'), 'x')
    expect(downloadUri('magnet:?xt=urn:btih:abc', dir)).toBe('magnet:?xt=urn:btih:abc')
    expect(downloadUri('https://example.org/a.torrent', dir)).toBe('https://example.org/a.torrent')
    const uri = downloadUri('a b%.torrent', dir)
    expect(uri).toMatch(/^file:\//)
    expect(uri).not.toMatch(/^file:\/\//)
    expect(uri).toContain('a%20b%25.torrent')
    expect(decodeURIComponent(uri.slice('file:'.length))).toBe(join(dir, 'a b%.torrent'))
    expect(() => downloadUri('missing.torrent', dir)).toThrow(/no such file/)
  })
})

describe('restErrorText', () => {
  it('reads the plain and the structured error bodies', () => {
    expect(restErrorText({ error: 'invalid uri' })).toBe('invalid uri')
    expect(restErrorText({ error: { handled: true, code: 'IOError', message: 'gone' } })).toBe(
      'gone (IOError)',
    )
    expect(restErrorText('nope')).toBeUndefined()
  })
})

describe('tribler download', () => {
  it('adds the download, prints progress lines and exits 0 once it seeds', async () => {
    const f = await fake()
    progressing(f)
    const r = run([
      'download',
      'magnet:?xt=urn:btih:x',
      '--port',
      String(f.port),
      '--hops',
      '1',
      '--select',
      'a',
    ])
    expect(await r.code).toBe(0)
    const put = f.requests.find((q) => q.method === 'PUT')
    expect(put?.body.get('uri')).toBe('magnet:?xt=urn:btih:x')
    expect(put?.body.get('anon_hops')).toBe('1')
    expect(put?.body.get('safe_seeding')).toBe('1')
    expect(put?.body.getAll('selected_files[]')).toEqual(['a'])
    expect(r.out[0]).toBe(`Downloading data.bin (${IH}) over 1 hops`)
    expect(r.out).toContain(
      ' 25.0% 1.00 MiB/4.00 MiB  down 1.00 MiB/s  up 0 B/s  peers 2  eta 0:00:03  downloading',
    )
    expect(r.out).toContain('100.0% 4.00 MiB/4.00 MiB  down 0 B/s  up 0 B/s  peers 2  eta -  seeding')
    expect(r.out.at(-1)).toBe(`Completed: data.bin (${IH}); it keeps seeding in the core`)
    expect(r.raw).toEqual([])
    expect(r.err).toEqual([])
  })

  it('redraws one line on a terminal', async () => {
    const f = await fake()
    progressing(f)
    const r = run(['download', 'magnet:?xt=urn:btih:x', '--port', String(f.port)], { tty: true })
    expect(await r.code).toBe(0)
    expect(r.raw.length).toBeGreaterThanOrEqual(4)
    expect(r.raw.slice(0, -1).every((t) => t.startsWith('\r\x1b[2K'))).toBe(true)
    expect(r.raw.at(-2)).toMatch(/100\.0% \[#+\]/)
    expect(r.raw.at(-1)).toBe('\n')
    expect(r.out.filter((l) => l.includes('%'))).toEqual([])
  })

  it('takes progress 1 with torrent_finished on /events as complete', async () => {
    const f = await fake()
    f.downloads = [view({ progress: 1, status: 'DLSTATUS_STOPPED' })]
    const r = run(['download', 'magnet:?xt=urn:btih:x', '--port', String(f.port)])
    await vi.waitFor(() => expect(f.listeners).toBe(1), { timeout: 10_000 })
    await vi.waitFor(() => expect(r.out.length).toBeGreaterThan(1), { timeout: 10_000 })
    f.emit('torrent_finished', { infohash: IH, name: 'data.bin' })
    expect(await r.code).toBe(0)
    expect(r.out.at(-1)).toMatch(/^Completed/)
  })

  it('says once how to resume a stopped download and goes on watching it', async () => {
    const f = await fake()
    f.downloads = [view({ status: 'DLSTATUS_STOPPED', progress: 0.5 })]
    let lists = 0
    f.onList = () => {
      lists++
      if (lists > 4) f.downloads = [view({ status: 'DLSTATUS_SEEDING', progress: 1 })]
    }
    const r = run(['download', 'magnet:?xt=urn:btih:x', '--port', String(f.port)])
    expect(await r.code).toBe(0)
    expect(r.err).toEqual(['tribler: the download is stopped; `tribler resume 01234567` resumes it'])
  })

  it('fails with the download error when it stops on error', async () => {
    const f = await fake()
    f.downloads = [view({ status: 'DLSTATUS_STOPPED_ON_ERROR', error: 'no space left on device' })]
    const r = run(['download', 'magnet:?xt=urn:btih:x', '--port', String(f.port)])
    expect(await r.code).toBe(1)
    expect(r.err).toEqual(['tribler: download failed: no space left on device'])
  })

  it('fails with the REST error body of the add', async () => {
    const f = await fake()
    f.addAnswer = { status: 500, body: { error: 'invalid uri' } }
    const r = run(['download', 'magnet:?xt=urn:btih:x', '--port', String(f.port)])
    expect(await r.code).toBe(1)
    expect(r.err).toEqual(['tribler: invalid uri'])
    f.addAnswer = { status: 500, body: { error: { handled: true, code: 'IOError', message: 'cannot read' } } }
    const again = run(['download', 'magnet:?xt=urn:btih:x', '--port', String(f.port)])
    expect(await again.code).toBe(1)
    expect(again.err).toEqual(['tribler: cannot read (IOError)'])
  })

  it('says the core is not running when nothing listens', async () => {
    const f = await fake()
    const port = f.port
    await f.stop()
    fakes.splice(fakes.indexOf(f), 1)
    const r = run(['download', 'magnet:?xt=urn:btih:x', '--port', String(port)])
    expect(await r.code).toBe(1)
    expect(r.err).toEqual([
      `tribler: cannot reach the Tribler core at http://127.0.0.1:${port}: is it running? (start it with \`tribler\`)`,
    ])
  })

  it('sends the API key from the environment and explains a refused key', async () => {
    const f = await fake()
    f.apiKey = 'secret'
    f.downloads = [view({ status: 'DLSTATUS_SEEDING', progress: 1 })]
    const ok = run(['downloads', '--port', String(f.port)], { env: { TRIBLER_API_KEY: 'secret' } })
    expect(await ok.code).toBe(0)
    expect(f.requests.every((q) => q.apiKey === 'secret')).toBe(true)
    const refused = run(['downloads', '--port', String(f.port), '--api-key', 'wrong'])
    expect(await refused.code).toBe(1)
    expect(refused.err).toEqual([
      `tribler: the Tribler core at http://127.0.0.1:${f.port} refused the API key`,
    ])
    const missing = run(['downloads', '--port', String(f.port)])
    expect(await missing.code).toBe(1)
    expect(missing.err[0]).toMatch(/needs an API key: pass --api-key or set TRIBLER_API_KEY/)
  })

  it('leaves the download running on Ctrl+C and exits 130', async () => {
    const f = await fake()
    f.downloads = [view({ progress: 0.1 })]
    const r = run(['download', 'magnet:?xt=urn:btih:x', '--port', String(f.port)])
    await vi.waitFor(() => expect(r.out.some((l) => l.includes('10.0%'))).toBe(true), { timeout: 10_000 })
    r.signals.emit('SIGINT')
    expect(await r.code).toBe(130)
    expect(r.err).toEqual([
      'tribler: interrupted; the download keeps running in the core (see `tribler downloads`)',
    ])
    expect(f.requests.some((q) => q.method === 'DELETE' || q.method === 'PATCH')).toBe(false)
    expect(f.downloads).toHaveLength(1)
  })

  it('waits for a core that is still starting', async () => {
    const f = await fake()
    f.state = 'STARTING'
    f.downloads = [view({ status: 'DLSTATUS_SEEDING', progress: 1 })]
    const r = run(['download', 'magnet:?xt=urn:btih:x', '--port', String(f.port)])
    await vi.waitFor(() => expect(f.requests.filter((q) => q.path === '/state').length).toBeGreaterThan(1), {
      timeout: 10_000,
    })
    expect(f.requests.some((q) => q.method === 'PUT')).toBe(false)
    f.state = 'STARTED'
    expect(await r.code).toBe(0)
  })

  it('works with a core that had an error after it started, and explains one that failed to start', async () => {
    const f = await fake()
    f.state = 'EXCEPTION'
    expect(await run(['downloads', '--port', String(f.port)]).code).toBe(0)
    f.readableState = 'Starting libtorrent...'
    const failed = run(['downloads', '--port', String(f.port)])
    expect(await failed.code).toBe(1)
    expect(failed.err).toEqual(['tribler: the Tribler core failed to start: boom'])
  })

  it('prints help and rejects bad arguments with exit 2', async () => {
    const help = run(['download', '--help'])
    expect(await help.code).toBe(0)
    expect(help.out[0]).toMatch(/^Usage: tribler download/)
    const bad = run(['download'])
    expect(await bad.code).toBe(2)
    expect(bad.err).toEqual([
      'tribler: download needs one magnet link, .torrent file or URL',
      'Try tribler download --help',
    ])
    const missing = run(['download', 'nope.torrent'])
    expect(await missing.code).toBe(2)
    expect(missing.err).toEqual(['tribler: no such file: nope.torrent'])
  })
})

describe('tribler downloads, pause, resume, remove', () => {
  it('lists the downloads as a table, or says there are none', async () => {
    const f = await fake()
    const none = run(['downloads', '--port', String(f.port)])
    expect(await none.code).toBe(0)
    expect(none.out).toEqual(['No downloads.'])
    f.downloads = [view({ progress: 0.5 })]
    const some = run(['downloads', '--port', String(f.port)])
    expect(await some.code).toBe(0)
    expect(some.out[0]).toMatch(/^INFOHASH/)
    expect(some.out[1]).toMatch(/^01234567\s+data\.bin\s+4\.00 MiB\s+50\.0%\s+downloading/)
  })

  it('pauses, resumes and removes by a unique infohash prefix', async () => {
    const f = await fake()
    f.downloads = [view(), view({ infohash: `f${IH.slice(1)}`, name: 'other' })]
    const pause = run(['pause', '0123', '--port', String(f.port)])
    expect(await pause.code).toBe(0)
    expect(pause.out).toEqual(['Paused data.bin (01234567)'])
    const resume = run(['resume', IH.toUpperCase(), '--port', String(f.port)])
    expect(await resume.code).toBe(0)
    expect(resume.out).toEqual(['Resumed data.bin (01234567)'])
    const patches = f.requests.filter((q) => q.method === 'PATCH')
    expect(patches.map((q) => [q.path, q.body.get('state')])).toEqual([
      [`/downloads/${IH}`, 'stop'],
      [`/downloads/${IH}`, 'resume'],
    ])
    const remove = run(['remove', '0123', '--with-data', '--port', String(f.port)])
    expect(await remove.code).toBe(0)
    expect(remove.out).toEqual(['Removed data.bin (01234567) and its files'])
    expect(f.requests.find((q) => q.method === 'DELETE')?.body.get('remove_data')).toBe('1')
    expect(f.downloads.map((d) => d.name)).toEqual(['other'])
  })

  it("sets a download's own rate limits, shows them, and sends them with a new download", async () => {
    const f = await fake()
    f.downloads = [view({ download_limit: 0, upload_limit: 0 })]
    const set = run(['limit', '0123', '--down', '500k', '--port', String(f.port)])
    expect(await set.code).toBe(0)
    expect(set.out).toEqual(['data.bin (01234567): download limit 500 KiB/s, upload limit unlimited'])
    const patch = f.requests.find((q) => q.method === 'PATCH')
    expect(patch?.path).toBe(`/downloads/${IH}`)
    expect([...(patch?.body.entries() ?? [])]).toEqual([['download_limit', '512000']])
    const show = run(['limit', IH, '--port', String(f.port)])
    expect(await show.code).toBe(0)
    expect(show.out).toEqual(['data.bin (01234567): download limit 500 KiB/s, upload limit unlimited'])
    expect(f.requests.filter((q) => q.method === 'PATCH')).toHaveLength(1)

    progressing(f)
    const add = run(['download', 'magnet:?xt=urn:btih:x', '--up-limit', '64k', '--port', String(f.port)])
    expect(await add.code).toBe(0)
    const put = f.requests.find((q) => q.method === 'PUT')
    expect(put?.body.get('upload_limit')).toBe('65536')
    expect(put?.body.has('download_limit')).toBe(false)
  })

  it('explains an unknown infohash, a short prefix and a core error', async () => {
    const f = await fake()
    f.downloads = [view()]
    const unknown = run(['pause', 'a'.repeat(40), '--port', String(f.port)])
    expect(await unknown.code).toBe(1)
    expect(unknown.err).toEqual(['tribler: this download does not exist'])
    const short = run(['pause', '01', '--port', String(f.port)])
    expect(await short.code).toBe(2)
    const none = run(['remove', 'abcd', '--port', String(f.port)])
    expect(await none.code).toBe(1)
    expect(none.err).toEqual(['tribler: no download has an infohash starting with abcd'])
    const notHex = run(['resume', 'xyz!', '--port', String(f.port)])
    expect(await notHex.code).toBe(2)
  })
})

describe('CoreClient', () => {
  it('brackets an IPv6 host in its URL', () => {
    expect(new CoreClient({ host: '::1', port: 8085 }).url).toBe('http://[::1]:8085')
  })
})
