/**
 * A real libtorrent peer (Debian `python3-libtorrent`, 2.0.x) as a child process, for interop and integration
 * tests. It listens on one loopback address only, with LSD, UPnP and NAT-PMP off, the DHT off unless asked for (then
 * bootstrapped from given loopback nodes only) and multiple connections per
 * IP allowed, so a whole swarm fits on 127.0.0.0/8 and nothing leaves the machine. The Python side is
 * `libtorrent_peer.py` beside this file; the two talk JSON lines over stdin/stdout.
 *
 * @example
 * ```ts
 * if (!libtorrentAvailable()) return // or describe.skipIf(!libtorrentAvailable())
 * const torrent = await createTorrent({ path: dataDir, out: path.join(tmp, 'x.torrent'), pieceLength: 65536 })
 * const seeder = await LibtorrentPeer.start({ host: '127.0.0.2' })
 * await seeder.addTorrent({ torrentPath: torrent.torrentPath, savePath: path.dirname(dataDir) })
 * await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)
 * // ... dial seeder.host:seeder.port, or seeder.addPeer({ ip, port }) to make it dial us
 * await seeder.stop()
 * ```
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const SCRIPT = fileURLToPath(new URL('./libtorrent_peer.py', import.meta.url))
const STOP_TIMEOUT_MS = 10_000
const REQUEST_TIMEOUT_MS = 30_000

/** One file of a torrent made by {@link createTorrent}, in torrent order. `path` starts with the torrent's name. */
export interface LibtorrentFile {
  path: string
  length: number
  /** Byte offset of the file in the torrent's concatenated data. */
  offset: number
  /** A BEP 47 pad file (only in torrents made with `pad: true`). */
  pad: boolean
}

/** A .torrent written by {@link createTorrent}, as libtorrent sees it. */
export interface LibtorrentTorrent {
  /** Where the .torrent file was written. */
  torrentPath: string
  /** The v1 info hash, lowercase hex. */
  infoHash: string
  name: string
  pieceLength: number
  totalLength: number
  numPieces: number
  files: LibtorrentFile[]
  /** SHA-1 of each piece, lowercase hex. */
  pieces: string[]
  /** The bencoded info dictionary, hex (what ut_metadata transfers). */
  infoHex: string
}

/** One connected peer as libtorrent reports it. */
export interface LibtorrentPeerInfo {
  ip: string
  port: number
  client: string
  utp: boolean
  /** How the connection is encrypted: MSE with RC4, MSE with a plaintext payload, or not at all. */
  encryption: 'rc4' | 'plaintext' | 'none'
  outgoing: boolean
  seed: boolean
  progress: number
  totalDownload: number
  totalUpload: number
}

/** The state of one torrent in a {@link LibtorrentPeer}. */
export interface LibtorrentTorrentStatus {
  infoHash: string
  /** libtorrent's state name: `checking_files`, `downloading`, `seeding`, ... */
  state: string
  /** 0..1 */
  progress: number
  isSeeding: boolean
  isFinished: boolean
  totalDone: number
  totalPayloadDownload: number
  totalPayloadUpload: number
  numPeers: number
  error: string | null
  peers: LibtorrentPeerInfo[]
}

/** Everything {@link LibtorrentPeer.status} reports. */
export interface LibtorrentStatus {
  port: number
  torrents: LibtorrentTorrentStatus[]
}

/** A notable libtorrent alert (finished, peer connected or disconnected, hash failure, errors). */
export interface LibtorrentAlert {
  type: string
  message: string
}

/** Options of {@link LibtorrentPeer.start}. */
export interface LibtorrentPeerOptions {
  /** Loopback address to listen on and dial from. Default `127.0.0.1`. */
  host?: string
  /** Port; 0 (default) picks a free one. */
  port?: number
  /** Accept and dial TCP. Default true. */
  tcp?: boolean
  /** Accept and dial uTP. Default true. */
  utp?: boolean
  /** Upload limit in bytes per second (default 0, unlimited). */
  uploadRate?: number
  /** Message stream encryption policy, both directions. Default `enabled` (libtorrent's default). */
  encryption?: 'enabled' | 'disabled' | 'forced'
  /** Payload methods allowed after an encrypted handshake (`allowed_enc_level`). Default `both`. */
  encryptionLevel?: 'both' | 'rc4' | 'plaintext'
  /** Choose RC4 over plaintext when both are possible (`prefer_rc4`). Default false, as libtorrent's default. */
  preferRc4?: boolean
  /** A SOCKS5 proxy for peer and tracker traffic (uTP goes through its UDP ASSOCIATE). */
  socks5?: { host: string; port: number; username?: string; password?: string }
  /**
   * Turn the DHT on (off by default), bootstrapped from these loopback nodes only (never the public routers);
   * torrents then find and announce peers through it.
   */
  dht?: { bootstrap: ReadonlyArray<{ host: string; port: number }> }
}

let pythonCache: string | null | undefined

/**
 * The Python interpreter that can `import libtorrent`: `$TRIBLER_PYTHON`, else the first of `python3` and the
 * Debian system interpreter that has the module (a pyenv shim on PATH may hide Debian's packages). Null if none.
 */
export function libtorrentPython(): string | null {
  if (pythonCache !== undefined) return pythonCache
  const candidates = [process.env.TRIBLER_PYTHON, 'python3', '/usr/bin/python3'].filter(
    (c): c is string => c !== undefined && c !== '',
  )
  pythonCache = null
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', 'import libtorrent'], { stdio: 'ignore', timeout: 20_000 })
    if (probe.status === 0) {
      pythonCache = candidate
      break
    }
  }
  return pythonCache
}

/** Whether python3-libtorrent is installed (tests use it with `describe.skipIf(!libtorrentAvailable())`). */
export function libtorrentAvailable(): boolean {
  return libtorrentPython() !== null
}

function requirePython(): string {
  const python = libtorrentPython()
  if (python === null) throw new Error('python3-libtorrent is not installed (see scripts/test-packages.txt)')
  return python
}

/**
 * Makes a .torrent of a file or folder with libtorrent (no trackers, v1 unless `pad`).
 *
 * @param opts.path the file or folder to share; the torrent's name is its base name
 * @param opts.out where to write the .torrent
 * @param opts.pieceLength bytes per piece; 0 (default) lets libtorrent choose
 * @param opts.pad make a hybrid v1+v2 torrent whose files are piece-aligned with BEP 47 pad files
 */
export async function createTorrent(opts: {
  path: string
  out: string
  pieceLength?: number
  private?: boolean
  pad?: boolean
}): Promise<LibtorrentTorrent> {
  const args = [SCRIPT, 'create', '--path', opts.path, '--out', opts.out]
  args.push('--piece-length', String(opts.pieceLength ?? 0))
  if (opts.private === true) args.push('--private')
  if (opts.pad === true) args.push('--pad')
  const result = spawnSync(requirePython(), args, { encoding: 'utf8', timeout: 120_000 })
  if (result.status !== 0) throw new Error(`creating a torrent failed: ${result.stderr}`)
  const described = JSON.parse(result.stdout) as Omit<LibtorrentTorrent, 'torrentPath'>
  return { ...described, torrentPath: opts.out }
}

/**
 * Writes files of random bytes under `dir` (sizes by relative path) and returns their contents.
 *
 * @example
 * ```ts
 * const data = await writeRandomFiles(path.join(tmp, 'share'), { 'a.bin': 300_000, 'sub/b.bin': 1000 })
 * ```
 */
export async function writeRandomFiles(
  dir: string,
  sizes: Record<string, number>,
): Promise<Map<string, Buffer>> {
  const contents = new Map<string, Buffer>()
  for (const [relative, size] of Object.entries(sizes)) {
    const file = path.join(dir, relative)
    await mkdir(path.dirname(file), { recursive: true })
    const data = randomBytes(size)
    await writeFile(file, data)
    contents.set(relative, data)
  }
  return contents
}

interface Pending {
  resolve: (value: Record<string, unknown>) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

/** A running libtorrent session in a child process. Always {@link LibtorrentPeer.stop} it (in `afterEach`). */
export class LibtorrentPeer {
  /** The address it listens on and dials from. */
  readonly host: string
  /** The port it listens on (TCP and uTP). */
  readonly port: number
  /** libtorrent's version, e.g. `2.0.8.0`. */
  readonly version: string
  /** Notable alerts received so far, oldest first. */
  readonly alerts: LibtorrentAlert[] = []
  /** The child's stderr so far (for failure messages). */
  stderr = ''

  readonly #child: ChildProcessWithoutNullStreams
  readonly #pending = new Map<number, Pending>()
  readonly #exited: Promise<void>
  #nextId = 1
  #exitedFlag = false

  private constructor(child: ChildProcessWithoutNullStreams, host: string, port: number, version: string) {
    this.#child = child
    this.host = host
    this.port = port
    this.version = version
    this.#exited = new Promise((resolve) =>
      // 'close' comes after the child's stdio has ended, so everything it wrote to stderr is in the message.
      child.once('close', (code, signal) => {
        this.#exitedFlag = true
        for (const pending of this.#pending.values()) {
          clearTimeout(pending.timer)
          pending.reject(
            new Error(`libtorrent peer exited (code ${code}, signal ${signal}): ${this.stderr.slice(-2000)}`),
          )
        }
        this.#pending.clear()
        resolve()
      }),
    )
  }

  /** The process id of the libtorrent child (benchmarks read its CPU time and peak RSS from /proc). */
  get pid(): number | undefined {
    return this.#child.pid
  }

  /** Starts a libtorrent session listening on `host:port` and resolves once it listens. */
  static async start(opts: LibtorrentPeerOptions = {}): Promise<LibtorrentPeer> {
    const host = opts.host ?? '127.0.0.1'
    if (!isLoopback(host)) throw new Error(`libtorrent test peers listen on loopback only, not ${host}`)
    const args = [SCRIPT, 'run', '--listen', `${host.includes(':') ? `[${host}]` : host}:${opts.port ?? 0}`]
    if (opts.tcp === false) args.push('--no-tcp')
    if (opts.utp === false) args.push('--no-utp')
    if (opts.uploadRate !== undefined) args.push('--upload-rate', String(opts.uploadRate))
    args.push('--encryption', opts.encryption ?? 'enabled')
    args.push('--enc-level', opts.encryptionLevel ?? 'both')
    if (opts.preferRc4 === true) args.push('--prefer-rc4')
    if (opts.socks5 !== undefined) {
      args.push('--socks5', `${opts.socks5.host}:${opts.socks5.port}`)
      if (opts.socks5.username !== undefined)
        args.push('--socks5-auth', `${opts.socks5.username}:${opts.socks5.password ?? ''}`)
    }
    if (opts.dht !== undefined) {
      args.push('--dht')
      for (const node of opts.dht.bootstrap) {
        if (!isLoopback(node.host))
          throw new Error(`DHT bootstrap nodes are on loopback only, not ${node.host}`)
        args.push('--dht-bootstrap', `${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`)
      }
    }
    // A crash inside libtorrent prints the Python stack of every thread (faulthandler) instead of nothing.
    const child = spawn(requirePython(), args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONFAULTHANDLER: '1' },
    })
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk
    })
    const lines = createInterface({ input: child.stdout })
    const ready = await new Promise<{ port: number; version: string }>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`libtorrent peer did not start: ${stderr}`))
      }, 30_000)
      const onLine = (line: string): void => {
        const event = parseLine(line)
        if (event?.event === 'ready') {
          clearTimeout(timer)
          lines.off('line', onLine)
          resolve({ port: Number(event.port), version: String(event.version) })
        } else if (event?.event === 'error') {
          clearTimeout(timer)
          reject(new Error(`libtorrent peer failed: ${String(event.message)}`))
        }
      }
      lines.on('line', onLine)
      child.once('close', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`libtorrent peer exited (code ${code}, signal ${signal}): ${stderr}`))
      })
    })
    const peer = new LibtorrentPeer(child, host, ready.port, ready.version)
    peer.stderr = stderr
    child.stderr.on('data', (chunk: string) => {
      peer.stderr += chunk
    })
    lines.on('line', (line) => peer.#onLine(line))
    return peer
  }

  /**
   * Adds a torrent. With the data already under `savePath`, libtorrent checks it and seeds; otherwise it leeches.
   * `seedMode` skips the check (data assumed complete); `pex: false` disables ut_pex for this torrent.
   */
  async addTorrent(opts: {
    torrentPath: string
    savePath: string
    seedMode?: boolean
    pex?: boolean
  }): Promise<{ infoHash: string }> {
    const reply = await this.#request({
      cmd: 'add_torrent',
      torrent: opts.torrentPath,
      save_path: opts.savePath,
      seed_mode: opts.seedMode ?? false,
      pex: opts.pex ?? true,
    })
    return { infoHash: String(reply.infoHash) }
  }

  /** Makes libtorrent dial a peer for a torrent (the only torrent unless `infoHash` is given). */
  async addPeer(opts: { ip: string; port: number; infoHash?: string }): Promise<void> {
    if (!isLoopback(opts.ip)) throw new Error(`test peers are on loopback only, not ${opts.ip}`)
    await this.#request({ cmd: 'add_peer', ip: opts.ip, port: opts.port, info_hash: opts.infoHash })
  }

  /** Progress, state and connected peers of every torrent. */
  async status(): Promise<LibtorrentStatus> {
    const reply = await this.#request({ cmd: 'status' })
    return { port: Number(reply.port), torrents: reply.torrents as LibtorrentTorrentStatus[] }
  }

  /**
   * Makes libtorrent look a torrent up in the DHT and announce it there now (the only torrent unless `infoHash` is
   * given), rather than at its next scheduled announce. Needs the `dht` option.
   */
  async dhtAnnounce(infoHash?: string): Promise<void> {
    await this.#request({ cmd: 'dht_announce', info_hash: infoHash })
  }

  /**
   * Polls {@link status} until `predicate` holds; rejects after `timeoutMs` (default 60 s) with the last status.
   */
  async waitFor(
    predicate: (status: LibtorrentStatus) => boolean,
    opts: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
  ): Promise<LibtorrentStatus> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000)
    let last: LibtorrentStatus | undefined
    for (;;) {
      opts.signal?.throwIfAborted()
      last = await this.status()
      if (predicate(last)) return last
      if (Date.now() > deadline) {
        throw new Error(`libtorrent condition not met; last status ${JSON.stringify(last)}`)
      }
      await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 100))
    }
  }

  /** Resolves with the first alert (already received or to come) that matches; rejects after `timeoutMs`. */
  async waitForAlert(
    predicate: (alert: LibtorrentAlert) => boolean,
    opts: { timeoutMs?: number } = {},
  ): Promise<LibtorrentAlert> {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000)
    for (;;) {
      const found = this.alerts.find(predicate)
      if (found !== undefined) return found
      if (Date.now() > deadline || this.#exitedFlag) {
        throw new Error(`no matching libtorrent alert; got ${JSON.stringify(this.alerts.slice(-20))}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** Stops the session and waits for the process to exit (killing it after 10 s). Safe to call twice. */
  async stop(): Promise<void> {
    if (this.#exitedFlag) return
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    try {
      this.#child.stdin.end(`${JSON.stringify({ id: 0, cmd: 'stop' })}\n`)
    } catch {
      this.#child.kill('SIGKILL')
    }
    await this.#exited
    clearTimeout(killer)
  }

  #request(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.#exitedFlag) return Promise.reject(new Error('libtorrent peer has exited'))
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`libtorrent peer did not answer ${String(cmd.cmd)}`))
      }, REQUEST_TIMEOUT_MS)
      this.#pending.set(id, { resolve, reject, timer })
      this.#child.stdin.write(`${JSON.stringify({ ...cmd, id })}\n`)
    })
  }

  #onLine(line: string): void {
    const message = parseLine(line)
    if (message === undefined) return
    if (message.event === 'alert') {
      this.alerts.push({ type: String(message.type), message: String(message.message) })
      return
    }
    const id = typeof message.id === 'number' ? message.id : undefined
    const pending = id === undefined ? undefined : this.#pending.get(id)
    if (pending === undefined || id === undefined) return
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    if (message.ok === true) pending.resolve(message)
    else pending.reject(new Error(`libtorrent: ${String(message.error)}`))
  }
}

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line)
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

function isLoopback(host: string): boolean {
  return host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}
