import type { Clock } from '../../common/index.js'

const BUCKET_MS = 1000
const WINDOW_BUCKETS = 5

/**
 * Bytes per second over the last few seconds, from per-second buckets. Cheap to update on every message: a rate is
 * computed only when read.
 */
export class RateMeter {
  readonly #clock: Clock
  readonly #buckets = new Float64Array(WINDOW_BUCKETS)
  #currentBucket: number
  readonly #startBucket: number
  #total = 0

  constructor(clock: Clock) {
    this.#clock = clock
    this.#currentBucket = Math.floor(clock.monotonic() / BUCKET_MS)
    this.#startBucket = this.#currentBucket
  }

  get total(): number {
    return this.#total
  }

  add(bytes: number): void {
    this.#advance()
    this.#total += bytes
    this.#buckets[this.#currentBucket % WINDOW_BUCKETS]! += bytes
  }

  /** Bytes per second over the completed buckets of the window plus the current partial one. */
  get ratePerSec(): number {
    this.#advance()
    const elapsedMs = Math.min(
      WINDOW_BUCKETS * BUCKET_MS,
      Math.max(BUCKET_MS, this.#clock.monotonic() - this.#startBucket * BUCKET_MS),
    )
    let sum = 0
    for (const bytes of this.#buckets) sum += bytes
    return (sum * 1000) / elapsedMs
  }

  #advance(): void {
    const bucket = Math.floor(this.#clock.monotonic() / BUCKET_MS)
    if (bucket === this.#currentBucket) return
    const steps = Math.min(bucket - this.#currentBucket, WINDOW_BUCKETS)
    for (let i = 1; i <= steps; i++) this.#buckets[(this.#currentBucket + i) % WINDOW_BUCKETS] = 0
    this.#currentBucket = bucket
  }
}
