import { type Clock, errorMessage, logger, systemClock, TaskScope, TypedEmitter } from '../../common/index.js'
import { uniquePeers } from './compact.js'
import {
  type AnnounceEvent,
  type AnnounceRequest,
  type AnnounceResponse,
  type PeerAddress,
  type TrackerClient,
  TrackerError,
  type TrackerStatus,
} from './types.js'

const log = logger('bittorrent:tracker')

/** The transfer figures an announce reports, read at announce time. */
export interface AnnounceStats {
  uploaded: number
  downloaded: number
  left: number
}

/** What a {@link TrackerManager} needs. */
export interface TrackerManagerDeps {
  /** Clients by URL scheme: `http` (also used for https) and `udp`. A scheme without a client is shown as unsupported. */
  clients: { http?: TrackerClient; udp?: TrackerClient }
  clock?: Clock
  /** Random numbers in [0, 1) for the BEP 12 shuffle. */
  random?: () => number
}

/** Options of a {@link TrackerManager}. */
export interface TrackerManagerOptions {
  /** The torrent's `announce-list` (BEP 12), or `[[announce]]`. Empty and repeated URLs are ignored. */
  tiers: readonly (readonly string[])[]
  infoHash: Uint8Array
  peerId: Uint8Array
  port: number
  /** Current transfer figures. */
  stats: () => AnnounceStats
  numWant?: number
  key?: number
  /** Time allowed for one tracker request (default 30 s). */
  requestTimeoutMs?: number
  /** Announce to one working tracker in every tier instead of only the first working tier (default false). */
  announceToAllTiers?: boolean
  /** Smallest delay between regular announces, whatever the tracker says (default 60 s). */
  minIntervalMs?: number
  /** Delay after every tracker failed, doubled per failure up to one hour (default 60 s). */
  retryBaseMs?: number
}

/** Events of a {@link TrackerManager}. */
export interface TrackerManagerEvents {
  /** Peers from one tracker's announce reply. */
  peers: { url: string; peers: PeerAddress[] }
  /** A tracker's status changed. */
  status: TrackerStatus
}

interface Entry {
  readonly url: string
  readonly tier: number
  status: string
  peers: number
  seeders?: number
  leechers?: number
  lastAnnounceMs: number
  trackerId?: string
  warning?: string
  working: boolean
}

const MAX_RETRY_MS = 60 * 60 * 1000

/** The status text of a failed announce, worded as Tribler words libtorrent's tracker alerts. */
function statusText(err: unknown): string {
  if (!(err instanceof TrackerError)) return `Error: ${errorMessage(err)}`
  switch (err.code) {
    case 'TRACKER_FAILURE':
      return `Error: ${String(err.details.reason)}`
    case 'HTTP_STATUS':
      return `HTTP status code ${String(err.details.status)}`
    case 'TIMEOUT':
      return 'Timeout'
    case 'NETWORK':
    case 'ABORTED':
      return 'Not working'
    default:
      return `Error: ${err.message}`
  }
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const a = items[i]!
    items[i] = items[j]!
    items[j] = a
  }
  return items
}

/**
 * The trackers of one torrent, announced to per BEP 12: tiers in order, trackers in a tier shuffled once, the
 * first that answers moved to the front of its tier. Schedules regular re-announces by the tracker's interval and
 * retries with backoff when every tracker failed. Keeps the per-tracker status the REST API shows.
 *
 * @example
 * ```ts
 * const trackers = new TrackerManager({ clients: { http, udp } }, { tiers, infoHash, peerId, port, stats })
 * trackers.events.on('peers', ({ peers }) => download.addPeers(peers))
 * await trackers.start()
 * ```
 */
export class TrackerManager {
  readonly events = new TypedEmitter<TrackerManagerEvents>()
  readonly #deps: TrackerManagerDeps
  readonly #options: TrackerManagerOptions
  readonly #clock: Clock
  readonly #tiers: Entry[][]
  readonly #stopped = new AbortController()
  readonly #tasks: TaskScope
  #nextAnnounceMs = 0
  #failures = 0
  #running: Promise<PeerAddress[]> | undefined

  constructor(deps: TrackerManagerDeps, options: TrackerManagerOptions) {
    this.#deps = deps
    this.#options = options
    this.#clock = deps.clock ?? systemClock
    this.#tasks = new TaskScope(this.#stopped.signal, this.#clock)
    const random = deps.random ?? Math.random
    const seen = new Set<string>()
    this.#tiers = []
    for (const tier of options.tiers) {
      const entries: Entry[] = []
      for (const raw of tier) {
        const url = raw.trim()
        if (url === '' || seen.has(url)) continue
        seen.add(url)
        entries.push({
          url,
          tier: this.#tiers.length,
          status: 'Not contacted yet',
          peers: 0,
          lastAnnounceMs: 0,
          working: false,
        })
      }
      if (entries.length > 0) this.#tiers.push(shuffle(entries, random))
    }
  }

  /** Per-tracker status, tier by tier in the current try order. */
  get status(): TrackerStatus[] {
    return this.#tiers.flat().map((entry) => this.#statusOf(entry))
  }

  /** Tracker URLs by tier, in the current try order. */
  get tiers(): string[][] {
    return this.#tiers.map((tier) => tier.map((entry) => entry.url))
  }

  /** Announces `started` now, then keeps announcing on schedule until {@link TrackerManager.stop}. */
  async start(): Promise<void> {
    await this.announce('started')
  }

  /**
   * Announces `stopped` to the trackers that worked (best effort, bounded by the request timeout) and cancels
   * the schedule.
   */
  async stop(): Promise<void> {
    if (this.#stopped.signal.aborted) return
    this.#stopped.abort()
    const working = this.#tiers.flat().filter((entry) => entry.working)
    await Promise.allSettled(
      working.map((entry) => this.#announceOne(entry, 'stopped', AbortSignal.timeout(this.#timeoutMs))),
    )
  }

  /**
   * One announce round now (also used for `completed` and for a manual re-announce). Resolves with all the peers
   * received; never rejects: failures are in the status.
   */
  announce(event: AnnounceEvent = 'none'): Promise<PeerAddress[]> {
    if (this.#running !== undefined && event === 'none') return this.#running
    const run = this.#round(event).finally(() => {
      if (this.#running === run) this.#running = undefined
    })
    this.#running = run
    return run
  }

  get #timeoutMs(): number {
    return this.#options.requestTimeoutMs ?? 30_000
  }

  async #round(event: AnnounceEvent): Promise<PeerAddress[]> {
    const all: PeerAddress[] = []
    let intervalMs: number | undefined
    for (const tier of this.#tiers) {
      if (this.#stopped.signal.aborted) break
      const winner = await this.#announceTier(tier, event)
      if (winner === undefined) continue
      all.push(...winner.peers)
      const min = Math.max(this.#options.minIntervalMs ?? 60_000, (winner.minIntervalSec ?? 0) * 1000)
      intervalMs = Math.min(intervalMs ?? Number.POSITIVE_INFINITY, Math.max(min, winner.intervalSec * 1000))
      if (this.#options.announceToAllTiers !== true) break
    }
    if (intervalMs === undefined) {
      this.#failures += 1
      intervalMs = Math.min(MAX_RETRY_MS, (this.#options.retryBaseMs ?? 60_000) * 2 ** (this.#failures - 1))
    } else {
      this.#failures = 0
    }
    if (!this.#stopped.signal.aborted && event !== 'stopped' && this.#tiers.length > 0) {
      this.#nextAnnounceMs = this.#clock.now() + intervalMs
      this.#tasks.after('announce', intervalMs, () => this.announce('none'))
    }
    return uniquePeers(all)
  }

  /** Tries the trackers of one tier in order; the first that answers moves to the front. */
  async #announceTier(tier: Entry[], event: AnnounceEvent): Promise<AnnounceResponse | undefined> {
    for (const entry of [...tier]) {
      if (this.#stopped.signal.aborted) return undefined
      const response = await this.#announceOne(
        entry,
        event,
        AbortSignal.any([this.#stopped.signal, AbortSignal.timeout(this.#timeoutMs)]),
      )
      if (response === undefined) continue
      const index = tier.indexOf(entry)
      if (index > 0) {
        tier.splice(index, 1)
        tier.unshift(entry)
      }
      return response
    }
    return undefined
  }

  async #announceOne(
    entry: Entry,
    event: AnnounceEvent,
    signal: AbortSignal,
  ): Promise<AnnounceResponse | undefined> {
    const client = this.#clientFor(entry.url)
    if (client === undefined) {
      this.#update(entry, { status: 'Error: unsupported tracker scheme', working: false })
      return undefined
    }
    const stats = this.#options.stats()
    const request: AnnounceRequest = {
      infoHash: this.#options.infoHash,
      peerId: this.#options.peerId,
      port: this.#options.port,
      uploaded: stats.uploaded,
      downloaded: stats.downloaded,
      left: stats.left,
      event,
      ...(this.#options.numWant === undefined ? {} : { numWant: this.#options.numWant }),
      ...(this.#options.key === undefined ? {} : { key: this.#options.key }),
      ...(entry.trackerId === undefined ? {} : { trackerId: entry.trackerId }),
    }
    entry.lastAnnounceMs = this.#clock.now()
    try {
      const response = await client.announce(entry.url, request, { signal })
      if (response.trackerId !== undefined) entry.trackerId = response.trackerId
      this.#update(entry, {
        status: 'Working',
        working: true,
        ...(response.warning === undefined ? {} : { warning: response.warning }),
        peers: response.peers.length,
        ...(response.complete === undefined ? {} : { seeders: response.complete }),
        ...(response.incomplete === undefined ? {} : { leechers: response.incomplete }),
      })
      if (response.peers.length > 0 && event !== 'stopped') {
        this.events.emit('peers', { url: entry.url, peers: response.peers })
      }
      return response
    } catch (err) {
      log.debug('announce failed', { code: err instanceof TrackerError ? err.code : undefined })
      if (!this.#stopped.signal.aborted || event === 'stopped') {
        this.#update(entry, { status: statusText(err), working: false })
      }
      return undefined
    }
  }

  #clientFor(url: string): TrackerClient | undefined {
    const scheme = url.slice(0, url.indexOf(':')).toLowerCase()
    if (scheme === 'http' || scheme === 'https') return this.#deps.clients.http
    if (scheme === 'udp') return this.#deps.clients.udp
    return undefined
  }

  #update(entry: Entry, change: Partial<Entry>): void {
    Object.assign(entry, change)
    this.events.emit('status', this.#statusOf(entry))
  }

  #statusOf(entry: Entry): TrackerStatus {
    return {
      url: entry.url,
      tier: entry.tier,
      peers: entry.peers,
      status: entry.status,
      ...(entry.seeders === undefined ? {} : { seeders: entry.seeders }),
      ...(entry.leechers === undefined ? {} : { leechers: entry.leechers }),
      ...(entry.warning === undefined ? {} : { warning: entry.warning }),
      lastAnnounceMs: entry.lastAnnounceMs,
      nextAnnounceMs: this.#stopped.signal.aborted ? 0 : this.#nextAnnounceMs,
    }
  }
}
