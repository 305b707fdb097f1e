import { createHash } from 'node:crypto'
import { MAX_STORED_KEYS, MAX_STORED_VALUES, MAX_VALUES_PER_KEY } from './types.js'

interface StoredValue {
  /** Who the value belongs to: SHA-1 of the signer's key, or of the value itself when unsigned. */
  readonly id: string
  readonly data: Buffer
  readonly version: number
  readonly storedMs: number
  readonly maxAgeMs: number
}

/** What {@link ValueStore.put} did. */
export type PutResult = 'stored' | 'stale' | 'full'

/**
 * Values by key, each with an expiry, as py-ipv8's `Storage`: a newer version of a signed value replaces the
 * older one, the newest values come first. Unlike py-ipv8's it is bounded: at most {@link MAX_VALUES_PER_KEY}
 * values per key (the oldest goes), {@link MAX_STORED_KEYS} keys and {@link MAX_STORED_VALUES} values in all
 * (a new key or value is then refused until some expire).
 */
export class ValueStore {
  readonly #items = new Map<string, StoredValue[]>()
  #count = 0

  get keys(): number {
    return this.#items.size
  }

  get size(): number {
    return this.#count
  }

  /**
   * Stores a copy of `data` under `key`; `id` identifies its owner (default SHA-1 of the data). A received value is
   * a view into the datagram's receive buffer: the copy keeps a small value from holding on to all of it.
   */
  put(
    key: Uint8Array,
    data: Buffer,
    opts: { nowMs: number; maxAgeMs: number; id?: Buffer; version?: number },
  ): PutResult {
    const keyHex = Buffer.from(key).toString('hex')
    const id = (opts.id ?? createHash('sha1').update(data).digest()).toString('hex')
    const value: StoredValue = {
      id,
      data: Buffer.from(data),
      version: opts.version ?? 0,
      storedMs: opts.nowMs,
      maxAgeMs: opts.maxAgeMs,
    }
    let list = this.#items.get(keyHex)
    const at = list?.findIndex((v) => v.id === id) ?? -1
    if (list !== undefined && at >= 0) {
      if (value.version < (list[at] as StoredValue).version) return 'stale'
      list.splice(at, 1)
      list.unshift(value)
      return 'stored'
    }
    if (list === undefined && this.#items.size >= MAX_STORED_KEYS) this.clean(opts.nowMs)
    if (this.#count >= MAX_STORED_VALUES) this.clean(opts.nowMs)
    if (this.#count >= MAX_STORED_VALUES) return 'full'
    if (list === undefined) {
      if (this.#items.size >= MAX_STORED_KEYS) return 'full'
      list = []
      this.#items.set(keyHex, list)
    }
    list.unshift(value)
    this.#count += 1
    if (list.length > MAX_VALUES_PER_KEY) {
      list.pop()
      this.#count -= 1
    }
    return 'stored'
  }

  /** Up to `limit` unexpired values of `key` from position `offset`, newest first. */
  get(key: Uint8Array, nowMs: number, offset = 0, limit = Number.POSITIVE_INFINITY): Buffer[] {
    const list = this.#items.get(Buffer.from(key).toString('hex'))
    if (list === undefined) return []
    return list
      .filter((v) => nowMs - v.storedMs <= v.maxAgeMs)
      .slice(offset, offset + limit)
      .map((v) => v.data)
  }

  /** Forgets expired values (and keys left empty). */
  clean(nowMs: number): void {
    for (const [key, list] of this.#items) {
      const kept = list.filter((v) => nowMs - v.storedMs <= v.maxAgeMs)
      this.#count -= list.length - kept.length
      if (kept.length === 0) this.#items.delete(key)
      else this.#items.set(key, kept)
    }
  }
}
