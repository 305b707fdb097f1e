/**
 * A libtorrent session that discovers peers through the DHT only (`dht-libtorrent-node.py` beside this file),
 * bootstrapped from one given node, on a loopback address. For DHT interop tests.
 *
 * @example
 * ```ts
 * const lt = await DhtLibtorrentNode.start({ host: '127.0.0.42', bootstrap: { host: '127.0.0.41', port } })
 * const { peers } = await lt.getPeers(infoHashHex)
 * await lt.stop()
 * ```
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { libtorrentPython } from './libtorrent.js'

const SCRIPT = fileURLToPath(new URL('./dht-libtorrent-node.py', import.meta.url))

/** A running DHT-only libtorrent session. */
export class DhtLibtorrentNode {
  readonly host: string
  readonly port: number
  stderr = ''
  readonly #child: ChildProcessWithoutNullStreams
  readonly #waiting = new Map<number, (reply: Record<string, unknown>) => void>()
  #nextId = 1

  private constructor(child: ChildProcessWithoutNullStreams, host: string, port: number) {
    this.#child = child
    this.host = host
    this.port = port
  }

  /** Starts the session on `host` (loopback only) with `bootstrap` as its only DHT bootstrap node. */
  static async start(opts: {
    host: string
    bootstrap: { host: string; port: number }
  }): Promise<DhtLibtorrentNode> {
    if (!/^127\.\d+\.\d+\.\d+$/.test(opts.host) || !/^127\./.test(opts.bootstrap.host)) {
      throw new Error('DHT interop nodes stay on loopback')
    }
    const python = libtorrentPython()
    if (python === null) throw new Error('python3-libtorrent is not installed')
    const child = spawn(
      python,
      [SCRIPT, '--listen', `${opts.host}:0`, '--bootstrap', `${opts.bootstrap.host}:${opts.bootstrap.port}`],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    )
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk
    })
    const lines = createInterface({ input: child.stdout })
    let node: DhtLibtorrentNode | undefined
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`libtorrent did not start: ${stderr}`)), 30_000)
      child.once('exit', (code) => reject(new Error(`libtorrent exited with ${code}: ${stderr}`)))
      lines.on('line', (line) => {
        let message: Record<string, unknown>
        try {
          message = JSON.parse(line) as Record<string, unknown>
        } catch {
          return
        }
        if (message.event === 'ready') {
          clearTimeout(timer)
          resolve(Number(message.port))
          return
        }
        if (node !== undefined) node.#deliver(message)
      })
    })
    node = new DhtLibtorrentNode(child, opts.host, port)
    node.stderr = stderr
    return node
  }

  /** Seeds a torrent whose data is under `savePath`; libtorrent announces it into the DHT. */
  async addTorrent(torrentPath: string, savePath: string): Promise<void> {
    await this.#request({ cmd: 'add_torrent', torrent: torrentPath, save_path: savePath })
  }

  /** Makes libtorrent announce a torrent it seeds into the DHT now. */
  async announce(infoHashHex: string): Promise<void> {
    await this.#request({ cmd: 'dht_announce', info_hash: infoHashHex })
  }

  /** A libtorrent get_peers lookup. */
  async getPeers(infoHashHex: string, timeoutSec = 10): Promise<Array<{ ip: string; port: number }>> {
    const reply = await this.#request({ cmd: 'get_peers', info_hash: infoHashHex, timeout: timeoutSec })
    return reply.peers as Array<{ ip: string; port: number }>
  }

  /** Nodes in libtorrent's routing table. */
  async dhtNodes(): Promise<number> {
    return Number((await this.#request({ cmd: 'status' })).dhtNodes)
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return
    const exited = new Promise((resolve) => this.#child.once('exit', resolve))
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000)
    this.#child.stdin.end(`${JSON.stringify({ id: 0, cmd: 'stop' })}\n`)
    await exited
    clearTimeout(killer)
  }

  #deliver(message: Record<string, unknown>): void {
    const id = Number(message.id)
    this.#waiting.get(id)?.(message)
    this.#waiting.delete(id)
  }

  #request(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`libtorrent did not answer ${String(cmd.cmd)}`)),
        60_000,
      )
      this.#waiting.set(id, (reply) => {
        clearTimeout(timer)
        if (reply.ok === true) resolve(reply)
        else reject(new Error(`libtorrent: ${String(reply.error)}`))
      })
      this.#child.stdin.write(`${JSON.stringify({ ...cmd, id })}\n`)
    })
  }
}
