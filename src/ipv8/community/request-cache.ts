import { type Clock, systemClock, type TimerHandle } from '../../common/index.js'
import { Ipv8Error } from '../errors.js'

/** Something waiting for an answer; `onTimeout` runs when none came in time. */
export interface CacheEntry {
  onTimeout(): void
}

interface Slot {
  entry: CacheEntry
  timer: TimerHandle
}

/** Options of {@link RequestCache.add}. */
export interface AddOptions {
  /** The number to use; default a random unused one in [0, maxNumber]. */
  number?: number
  /** Largest random number: 0xffff for `H` identifiers (default), 0xffffffff for `I` ones. */
  maxNumber?: number
  timeoutMs: number
}

/**
 * Outstanding requests by (prefix, number), as py-ipv8's RequestCache: each entry times out unless it is popped
 * first. Numbers match the identifiers that go on the wire, so a response finds its request.
 *
 * @example
 * ```ts
 * const id = cache.add('ping', { onTimeout: () => markDead(peer) }, { timeoutMs: 5000 })
 * // when the pong with identifier `id` arrives:
 * cache.pop('ping', id)
 * ```
 */
export class RequestCache {
  readonly #clock: Clock
  readonly #random: () => number
  readonly #slots = new Map<string, Slot>()
  #closed = false

  constructor(opts: { clock?: Clock; random?: () => number } = {}) {
    this.#clock = opts.clock ?? systemClock
    this.#random = opts.random ?? Math.random
  }

  /** Adds an entry and returns its number. Throws `DUPLICATE_REQUEST` if the given number is taken. */
  add(prefix: string, entry: CacheEntry, opts: AddOptions): number {
    if (this.#closed) throw new Ipv8Error('NOT_RUNNING', { prefix })
    const number = opts.number ?? this.#unusedNumber(prefix, opts.maxNumber ?? 0xffff)
    const key = `${prefix}:${number}`
    if (this.#slots.has(key)) throw new Ipv8Error('DUPLICATE_REQUEST', { prefix, number })
    const timer = this.#clock.setTimeout(() => {
      if (this.#slots.get(key)?.entry !== entry) return
      this.#slots.delete(key)
      entry.onTimeout()
    }, opts.timeoutMs)
    this.#slots.set(key, { entry, timer })
    return number
  }

  has(prefix: string, number: number): boolean {
    return this.#slots.has(`${prefix}:${number}`)
  }

  get<T extends CacheEntry>(prefix: string, number: number): T | undefined {
    return this.#slots.get(`${prefix}:${number}`)?.entry as T | undefined
  }

  /** Removes an entry without running its timeout and returns it. */
  pop<T extends CacheEntry>(prefix: string, number: number): T | undefined {
    const key = `${prefix}:${number}`
    const slot = this.#slots.get(key)
    if (slot === undefined) return undefined
    this.#clock.clearTimeout(slot.timer)
    this.#slots.delete(key)
    return slot.entry as T
  }

  get size(): number {
    return this.#slots.size
  }

  /** Drops every entry without running timeouts; later adds fail with `NOT_RUNNING`. */
  close(): void {
    this.#closed = true
    for (const slot of this.#slots.values()) this.#clock.clearTimeout(slot.timer)
    this.#slots.clear()
  }

  #unusedNumber(prefix: string, max: number): number {
    for (let i = 0; i < 1000; i++) {
      const number = Math.floor(this.#random() * (max + 1))
      if (!this.#slots.has(`${prefix}:${number}`)) return number
    }
    throw new Ipv8Error('DUPLICATE_REQUEST', { prefix, reason: 'no free number' })
  }
}
