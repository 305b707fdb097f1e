import { existsSync, renameSync } from 'node:fs'
import Database from 'better-sqlite3'
import { errorMessage, logger, TriblerError } from '../common/index.js'
import type { Db, MigrationSet, PendingMigration, StoreErrorCode } from './types.js'

const log = logger('store')

/** A store error; `CORRUPT_DATABASE` carries `keptAs`, where the damaged file now is. */
export class StoreError extends TriblerError<StoreErrorCode> {}

const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  owner TEXT NOT NULL,
  version INTEGER NOT NULL,
  description TEXT NOT NULL,
  applied_at INTEGER NOT NULL,
  PRIMARY KEY (owner, version)
)`

/**
 * The core's SQLite database (WAL mode). Each subsystem owns its tables and registers their numbered migrations
 * with {@link Store.register} before the session starts; {@link Store.migrate} applies what is missing and records
 * every step in the `schema_migrations` table (`owner`, `version`).
 *
 * @example
 * ```ts
 * store.register({
 *   owner: 'downloads',
 *   migrations: [{ version: 1, description: 'Creating download table', up: (db) => db.exec('CREATE TABLE …') }],
 * })
 * // later, from the downloads service:
 * store.db.prepare('SELECT * FROM downloads_resume').all()
 * ```
 */
export class Store {
  readonly path: string
  readonly #sets = new Map<string, MigrationSet>()
  #db: Db | undefined

  /** `path` is the database file; `:memory:` gives a private in-memory database. */
  constructor(path: string) {
    this.path = path
  }

  /** The open connection. Throws `NOT_OPEN` before {@link Store.open} or after {@link Store.close}. */
  get db(): Db {
    if (this.#db === undefined) throw new StoreError('NOT_OPEN', { path: this.path })
    return this.#db
  }

  get isOpen(): boolean {
    return this.#db !== undefined
  }

  /**
   * Adds a subsystem's migrations. Versions must be 1, 2, 3… in order; one set per owner. Sets registered after
   * {@link Store.migrate} ran are migrated by the next call to it.
   */
  register(set: MigrationSet): void {
    if (this.#sets.has(set.owner)) throw new StoreError('DUPLICATE_OWNER', { owner: set.owner })
    set.migrations.forEach((migration, i) => {
      if (migration.version !== i + 1) {
        throw new StoreError('INVALID_MIGRATIONS', {
          owner: set.owner,
          expected: i + 1,
          got: migration.version,
        })
      }
    })
    this.#sets.set(set.owner, set)
  }

  /**
   * Opens (or creates) the database, switches it to WAL and checks its integrity. A file that is not a database
   * or fails the check is closed, renamed to `<path>.corrupt-<time>` (with its -wal and -shm files) and
   * `CORRUPT_DATABASE` is thrown; the next open starts from an empty database.
   */
  open(): void {
    if (this.#db !== undefined) return
    let db: Db | undefined
    try {
      db = new Database(this.path)
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = NORMAL')
      db.pragma('foreign_keys = ON')
      db.pragma('busy_timeout = 5000')
      const check = db.pragma('quick_check', { simple: true })
      if (check !== 'ok') throw new Error(`integrity check failed: ${String(check)}`)
      db.exec(MIGRATIONS_TABLE)
    } catch (err) {
      db?.close()
      if (!isCorruption(err)) throw new StoreError('OPEN_FAILED', { path: this.path, cause: err })
      const keptAs = this.#keepAside()
      log.error('database is corrupt; kept aside', { path: this.path, keptAs, err })
      throw new StoreError(
        'CORRUPT_DATABASE',
        { path: this.path, keptAs, cause: err },
        `The database ${this.path} is corrupt (${errorMessage(err)}). It was moved to ${keptAs}; ` +
          'restart to begin with an empty database.',
      )
    }
    this.#db = db
  }

  /** Migrations registered but not applied yet, in the order {@link Store.migrate} runs them. */
  pending(): PendingMigration[] {
    const applied = this.#applied()
    const out: PendingMigration[] = []
    for (const set of this.#sets.values()) {
      const current = applied.get(set.owner) ?? 0
      if (current > set.migrations.length) {
        throw new StoreError('NEWER_SCHEMA', {
          owner: set.owner,
          version: current,
          known: set.migrations.length,
        })
      }
      for (const m of set.migrations.slice(current)) {
        out.push({ owner: set.owner, version: m.version, description: m.description })
      }
    }
    return out
  }

  /**
   * Applies every pending migration, each in its own transaction, calling `onStep` before each. A failing step
   * rolls back alone and throws `MIGRATION_FAILED`; the steps before it stay applied.
   */
  migrate(onStep: (step: PendingMigration) => void = () => {}): number {
    const db = this.db
    const steps = this.pending()
    const record = db.prepare(
      'INSERT INTO schema_migrations (owner, version, description, applied_at) VALUES (?, ?, ?, ?)',
    )
    for (const step of steps) {
      const migration = this.#sets.get(step.owner)?.migrations[step.version - 1]
      if (migration === undefined) continue
      onStep(step)
      try {
        db.transaction(() => {
          migration.up(db)
          record.run(step.owner, step.version, step.description, Date.now())
        })()
      } catch (err) {
        throw new StoreError('MIGRATION_FAILED', { owner: step.owner, version: step.version, cause: err })
      }
    }
    return steps.length
  }

  /** The applied schema version of each owner. */
  versions(): Record<string, number> {
    return Object.fromEntries(this.#applied())
  }

  /** Checkpoints the WAL into the main file and closes. Safe to call twice. */
  close(): void {
    const db = this.#db
    if (db === undefined) return
    this.#db = undefined
    try {
      db.pragma('wal_checkpoint(TRUNCATE)')
    } catch (err) {
      log.warn('WAL checkpoint failed', { err })
    }
    db.close()
  }

  #applied(): Map<string, number> {
    const rows = this.db
      .prepare('SELECT owner, MAX(version) AS version FROM schema_migrations GROUP BY owner')
      .all() as Array<{ owner: string; version: number }>
    return new Map(rows.map((row) => [row.owner, row.version]))
  }

  #keepAside(): string {
    const keptAs = `${this.path}.corrupt-${Date.now()}`
    renameSync(this.path, keptAs)
    for (const suffix of ['-wal', '-shm']) {
      if (existsSync(this.path + suffix)) renameSync(this.path + suffix, keptAs + suffix)
    }
    return keptAs
  }
}

function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') return true
  return err instanceof Error && /integrity check failed|malformed|not a database/i.test(err.message)
}
