import type { Clock } from '../../common/index.js'
import { parseTorrent, type TorrentInfo } from '../../metainfo/index.js'
import type { Db, MigrationSet } from '../../store/index.js'
import { categorize } from './category.js'
import {
  type Category,
  DHT_TRACKER,
  type KnownFile,
  type KnownTorrent,
  TORRENT_STORE_SERVICE,
  TorrentsError,
} from './types.js'

/** The tables of the torrent store. */
export const TORRENT_MIGRATIONS: MigrationSet = {
  owner: TORRENT_STORE_SERVICE,
  migrations: [
    {
      version: 1,
      description: 'Creating the torrent tables',
      up: (db) =>
        db.exec(`
          CREATE TABLE torrents_torrent (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            infohash TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            size INTEGER NOT NULL,
            category TEXT NOT NULL,
            private INTEGER NOT NULL,
            torrent BLOB,
            num_seeders INTEGER NOT NULL DEFAULT 0,
            num_leechers INTEGER NOT NULL DEFAULT 0,
            last_tracker_check INTEGER NOT NULL DEFAULT 0,
            added_at INTEGER NOT NULL
          );
          CREATE TABLE torrents_file (
            torrent_id INTEGER NOT NULL REFERENCES torrents_torrent(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (torrent_id, position)
          );
          CREATE TABLE torrents_tracker (
            torrent_id INTEGER NOT NULL REFERENCES torrents_torrent(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            url TEXT NOT NULL,
            PRIMARY KEY (torrent_id, url)
          );
        `),
    },
  ],
}

interface TorrentRow {
  id: number
  infohash: string
  name: string
  size: number
  category: string
  private: number
  num_seeders: number
  num_leechers: number
  last_tracker_check: number
}

const COLUMNS = 'id, infohash, name, size, category, private, num_seeders, num_leechers, last_tracker_check'

/** Files as the store keeps them: paths inside the torrent, padding files left out. */
export function knownFiles(info: TorrentInfo): KnownFile[] {
  const visible = info.files.filter((file) => !file.padding)
  const single = info.files.length === 1 && visible[0]?.displayPath === info.displayName
  const prefix = `${info.displayName}/`
  return visible.map((file) => ({
    path:
      !single && file.displayPath.startsWith(prefix)
        ? file.displayPath.slice(prefix.length)
        : file.displayPath,
    size: file.length,
  }))
}

/** Announce URLs in tier order without duplicates, then the DHT unless the torrent is private. */
export function trackerList(info: TorrentInfo): string[] {
  const urls = [...new Set(info.trackers.flat())]
  if (!info.private) urls.push(DHT_TRACKER)
  return urls
}

/**
 * The torrents the core knows, in the session's SQLite database (tables `torrents_*`): name, size, category,
 * files, trackers, the .torrent itself and the last health figures.
 *
 * @example
 * ```ts
 * const known = torrents.remember(await readFile('x.torrent'))
 * torrents.get(known.infohash)?.trackers // ['http://tracker/announce', 'DHT']
 * ```
 */
export class TorrentTable {
  readonly #db: () => Db
  readonly #clock: Clock

  constructor(db: () => Db, clock: Clock) {
    this.#db = db
    this.#clock = clock
  }

  /**
   * Records a torrent (a parsed one, or the bytes of a .torrent file) and returns what is stored. Remembering a
   * known torrent again adds its new trackers and keeps its health figures. Throws `INVALID_TORRENT` for bytes
   * that are not a torrent.
   */
  remember(torrent: TorrentInfo | Uint8Array): KnownTorrent {
    let info: TorrentInfo
    let raw: Uint8Array | undefined
    if (torrent instanceof Uint8Array) {
      try {
        info = parseTorrent(torrent)
      } catch (err) {
        throw new TorrentsError('INVALID_TORRENT', { cause: err }, 'invalid torrent file')
      }
      raw = torrent
    } else {
      info = torrent
    }
    const db = this.#db()
    const files = knownFiles(info)
    const size = files.reduce((sum, file) => sum + file.size, 0)
    const category: Category = categorize(info.displayName, files)
    db.transaction(() => {
      const existing = db
        .prepare('SELECT id FROM torrents_torrent WHERE infohash = ?')
        .get(info.infoHashHex) as { id: number } | undefined
      let id: number
      if (existing === undefined) {
        const result = db
          .prepare(
            `INSERT INTO torrents_torrent (infohash, name, size, category, private, torrent, added_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            info.infoHashHex,
            info.displayName,
            size,
            category,
            info.private ? 1 : 0,
            raw === undefined ? null : Buffer.from(raw),
            Math.floor(this.#clock.now() / 1000),
          )
        id = Number(result.lastInsertRowid)
        const insertFile = db.prepare(
          'INSERT INTO torrents_file (torrent_id, position, path, size) VALUES (?, ?, ?, ?)',
        )
        for (const [position, file] of files.entries()) insertFile.run(id, position, file.path, file.size)
      } else {
        id = existing.id
        if (raw !== undefined) {
          db.prepare('UPDATE torrents_torrent SET torrent = ? WHERE id = ? AND torrent IS NULL').run(
            Buffer.from(raw),
            id,
          )
        }
      }
      const { n } = db.prepare('SELECT COUNT(*) AS n FROM torrents_tracker WHERE torrent_id = ?').get(id) as {
        n: number
      }
      const insertTracker = db.prepare(
        'INSERT OR IGNORE INTO torrents_tracker (torrent_id, position, url) VALUES (?, ?, ?)',
      )
      for (const [i, url] of trackerList(info).entries()) insertTracker.run(id, n + i, url)
    })()
    const known = this.get(info.infoHashHex)
    if (known === undefined) throw new TorrentsError('NOT_RUNNING', {}, 'the torrent store lost a torrent')
    return known
  }

  /** The torrent with this infohash (40 hex, any case), or undefined. */
  get(infohash: string): KnownTorrent | undefined {
    const row = this.#db()
      .prepare(`SELECT ${COLUMNS} FROM torrents_torrent WHERE infohash = ?`)
      .get(infohash.toLowerCase()) as TorrentRow | undefined
    return row === undefined ? undefined : this.#complete(row)
  }

  /** The bencoded .torrent, when the store was given its bytes. */
  torrentFile(infohash: string): Uint8Array | undefined {
    const row = this.#db()
      .prepare('SELECT torrent FROM torrents_torrent WHERE infohash = ?')
      .get(infohash.toLowerCase()) as { torrent: Buffer | null } | undefined
    return row?.torrent ?? undefined
  }

  /** Up to `limit` torrents in random order, skipping those `exclude` rejects. */
  random(limit: number, exclude: (torrent: KnownTorrent) => boolean = () => false): KnownTorrent[] {
    const out: KnownTorrent[] = []
    const rows = this.#db()
      .prepare(`SELECT ${COLUMNS} FROM torrents_torrent ORDER BY random()`)
      .iterate() as IterableIterator<TorrentRow>
    for (const row of rows) {
      if (out.length >= limit) break
      const torrent = this.#complete(row)
      if (!exclude(torrent)) out.push(torrent)
    }
    return out
  }

  /** Number of torrents in the store. */
  count(): number {
    return (this.#db().prepare('SELECT COUNT(*) AS n FROM torrents_torrent').get() as { n: number }).n
  }

  /** Stores the result of a health check made at `checkedAtSec` (unix seconds). */
  updateHealth(infohash: string, health: { seeders: number; leechers: number; checkedAtSec: number }): void {
    this.#db()
      .prepare(
        'UPDATE torrents_torrent SET num_seeders = ?, num_leechers = ?, last_tracker_check = ? WHERE infohash = ?',
      )
      .run(health.seeders, health.leechers, health.checkedAtSec, infohash.toLowerCase())
  }

  #complete(row: TorrentRow): KnownTorrent {
    const db = this.#db()
    const files = db
      .prepare('SELECT path, size FROM torrents_file WHERE torrent_id = ? ORDER BY position')
      .all(row.id) as KnownFile[]
    const trackers = (
      db
        .prepare(
          `SELECT url FROM torrents_tracker WHERE torrent_id = ? ORDER BY url = '${DHT_TRACKER}', position`,
        )
        .all(row.id) as {
        url: string
      }[]
    ).map((r) => r.url)
    return {
      id: row.id,
      infohash: row.infohash,
      name: row.name,
      size: row.size,
      category: row.category as Category,
      private: row.private === 1,
      files,
      trackers,
      numSeeders: row.num_seeders,
      numLeechers: row.num_leechers,
      lastTrackerCheck: row.last_tracker_check,
    }
  }
}
