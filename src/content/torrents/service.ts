import type { DownloadManager } from '../../bittorrent/engine/index.js'
import type { TrackerClient } from '../../bittorrent/tracker/index.js'
import { errorMessage, type Service } from '../../common/index.js'
import type { TorrentInfo } from '../../metainfo/index.js'
import type { DatagramTransport } from '../../net/index.js'
import type { ServiceDeps } from '../../session/index.js'
import { HealthChecker } from './health.js'
import { TORRENT_MIGRATIONS, TorrentTable } from './store.js'
import {
  type HealthCheckOptions,
  type HealthReport,
  type KnownTorrent,
  TORRENT_STORE_SERVICE,
  TorrentsError,
} from './types.js'

/** Options of a {@link TorrentService}. */
export interface TorrentServiceOptions {
  /**
   * The core's download manager, looked up once the core has started: torrents of downloads are remembered when
   * their metadata is known.
   */
  readonly downloads?: () => DownloadManager | undefined
  /** Binds the UDP sockets of health checks; default real UDP. */
  readonly transport?: DatagramTransport
  /** HTTP tracker client for health checks. */
  readonly http?: TrackerClient
  readonly udpRetransmitBaseMs?: number
}

/**
 * The torrent store and health checker of the core (REST `/torrents`): remembers every torrent the core learns of
 * (downloads, `/torrentinfo`, `/createtorrent`) and scrapes their trackers on request.
 *
 * @example
 * ```ts
 * const torrents = session.addService((deps) => new TorrentService(deps, { downloads: () => manager }))
 * await session.start()
 * torrents.remember(torrentBytes)
 * await torrents.checkHealth(infohash, { timeoutMs: 20_000 })
 * ```
 */
export class TorrentService implements Service {
  readonly name = TORRENT_STORE_SERVICE
  readonly table: TorrentTable
  readonly #deps: Pick<ServiceDeps, 'store' | 'clock' | 'config' | 'events' | 'logger'>
  readonly #options: TorrentServiceOptions
  readonly #checker: HealthChecker
  readonly #stopped = new AbortController()
  readonly #unhook: Array<() => void> = []
  #hooked = false

  constructor(
    deps: Pick<ServiceDeps, 'store' | 'clock' | 'config' | 'events' | 'logger'>,
    options: TorrentServiceOptions = {},
  ) {
    this.#deps = deps
    this.#options = options
    deps.store.register(TORRENT_MIGRATIONS)
    this.table = new TorrentTable(() => deps.store.db, deps.clock)
    this.#checker = new HealthChecker(
      {
        torrents: this.table,
        clock: deps.clock,
        swarm: () => options.downloads?.(),
        ...(options.transport === undefined ? {} : { transport: options.transport }),
        ...(options.http === undefined ? {} : { http: options.http }),
      },
      options.udpRetransmitBaseMs === undefined ? {} : { udpRetransmitBaseMs: options.udpRetransmitBaseMs },
    )
  }

  async start(): Promise<void> {
    // The download manager may start after this service; the core's start is the moment every service runs.
    this.#unhook.push(this.#deps.events.on('tribler_started', () => this.#hookDownloads()))
    this.#hookDownloads()
  }

  async stop(): Promise<void> {
    this.#stopped.abort()
    for (const off of this.#unhook.splice(0)) off()
    await this.#checker.close()
  }

  /** Records a torrent (parsed, or the bytes of a .torrent); see {@link TorrentTable.remember}. */
  remember(torrent: TorrentInfo | Uint8Array): KnownTorrent {
    return this.table.remember(torrent)
  }

  get(infohash: string): KnownTorrent | undefined {
    return this.table.get(infohash)
  }

  /**
   * Scrapes the torrent's trackers (see {@link HealthChecker.check}). Rejects with `CHECK_FAILED` when torrent
   * checking is disabled in the settings (`torrent_checking.enabled`).
   */
  checkHealth(infohash: string, options: HealthCheckOptions): Promise<HealthReport> {
    if (!this.#deps.config.getBoolean('torrent_checking', 'enabled')) {
      return Promise.reject(new TorrentsError('CHECK_FAILED', {}, 'torrent checking is disabled'))
    }
    return this.#checker.check(infohash, options)
  }

  #hookDownloads(): void {
    if (this.#hooked || this.#stopped.signal.aborted) return
    const manager = this.#options.downloads?.()
    if (manager === undefined) return
    this.#hooked = true
    const log = this.#deps.logger('content:torrents')
    const saved = new Set<string>()
    const save = (infoHash: string): void => {
      if (saved.has(infoHash)) return
      const torrent = manager.get(infoHash)?.torrentFile()
      if (torrent === undefined) return
      try {
        this.table.remember(torrent)
        saved.add(infoHash)
      } catch (err) {
        log.debug('could not remember the torrent of a download', { infoHash, err: errorMessage(err) })
      }
    }
    // A magnet's torrent arrives with `metadata`; a .torrent's is there from the first state change.
    this.#unhook.push(manager.events.on('metadata', ({ infoHash }) => save(infoHash)))
    this.#unhook.push(manager.events.on('state', ({ infoHash }) => save(infoHash)))
    this.#unhook.push(manager.events.on('removed', ({ infoHash }) => saved.delete(infoHash)))
    for (const handle of manager.list()) save(handle.infoHash)
  }
}
