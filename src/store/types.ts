import type Database from 'better-sqlite3'

/** The SQLite connection subsystems use (better-sqlite3). */
export type Db = Database.Database

/**
 * One schema step of a subsystem. Versions start at 1 and increase by one; a step runs once, inside a transaction
 * together with the record that it ran.
 */
export interface Migration {
  readonly version: number
  /** What the step does, shown to the user while it runs (`upgrader_tick`). */
  readonly description: string
  up(db: Db): void
}

/** A subsystem's tables: its name (the owner of the tables) and its migrations in order. */
export interface MigrationSet {
  /** e.g. `downloads`, `trustchain`. Table names should start with it. */
  readonly owner: string
  readonly migrations: readonly Migration[]
}

/** A migration not applied yet. */
export interface PendingMigration {
  readonly owner: string
  readonly version: number
  readonly description: string
}

/** Codes of {@link StoreError}. */
export type StoreErrorCode =
  | 'CORRUPT_DATABASE'
  | 'OPEN_FAILED'
  | 'NOT_OPEN'
  | 'ALREADY_MIGRATED'
  | 'DUPLICATE_OWNER'
  | 'INVALID_MIGRATIONS'
  | 'NEWER_SCHEMA'
  | 'MIGRATION_FAILED'
