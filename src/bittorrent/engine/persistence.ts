import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { writeFileAtomic } from '../../common/index.js'
import type { Db, MigrationSet } from '../../store/index.js'

/** One download as kept in the store. */
export interface DownloadRecord {
  /** 40 lowercase hex. */
  readonly infoHash: string
  /** The .torrent bytes, once known (a magnet's metadata is saved when it arrives). */
  readonly torrent: Buffer | null
  readonly magnet: string | null
  readonly destination: string
  readonly hops: number
  readonly safeSeeding: boolean
  /** Selected file indices; empty means all. */
  readonly selectedFiles: readonly number[]
  /** Stopped by the user (or by the seeding policy): stays stopped after a restart. */
  readonly userStopped: boolean
  /** Unix seconds. */
  readonly timeAdded: number
  /** This download's own limits in bytes/s, 0 = unlimited; the session-wide limits apply on top. */
  readonly downloadLimitBytesPerSec: number
  readonly uploadLimitBytesPerSec: number
}

/** The engine's tables. */
export const ENGINE_MIGRATIONS: MigrationSet = {
  owner: 'bittorrent',
  migrations: [
    {
      version: 1,
      description: 'Creating the downloads table',
      up: (db) =>
        db.exec(`CREATE TABLE bittorrent_downloads (
          infohash TEXT PRIMARY KEY,
          torrent BLOB,
          magnet TEXT,
          destination TEXT NOT NULL,
          hops INTEGER NOT NULL DEFAULT 0,
          safe_seeding INTEGER NOT NULL DEFAULT 0,
          selected_files TEXT NOT NULL DEFAULT '[]',
          user_stopped INTEGER NOT NULL DEFAULT 0,
          time_added INTEGER NOT NULL
        )`),
    },
    {
      version: 2,
      description: 'Keeping all-time payload totals of downloads',
      up: (db) =>
        db.exec(`ALTER TABLE bittorrent_downloads ADD COLUMN total_down INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE bittorrent_downloads ADD COLUMN total_up INTEGER NOT NULL DEFAULT 0`),
    },
    {
      version: 3,
      description: 'Keeping per-download rate limits',
      up: (db) =>
        db.exec(`ALTER TABLE bittorrent_downloads ADD COLUMN download_limit INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE bittorrent_downloads ADD COLUMN upload_limit INTEGER NOT NULL DEFAULT 0`),
    },
  ],
}

interface Row {
  infohash: string
  torrent: Buffer | null
  magnet: string | null
  destination: string
  hops: number
  safe_seeding: number
  selected_files: string
  user_stopped: number
  time_added: number
  total_down: number
  total_up: number
  download_limit: number
  upload_limit: number
}

/** Downloads in the store and their resume data files. */
export class DownloadTable {
  readonly #db: () => Db
  readonly #resumeDir: string

  constructor(db: () => Db, resumeDir: string) {
    this.#db = db
    this.#resumeDir = resumeDir
  }

  all(): DownloadRecord[] {
    const rows = this.#db().prepare('SELECT * FROM bittorrent_downloads ORDER BY time_added').all() as Row[]
    return rows.map(fromRow)
  }

  put(record: DownloadRecord): void {
    this.#db()
      .prepare(
        `INSERT INTO bittorrent_downloads
          (infohash, torrent, magnet, destination, hops, safe_seeding, selected_files, user_stopped, time_added,
            download_limit, upload_limit)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (infohash) DO UPDATE SET torrent = excluded.torrent, magnet = excluded.magnet,
            destination = excluded.destination, hops = excluded.hops, safe_seeding = excluded.safe_seeding,
            selected_files = excluded.selected_files, user_stopped = excluded.user_stopped,
            time_added = excluded.time_added, download_limit = excluded.download_limit,
            upload_limit = excluded.upload_limit`,
      )
      .run(
        record.infoHash,
        record.torrent,
        record.magnet,
        record.destination,
        record.hops,
        record.safeSeeding ? 1 : 0,
        JSON.stringify(record.selectedFiles),
        record.userStopped ? 1 : 0,
        record.timeAdded,
        record.downloadLimitBytesPerSec,
        record.uploadLimitBytesPerSec,
      )
  }

  /** Payload bytes a download received and sent over its lifetime, as last saved (zeros when never saved). */
  readTotals(infoHash: string): { down: number; up: number } {
    const row = this.#db()
      .prepare('SELECT total_down, total_up FROM bittorrent_downloads WHERE infohash = ?')
      .get(infoHash) as { total_down: number; total_up: number } | undefined
    return { down: row?.total_down ?? 0, up: row?.total_up ?? 0 }
  }

  writeTotals(infoHash: string, totals: { down: number; up: number }): void {
    this.#db()
      .prepare('UPDATE bittorrent_downloads SET total_down = ?, total_up = ? WHERE infohash = ?')
      .run(Math.round(totals.down), Math.round(totals.up), infoHash)
  }

  delete(infoHash: string): void {
    this.#db().prepare('DELETE FROM bittorrent_downloads WHERE infohash = ?').run(infoHash)
    rmSync(this.#resumeFile(infoHash), { force: true })
  }

  readResume(infoHash: string): Buffer | undefined {
    try {
      return readFileSync(this.#resumeFile(infoHash))
    } catch {
      return undefined
    }
  }

  writeResume(infoHash: string, data: Uint8Array): void {
    mkdirSync(this.#resumeDir, { recursive: true, mode: 0o700 })
    writeFileAtomic(this.#resumeFile(infoHash), data)
  }

  #resumeFile(infoHash: string): string {
    return path.join(this.#resumeDir, `${infoHash}.resume`)
  }
}

function fromRow(row: Row): DownloadRecord {
  let selected: number[] = []
  try {
    const parsed: unknown = JSON.parse(row.selected_files)
    if (Array.isArray(parsed)) selected = parsed.filter((n): n is number => Number.isInteger(n) && n >= 0)
  } catch {
    selected = []
  }
  return {
    infoHash: row.infohash,
    torrent: row.torrent,
    magnet: row.magnet,
    destination: row.destination,
    hops: row.hops,
    safeSeeding: row.safe_seeding !== 0,
    selectedFiles: selected,
    userStopped: row.user_stopped !== 0,
    timeAdded: row.time_added,
    downloadLimitBytesPerSec: validLimit(row.download_limit),
    uploadLimitBytesPerSec: validLimit(row.upload_limit),
  }
}

/** A stored limit as the bandwidth channels take it: a whole number of bytes/s >= 0 (anything else: unlimited). */
function validLimit(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : 0
}
