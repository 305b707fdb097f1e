/**
 * The torrents the core knows and their swarm health (REST `/torrents`): a SQLite table of torrents with their
 * files, trackers and category, and a checker that scrapes their HTTP and UDP trackers.
 *
 * @example
 * ```ts
 * import { TORRENT_STORE_SERVICE, type TorrentService } from '../content/torrents/index.js'
 * const torrents = session.service<TorrentService>(TORRENT_STORE_SERVICE)
 * torrents?.remember(torrentBytes)
 * ```
 */
export { categorize } from './category.js'
export {
  CHECK_INTERVAL_SEC,
  HealthChecker,
  type HealthCheckerDeps,
  type HealthCheckerOptions,
} from './health.js'
export { TorrentService, type TorrentServiceOptions } from './service.js'
export { knownFiles, TORRENT_MIGRATIONS, TorrentTable, trackerList } from './store.js'
export {
  CATEGORIES,
  type Category,
  DHT_TRACKER,
  type HealthCheckOptions,
  type HealthReport,
  type KnownFile,
  type KnownTorrent,
  type SwarmHealth,
  TORRENT_STORE_SERVICE,
  TorrentsError,
  type TorrentsErrorCode,
} from './types.js'
