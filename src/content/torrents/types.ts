import { TriblerError } from '../../common/index.js'

/** The name the torrent store service registers under; the REST layer finds it by it. */
export const TORRENT_STORE_SERVICE = 'torrents'

/** Tribler's torrent categories (REST contract §5.1). */
export const CATEGORIES = [
  'Video',
  'VideoClips',
  'Audio',
  'Document',
  'CD/DVD/BD',
  'Compressed',
  'Picture',
  'xxx',
  'other',
  'unknown',
] as const
export type Category = (typeof CATEGORIES)[number]

/** The pseudo-tracker that stands for the mainline DHT in tracker lists and health results. */
export const DHT_TRACKER = 'DHT'

/** One file of a known torrent: its path inside the torrent (without the torrent's name) and size. */
export interface KnownFile {
  readonly path: string
  readonly size: number
}

/** A torrent the core knows (added as a download, looked up with /torrentinfo, or created here). */
export interface KnownTorrent {
  /** Row id, stable for the life of the database. */
  readonly id: number
  /** 40 lowercase hex. */
  readonly infohash: string
  readonly name: string
  /** Total bytes, padding files excluded. */
  readonly size: number
  readonly category: Category
  readonly private: boolean
  readonly files: readonly KnownFile[]
  /** Announce URLs in tier order, then {@link DHT_TRACKER} unless the torrent is private. */
  readonly trackers: readonly string[]
  readonly numSeeders: number
  readonly numLeechers: number
  /** Unix seconds of the last health check; 0 = never. */
  readonly lastTrackerCheck: number
}

/** Swarm figures one source reported. */
export interface SwarmHealth {
  readonly seeders: number
  readonly leechers: number
  /** 40 lowercase hex. */
  readonly infohash: string
}

/**
 * `GET /torrents/{infohash}/health`'s `health` object: one entry per tracker URL (and `DHT`), or the single key
 * `db` with the stored figures when the torrent was checked recently.
 */
export type HealthReport = Record<string, SwarmHealth | { readonly error: string }>

/** Options of one health check. */
export interface HealthCheckOptions {
  /** Time allowed for every tracker together. */
  readonly timeoutMs: number
  /** Scrape even when the torrent was checked recently. */
  readonly refresh?: boolean
  readonly signal?: AbortSignal
}

export type TorrentsErrorCode =
  /** The infohash is not in the store. */
  | 'UNKNOWN_TORRENT'
  /** The bytes are not a valid torrent. */
  | 'INVALID_TORRENT'
  /** A health check cannot run: no trackers, or the checker is disabled. */
  | 'CHECK_FAILED'
  | 'NOT_RUNNING'

/** A torrent store or health checker failure; the message is meant for users. */
export class TorrentsError extends TriblerError<TorrentsErrorCode> {}
