/** A timer handle as returned by a {@link Clock}. */
export type TimerHandle = { readonly id: number } | NodeJS.Timeout

/**
 * The source of time and timers. Services take a clock in their deps so tests can drive time by hand
 * (see {@link ManualClock}).
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number
  /** Monotonic milliseconds, for measuring intervals. */
  monotonic(): number
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref?.()
    return t
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

interface ManualTimer {
  readonly id: number
  at: number
  fn: () => void
}

/**
 * A clock that moves only when {@link ManualClock.advance} is called. Timers fire in deadline order.
 *
 * @example
 * ```ts
 * const clock = new ManualClock()
 * clock.setTimeout(() => fired = true, 100)
 * clock.advance(100) // fired === true
 * ```
 */
export class ManualClock implements Clock {
  #now: number
  #nextId = 1
  #timers = new Map<number, ManualTimer>()

  constructor(startMs = 1_700_000_000_000) {
    this.#now = startMs
  }

  now(): number {
    return this.#now
  }

  monotonic(): number {
    return this.#now
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: this.#nextId++, at: this.#now + Math.max(0, ms), fn }
    this.#timers.set(timer.id, timer)
    return { id: timer.id }
  }

  clearTimeout(handle: TimerHandle): void {
    if ('id' in handle && typeof handle.id === 'number') this.#timers.delete(handle.id)
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.#now + ms
    for (;;) {
      let next: ManualTimer | undefined
      for (const timer of this.#timers.values()) {
        if (timer.at <= target && (next === undefined || timer.at < next.at)) next = timer
      }
      if (next === undefined) break
      this.#timers.delete(next.id)
      this.#now = next.at
      next.fn()
    }
    this.#now = target
  }

  /** Number of timers still pending. */
  get pending(): number {
    return this.#timers.size
  }
}
