import { isIP } from 'node:net'
import { type DownloadManager, EngineError } from '../../bittorrent/engine/index.js'
import {
  HttpTrackerClient,
  parseUdpUrl,
  type TrackerClient,
  TrackerError,
  UdpTrackerClient,
} from '../../bittorrent/tracker/index.js'
import { anySignal, type Clock, errorMessage, logger } from '../../common/index.js'
import { type DatagramSocket, type DatagramTransport, udpTransport } from '../../net/index.js'
import type { TorrentTable } from './store.js'
import {
  DHT_TRACKER,
  type HealthCheckOptions,
  type HealthReport,
  type SwarmHealth,
  TorrentsError,
} from './types.js'

const log = logger('content:torrents:health')

/** A torrent checked less than this long ago answers from the database unless a refresh is asked (Tribler: 900 s). */
export const CHECK_INTERVAL_SEC = 900

/** What a {@link HealthChecker} needs. */
export interface HealthCheckerDeps {
  readonly torrents: TorrentTable
  readonly clock: Clock
  /** Binds the UDP sockets of UDP scrapes; default real UDP. */
  readonly transport?: DatagramTransport
  /** The HTTP(S) tracker client; default a {@link HttpTrackerClient}. */
  readonly http?: TrackerClient
  /** The engine that probes the swarm through the DHT (the `DHT` entry); none: the DHT is not available. */
  readonly swarm?: () => Pick<DownloadManager, 'probeSwarm'> | undefined
}

/** Options of a {@link HealthChecker}. */
export interface HealthCheckerOptions {
  /** First UDP retransmission timeout (default 3 s, doubled after each). */
  readonly udpRetransmitBaseMs?: number
}

function scheme(url: string): 'http' | 'udp' | 'dht' | undefined {
  if (url === DHT_TRACKER) return 'dht'
  const lower = url.toLowerCase()
  if (lower.startsWith('http://') || lower.startsWith('https://')) return 'http'
  if (lower.startsWith('udp://')) return 'udp'
  return undefined
}

/**
 * Swarm health of known torrents, as Tribler's torrent checker finds it for the GUI: a scrape of every HTTP and UDP
 * tracker of the torrent at the same time, within one timeout. The best answer (most seeders, then fewest leechers)
 * is stored with the time of the check. The `DHT` entry (torrents that are not private) comes from the engine: it
 * fetches the metadata through the DHT and counts the peers it connects to, those with every piece as seeders.
 *
 * @example
 * ```ts
 * const report = await checker.check(infohash, { timeoutMs: 20_000, refresh: true })
 * // { 'http://127.0.0.1:6969/announce': { seeders: 1, leechers: 0, infohash }, DHT: { seeders: 1, leechers: 0, infohash } }
 * ```
 */
export class HealthChecker {
  readonly #torrents: TorrentTable
  readonly #clock: Clock
  readonly #transport: DatagramTransport
  readonly #http: TrackerClient
  readonly #udpBaseMs: number
  readonly #swarm: () => Pick<DownloadManager, 'probeSwarm'> | undefined
  readonly #closed = new AbortController()
  readonly #udp = new Map<4 | 6, Promise<{ client: UdpTrackerClient; socket: DatagramSocket }>>()

  constructor(deps: HealthCheckerDeps, options: HealthCheckerOptions = {}) {
    this.#torrents = deps.torrents
    this.#clock = deps.clock
    this.#transport = deps.transport ?? udpTransport
    this.#http = deps.http ?? new HttpTrackerClient()
    this.#udpBaseMs = options.udpRetransmitBaseMs ?? 3000
    this.#swarm = deps.swarm ?? (() => undefined)
  }

  /**
   * Checks the health of a known torrent. Rejects with `UNKNOWN_TORRENT` when the store does not have it and
   * `CHECK_FAILED` when it has no tracker to ask. A tracker that fails gives an `{ error }` entry.
   */
  async check(infohash: string, options: HealthCheckOptions): Promise<HealthReport> {
    if (this.#closed.signal.aborted)
      throw new TorrentsError('NOT_RUNNING', {}, 'the torrent checker is stopped')
    const torrent = this.#torrents.get(infohash)
    if (torrent === undefined)
      throw new TorrentsError('UNKNOWN_TORRENT', { infohash }, 'torrent not found in database')
    const nowSec = Math.floor(this.#clock.now() / 1000)
    if (options.refresh !== true && nowSec - torrent.lastTrackerCheck < CHECK_INTERVAL_SEC) {
      return {
        db: { seeders: torrent.numSeeders, leechers: torrent.numLeechers, infohash: torrent.infohash },
      }
    }
    const trackers = torrent.trackers.filter((url) => scheme(url) !== undefined)
    if (trackers.length === 0) {
      throw new TorrentsError('CHECK_FAILED', { infohash }, 'No trackers available for this torrent')
    }
    const signal = anySignal(this.#closed.signal, options.signal, options.timeoutMs)
    const hash = Buffer.from(torrent.infohash, 'hex')
    const entries = await Promise.all(
      trackers.map(async (url) => [url, await this.#scrape(url, hash, signal, options.timeoutMs)] as const),
    )
    const report: HealthReport = {}
    let best = { seeders: 0, leechers: 0 }
    let answered = false
    for (const [url, entry] of entries) {
      report[url] = entry
      if ('error' in entry) continue
      if (
        !answered ||
        entry.seeders > best.seeders ||
        (entry.seeders === best.seeders && entry.leechers < best.leechers)
      ) {
        best = { seeders: entry.seeders, leechers: entry.leechers }
      }
      answered = true
    }
    // As Tribler does, a check where every tracker failed is stored too (as 0/0), so it is not repeated at once.
    this.#torrents.updateHealth(torrent.infohash, { ...best, checkedAtSec: nowSec })
    return report
  }

  async #scrape(
    url: string,
    hash: Buffer,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<SwarmHealth | { error: string }> {
    const infohash = hash.toString('hex')
    const kind = scheme(url)
    if (kind === 'dht') return this.#probeDht(infohash, signal, timeoutMs)
    try {
      const client = kind === 'udp' ? await this.#udpClient(url) : this.#http
      const answer = await client.scrape(url, [hash], { signal })
      const entry = answer.get(infohash)
      // A tracker that does not know the torrent leaves it out: nobody is in the swarm there.
      return { seeders: entry?.complete ?? 0, leechers: entry?.incomplete ?? 0, infohash }
    } catch (err) {
      const timedOut =
        signal.aborted || (err instanceof TrackerError && (err.code === 'TIMEOUT' || err.code === 'ABORTED'))
      log.debug('scrape failed', { url, err })
      return { error: timedOut ? 'timeout' : errorMessage(err) }
    }
  }

  async #probeDht(
    infohash: string,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<SwarmHealth | { error: string }> {
    const engine = this.#swarm()
    if (engine?.probeSwarm === undefined) return { error: 'DHT not available' }
    try {
      const { seeders, leechers } = await engine.probeSwarm(infohash, { timeoutMs, signal })
      return { seeders, leechers, infohash }
    } catch (err) {
      log.debug('DHT probe failed', { infohash, err })
      if (err instanceof EngineError) {
        if (err.code === 'METADATA_TIMEOUT') return { error: 'DHT timeout' }
        if (err.code === 'DHT_DISABLED' || err.code === 'NOT_RUNNING') return { error: 'DHT not available' }
      }
      return { error: signal.aborted ? 'DHT timeout' : errorMessage(err) }
    }
  }

  async #udpClient(url: string): Promise<UdpTrackerClient> {
    const family = isIP(parseUdpUrl(url).host) === 6 ? 6 : 4
    let entry = this.#udp.get(family)
    if (entry === undefined) {
      entry = this.#transport.bind({ host: family === 6 ? '::' : '0.0.0.0', port: 0 }).then((socket) => ({
        socket,
        client: new UdpTrackerClient(
          { socket, clock: this.#clock },
          { retransmitBaseMs: this.#udpBaseMs, maxRetransmits: 4 },
        ),
      }))
      this.#udp.set(family, entry)
      entry.catch(() => this.#udp.delete(family))
    }
    return (await entry).client
  }

  /** Stops every check in progress and closes the UDP sockets. */
  async close(): Promise<void> {
    this.#closed.abort()
    const sockets = await Promise.allSettled([...this.#udp.values()])
    this.#udp.clear()
    for (const result of sockets) {
      if (result.status !== 'fulfilled') continue
      result.value.client.close()
      await result.value.socket.close()
    }
  }
}
