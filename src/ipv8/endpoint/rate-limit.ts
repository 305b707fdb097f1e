import type { Clock } from '../../common/index.js'

/** A flood limit: a token bucket per source host. */
export interface RateLimit {
  /** Sustained packets per second. */
  packetsPerSec: number
  /** Packets a quiet source may send at once. */
  burst: number
}

interface Bucket {
  tokens: number
  at: number
}

/** Sources tracked at most; the longest-known one is forgotten first (it starts again with a full burst). */
const MAX_TRACKED_SOURCES = 65_536

/**
 * Token buckets keyed by source host: {@link SourceRateLimiter.admit} says whether one more packet from a host
 * fits its budget. Memory stays bounded however many hosts send.
 *
 * @example
 * ```ts
 * const limiter = new SourceRateLimiter({ packetsPerSec: 100, burst: 200 }, clock)
 * if (!limiter.admit(from.host)) return drop('rateLimited')
 * ```
 */
export class SourceRateLimiter {
  readonly #limit: RateLimit
  readonly #clock: Clock
  readonly #buckets = new Map<string, Bucket>()

  constructor(limit: RateLimit, clock: Clock) {
    if (!(limit.packetsPerSec > 0) || !(limit.burst >= 1)) {
      throw new RangeError('a rate limit needs a positive rate and a burst of at least 1')
    }
    this.#limit = limit
    this.#clock = clock
  }

  /** Takes one token of `host`'s bucket; `false` when it is empty. */
  admit(host: string): boolean {
    const limit = this.#limit
    const now = this.#clock.monotonic()
    let bucket = this.#buckets.get(host)
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_TRACKED_SOURCES) {
        const oldest = this.#buckets.keys().next()
        if (oldest.done !== true) this.#buckets.delete(oldest.value)
      }
      bucket = { tokens: limit.burst, at: now }
      this.#buckets.set(host, bucket)
    } else {
      bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.at) * limit.packetsPerSec) / 1000)
      bucket.at = now
    }
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  /** How many sources are tracked. */
  get size(): number {
    return this.#buckets.size
  }
}
