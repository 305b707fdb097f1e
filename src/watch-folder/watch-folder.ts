import { readdir, readFile, rename, stat } from 'node:fs/promises'
import { basename, join, sep } from 'node:path'
import { errorMessage, type Logger, type Service, TaskScope } from '../common/index.js'
import { DEFAULT_MAX_TORRENT_BYTES, MetainfoError, parseTorrent } from '../metainfo/index.js'
import type { MigrationSet } from '../store/index.js'
import {
  type ScanResult,
  WATCH_FOLDER_INTERVAL_MS,
  WATCH_FOLDER_SERVICE,
  type WatchFolderDeps,
  type WatchFolderOptions,
} from './types.js'

const MAX_DEPTH = 8
const MAX_FILES_PER_SCAN = 1000

/** The table of files the watch folder has handled: a file is handled again only when its size or time changes. */
export const WATCH_FOLDER_MIGRATIONS: MigrationSet = {
  owner: 'watch_folder',
  migrations: [
    {
      version: 1,
      description: 'Creating the watch folder table',
      up: (db) =>
        db.exec(`
          CREATE TABLE watch_folder_file (
            path TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ms REAL NOT NULL,
            outcome TEXT NOT NULL,
            infohash TEXT,
            handled_at INTEGER NOT NULL
          )`),
    },
  ],
}

interface Row {
  size: number
  mtime_ms: number
}

interface Found {
  readonly path: string
  readonly size: number
  readonly mtimeMs: number
}

/**
 * Scans `watch_folder.directory` (and the folders below it) every few seconds while `watch_folder.enabled` is true
 * (both apply live). Each .torrent file is started once, with the default hops and safe seeding of
 * `download_defaults`, into the default download folder; the files handled are kept in the database, so a restart
 * (or removing the download) does not start them again until the file changes. A file that does not parse on two
 * scans in a row (so one still being written is not mistaken for a corrupt one) is renamed `<name>.corrupt` and
 * reported with `watch_folder_corrupt_torrent`.
 */
export class WatchFolder implements Service {
  readonly name = WATCH_FOLDER_SERVICE
  readonly #deps: WatchFolderDeps
  readonly #options: WatchFolderOptions
  readonly #log: Logger
  readonly #stopped = new AbortController()
  readonly #tasks: TaskScope
  readonly #unhook: Array<() => void> = []
  // path → size:mtime of a file that failed to parse once, or that the engine refused
  readonly #unparsed = new Map<string, string>()
  readonly #refused = new Map<string, string>()
  #queue: Promise<unknown> = Promise.resolve()

  constructor(deps: WatchFolderDeps, options: WatchFolderOptions) {
    this.#deps = deps
    this.#options = options
    this.#log = deps.logger('watch-folder')
    this.#tasks = new TaskScope(this.#stopped.signal, deps.clock)
    deps.store.register(WATCH_FOLDER_MIGRATIONS)
  }

  async start(): Promise<void> {
    this.#tasks.every('scan', this.#options.intervalMs ?? WATCH_FOLDER_INTERVAL_MS, () => this.#scheduled())
    // the engine may start after this service; the core's start is when every service runs
    this.#unhook.push(this.#deps.events.on('tribler_started', () => this.#scheduled()))
  }

  async stop(): Promise<void> {
    this.#stopped.abort()
    this.#tasks.stopAll()
    for (const off of this.#unhook.splice(0)) off()
    await this.#queue.catch(() => {})
  }

  /** Scans the folder now (after a scan in progress). */
  scan(): Promise<ScanResult> {
    const next = this.#queue.then(() => this.#scan())
    this.#queue = next.catch(() => {})
    return next
  }

  #scheduled(): void {
    if (this.#stopped.signal.aborted) return
    this.scan().catch((err: unknown) => this.#log.warn('scanning the watch folder failed', { err }))
  }

  async #scan(): Promise<ScanResult> {
    const result = {
      added: [] as string[],
      present: [] as string[],
      corrupt: [] as string[],
      failed: [] as string[],
    }
    const { config } = this.#deps
    if (!config.getBoolean('watch_folder', 'enabled') || this.#stopped.signal.aborted) return result
    const dir = config.getString('watch_folder', 'directory')
    if (dir === '' || !(await stat(dir).catch(() => undefined))?.isDirectory()) return result
    const found: Found[] = []
    const complete = await this.#walk(dir, 0, found)
    for (const file of found) {
      if (this.#stopped.signal.aborted) break
      await this.#handle(file, result)
    }
    if (complete) this.#forgetMissing(dir, new Set(found.map((f) => f.path)))
    return result
  }

  /** Collects .torrent files; false when the walk stopped early (too deep or too many files). */
  async #walk(dir: string, depth: number, out: Found[]): Promise<boolean> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
    let complete = true
    for (const entry of entries) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) {
        if (depth + 1 >= MAX_DEPTH) complete = false
        else if (!(await this.#walk(path, depth + 1, out))) complete = false
        continue
      }
      if (!entry.name.toLowerCase().endsWith('.torrent')) continue
      if (out.length >= MAX_FILES_PER_SCAN) return false
      // follows a symbolic link to a file, never to a folder
      const info = await stat(path).catch(() => undefined)
      if (info?.isFile() === true) out.push({ path, size: info.size, mtimeMs: info.mtimeMs })
    }
    return complete
  }

  async #handle(file: Found, result: ScanResult & Record<keyof ScanResult, string[]>): Promise<void> {
    const db = this.#deps.store.db
    const row = db.prepare('SELECT size, mtime_ms FROM watch_folder_file WHERE path = ?').get(file.path) as
      | Row
      | undefined
    if (row?.size === file.size && row.mtime_ms === file.mtimeMs) return
    const signature = `${file.size}:${file.mtimeMs}`
    if (this.#refused.get(file.path) === signature) return

    let torrent: Buffer | undefined
    let infoHash: string | undefined
    if (file.size <= DEFAULT_MAX_TORRENT_BYTES) {
      torrent = await readFile(file.path).catch(() => undefined)
      if (torrent === undefined) return // vanished or unreadable for now; the next scan tries again
      try {
        infoHash = parseTorrent(torrent).infoHashHex
      } catch (err) {
        if (!(err instanceof MetainfoError)) throw err
      }
    }
    if (torrent === undefined || infoHash === undefined) {
      if (this.#unparsed.get(file.path) !== signature) {
        this.#unparsed.set(file.path, signature)
        return
      }
      this.#unparsed.delete(file.path)
      await this.#corrupt(file)
      result.corrupt.push(file.path)
      return
    }
    this.#unparsed.delete(file.path)

    const manager = this.#options.downloads()
    if (manager === undefined) return
    if (manager.get(infoHash) !== undefined) {
      this.#record(file, 'present', infoHash)
      result.present.push(file.path)
      return
    }
    const { config } = this.#deps
    const hops = config.getBoolean('download_defaults', 'anonymity_enabled')
      ? config.getNumber('download_defaults', 'number_hops')
      : 0
    try {
      await manager.add({
        source: { kind: 'torrent', torrent },
        hops,
        safeSeeding: config.getBoolean('download_defaults', 'safeseeding_enabled'),
      })
    } catch (err) {
      this.#refused.set(file.path, signature)
      this.#log.warn('could not start a torrent of the watch folder', {
        file: basename(file.path),
        err: errorMessage(err),
      })
      result.failed.push(file.path)
      return
    }
    this.#log.info('started a torrent of the watch folder', { file: basename(file.path), infoHash })
    this.#record(file, 'added', infoHash)
    result.added.push(file.path)
  }

  async #corrupt(file: Found): Promise<void> {
    const name = basename(file.path)
    this.#log.warn('the watch folder holds a corrupt torrent', { file: name })
    try {
      await rename(file.path, `${file.path}.corrupt`)
    } catch (err) {
      // a read-only folder: remember it instead, so it is reported once
      this.#log.debug('could not rename a corrupt torrent', { file: name, err: errorMessage(err) })
      this.#record(file, 'corrupt', null)
    }
    this.#deps.events.emit('watch_folder_corrupt_torrent', { name })
  }

  #record(file: Found, outcome: string, infoHash: string | null): void {
    this.#deps.store.db
      .prepare(
        `INSERT INTO watch_folder_file (path, size, mtime_ms, outcome, infohash, handled_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms,
           outcome = excluded.outcome, infohash = excluded.infohash, handled_at = excluded.handled_at`,
      )
      .run(file.path, file.size, file.mtimeMs, outcome, infoHash, Math.floor(this.#deps.clock.now() / 1000))
  }

  // files taken out of the folder are forgotten, so putting one back starts it again
  #forgetMissing(dir: string, seen: ReadonlySet<string>): void {
    const db = this.#deps.store.db
    const prefix = dir.endsWith(sep) ? dir : `${dir}${sep}`
    const rows = db
      .prepare('SELECT path FROM watch_folder_file WHERE substr(path, 1, length(?)) = ?')
      .all(prefix, prefix) as Array<{ path: string }>
    const drop = db.prepare('DELETE FROM watch_folder_file WHERE path = ?')
    for (const { path } of rows) if (!seen.has(path)) drop.run(path)
    for (const path of this.#unparsed.keys()) if (!seen.has(path)) this.#unparsed.delete(path)
    for (const path of this.#refused.keys()) if (!seen.has(path)) this.#refused.delete(path)
  }
}
