import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { configureLogging } from '../common/index.js'
import { Store, StoreError } from './store.js'
import type { MigrationSet } from './types.js'

configureLogging({ level: 'silent' })

const downloads: MigrationSet = {
  owner: 'downloads',
  migrations: [
    {
      version: 1,
      description: 'Creating download table',
      up: (db) => db.exec('CREATE TABLE downloads_a (x)'),
    },
    {
      version: 2,
      description: 'Adding hops',
      up: (db) => db.exec('ALTER TABLE downloads_a ADD COLUMN hops'),
    },
  ],
}

function tempDb(): string {
  return join(mkdtempSync(join(tmpdir(), 'tribler-store-')), 'tribler.db')
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof StoreError ? err.code : `not a StoreError: ${String(err)}`
  }
  return undefined
}

describe('Store', () => {
  it('opens in WAL mode and applies each registered migration once', () => {
    const path = tempDb()
    const store = new Store(path)
    store.register(downloads)
    store.open()
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal')
    const steps: string[] = []
    expect(store.migrate((s) => steps.push(`${s.owner}:${s.version}`))).toBe(2)
    expect(steps).toEqual(['downloads:1', 'downloads:2'])
    expect(store.versions()).toEqual({ downloads: 2 })
    store.close()

    const again = new Store(path)
    again.register(downloads)
    again.open()
    expect(again.pending()).toEqual([])
    again.close()
  })

  it('upgrades from an older schema version with only the missing steps', () => {
    const path = tempDb()
    const old = new Store(path)
    old.register({ owner: 'downloads', migrations: downloads.migrations.slice(0, 1) })
    old.open()
    old.migrate()
    old.close()
    const store = new Store(path)
    store.register(downloads)
    store.open()
    expect(store.pending().map((s) => s.description)).toEqual(['Adding hops'])
    store.migrate()
    expect(store.versions()).toEqual({ downloads: 2 })
    store.close()
  })

  it('rolls back a failing migration and keeps the steps before it', () => {
    const store = new Store(':memory:')
    store.register({
      owner: 'broken',
      migrations: [
        { version: 1, description: 'ok', up: (db) => db.exec('CREATE TABLE broken_a (x)') },
        {
          version: 2,
          description: 'fails',
          up: (db) => {
            db.exec('CREATE TABLE broken_b (x)')
            throw new Error('boom')
          },
        },
      ],
    })
    store.open()
    expect(codeOf(() => store.migrate())).toBe('MIGRATION_FAILED')
    expect(store.versions()).toEqual({ broken: 1 })
    const tables = store.db.prepare("SELECT name FROM sqlite_master WHERE name LIKE 'broken_%'").all()
    expect(tables).toEqual([{ name: 'broken_a' }])
  })

  it('rejects versions out of order, a second set of one owner, and a schema newer than the code', () => {
    const store = new Store(':memory:')
    const bad = { owner: 'x', migrations: [{ version: 2, description: '', up: () => {} }] }
    expect(codeOf(() => store.register(bad))).toBe('INVALID_MIGRATIONS')
    store.register(downloads)
    expect(codeOf(() => store.register(downloads))).toBe('DUPLICATE_OWNER')

    const path = tempDb()
    const newer = new Store(path)
    newer.register(downloads)
    newer.open()
    newer.migrate()
    newer.close()
    const older = new Store(path)
    older.register({ owner: 'downloads', migrations: downloads.migrations.slice(0, 1) })
    older.open()
    expect(codeOf(() => older.pending())).toBe('NEWER_SCHEMA')
    older.close()
  })

  it('keeps a corrupt database aside under a new name and reports CORRUPT_DATABASE', () => {
    const path = tempDb()
    writeFileSync(path, Buffer.alloc(8192, 0x41))
    const store = new Store(path)
    let error: unknown
    try {
      store.open()
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(StoreError)
    expect((error as StoreError).code).toBe('CORRUPT_DATABASE')
    const keptAs = (error as StoreError).details.keptAs as string
    expect(existsSync(keptAs)).toBe(true)
    expect(existsSync(path)).toBe(false)
    expect(readdirSync(join(path, '..')).some((n) => n.startsWith('tribler.db.corrupt-'))).toBe(true)
    // the next open starts from an empty database
    const fresh = new Store(path)
    fresh.open()
    expect(fresh.versions()).toEqual({})
    fresh.close()
  })

  it('refuses to be used before it is opened', () => {
    expect(codeOf(() => new Store(':memory:').db)).toBe('NOT_OPEN')
  })
})
