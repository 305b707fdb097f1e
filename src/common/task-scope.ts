import { type Clock, systemClock, type TimerHandle } from './clock.js'
import { logger } from './logger.js'

const log = logger('common:tasks')

/**
 * Named timers with one owner. Every timer a service runs lives in its scope; aborting the scope's signal (or
 * calling {@link TaskScope.stopAll}) cancels them all, so nothing fires after a service has stopped.
 * A name is unique within a scope: scheduling a name again replaces the old timer.
 *
 * @example
 * ```ts
 * const tasks = new TaskScope(stopped.signal)
 * tasks.every('walk', 500, () => this.walk())
 * ```
 */
export class TaskScope {
  readonly #clock: Clock
  readonly #timers = new Map<string, TimerHandle>()
  #stopped = false

  constructor(signal?: AbortSignal, clock: Clock = systemClock) {
    this.#clock = clock
    if (signal?.aborted) this.#stopped = true
    signal?.addEventListener('abort', () => this.stopAll(), { once: true })
  }

  /** Runs `fn` every `intervalMs` (first run after one interval, or at once with `{ now: true }`). */
  every(name: string, intervalMs: number, fn: () => unknown, opts: { now?: boolean } = {}): void {
    const tick = (): void => {
      if (this.#stopped) return
      this.#timers.set(name, this.#clock.setTimeout(tick, intervalMs))
      this.#run(name, fn)
    }
    this.cancel(name)
    if (this.#stopped) return
    if (opts.now === true) tick()
    else this.#timers.set(name, this.#clock.setTimeout(tick, intervalMs))
  }

  /** Runs `fn` once after `delayMs`. */
  after(name: string, delayMs: number, fn: () => unknown): void {
    this.cancel(name)
    if (this.#stopped) return
    this.#timers.set(
      name,
      this.#clock.setTimeout(() => {
        this.#timers.delete(name)
        if (!this.#stopped) this.#run(name, fn)
      }, delayMs),
    )
  }

  /** Cancels the timer with this name, if any. */
  cancel(name: string): boolean {
    const handle = this.#timers.get(name)
    if (handle === undefined) return false
    this.#clock.clearTimeout(handle)
    this.#timers.delete(name)
    return true
  }

  has(name: string): boolean {
    return this.#timers.has(name)
  }

  get names(): string[] {
    return [...this.#timers.keys()]
  }

  /** Cancels every timer; later scheduling is ignored. */
  stopAll(): void {
    this.#stopped = true
    for (const handle of this.#timers.values()) this.#clock.clearTimeout(handle)
    this.#timers.clear()
  }

  #run(name: string, fn: () => unknown): void {
    try {
      const result = fn()
      if (result instanceof Promise) result.catch((err: unknown) => log.warn('task failed', { name, err }))
    } catch (err) {
      log.warn('task failed', { name, err })
    }
  }
}
