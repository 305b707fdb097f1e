/**
 * Real trackers for interop tests, on loopback only: opentracker (Debian package, HTTP) as a child process, and the
 * UDP server of the npm `bittorrent-tracker` package in-process (opentracker's IPv4 UDP announce is broken and the
 * Debian build has no IPv6).
 *
 * @example
 * ```ts
 * const tracker = await startOpentracker('127.0.0.31')
 * await client.announce(`${tracker.url}/announce`, request)
 * await tracker.stop()
 * ```
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { AnnounceRequest } from '../../src/bittorrent/tracker/index.js'

/** An announce of a fresh random (binary) peer id, with the fields a test cares about overridable. */
export function announceRequest(
  infoHash: Uint8Array,
  port: number,
  extra: Partial<AnnounceRequest> = {},
): AnnounceRequest {
  return {
    infoHash,
    peerId: randomBytes(20),
    port,
    uploaded: 0,
    downloaded: 0,
    left: 1000,
    event: 'started',
    ...extra,
  }
}

/** Whether the `opentracker` binary is installed. */
export function opentrackerAvailable(): boolean {
  return spawnSync('opentracker', ['-h'], { stdio: 'ignore' }).error === undefined
}

/** A free TCP port on `host`. */
export async function freePort(host: string): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** A running opentracker. */
export interface RunningTracker {
  /** `http://host:port` (append `/announce`). */
  readonly url: string
  stop(): Promise<void>
}

/**
 * Starts opentracker on `host` (loopback), HTTP and UDP on the same free port; resolves once it answers. The Debian
 * build only serves whitelisted torrents, so the info hashes to serve are given up front.
 */
export async function startOpentracker(
  host: string,
  infoHashes: readonly Uint8Array[],
): Promise<RunningTracker> {
  if (!host.startsWith('127.')) throw new Error('opentracker runs on loopback only in tests')
  const port = await freePort(host)
  const whitelist = path.join(tmpdir(), `opentracker-whitelist-${process.pid}-${port}`)
  writeFileSync(whitelist, infoHashes.map((hash) => `${Buffer.from(hash).toString('hex')}\n`).join(''))
  const child: ChildProcess = spawn(
    'opentracker',
    ['-i', host, '-p', String(port), '-P', String(port), '-w', whitelist],
    { stdio: 'ignore' },
  )
  const url = `http://${host}:${port}`
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      await fetch(`${url}/stats`)
      break
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL')
        rmSync(whitelist, { force: true })
        throw new Error('opentracker did not start')
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(whitelist, { force: true })
    },
  }
}

/** A running `bittorrent-tracker` UDP server. */
export interface RunningUdpTracker {
  readonly port: number
  /** Every announce the tracker took: the peer id (hex), the event and the address it came from. */
  readonly announces: ReadonlyArray<{ peerId: string; event: string; from: string }>
  stop(): Promise<void>
}

/** Starts the `bittorrent-tracker` UDP server on `host4` and `host6` (both loopback). */
export async function startUdpTracker(host4: string, host6: string): Promise<RunningUdpTracker> {
  if (!host4.startsWith('127.') || host6 !== '::1')
    throw new Error('UDP trackers run on loopback only in tests')
  const { Server } = await import('bittorrent-tracker')
  const port = await freePort(host4)
  const server = new Server({ udp: true, http: false, ws: false, stats: false, interval: 60_000 })
  server.on('error', () => undefined)
  server.on('warning', () => undefined)
  const announces: { peerId: string; event: string; from: string }[] = []
  for (const event of ['start', 'update', 'complete', 'stop'])
    server.on(event, (from: string, params: { peer_id?: string }) =>
      announces.push({ peerId: params.peer_id ?? '', event, from }),
    )
  await new Promise<void>((resolve) => server.listen(port, { udp: host4, udp6: host6 }, () => resolve()))
  return {
    port,
    announces,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
