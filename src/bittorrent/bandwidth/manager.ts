import { type AbortOptions, type Clock, systemClock, type TimerHandle } from '../../common/index.js'
import { BandwidthError, type CancelRequest, type GrantCallback } from './types.js'

/** How often queued requests are looked at while any wait. */
export const DEFAULT_TICK_MS = 50
/** Unused quota a limited channel may save up, in milliseconds of its rate. */
export const DEFAULT_BURST_MS = 500

/**
 * One token bucket: a rate limit in bytes per second (0 = unlimited) that a set of transfers shares, like a
 * libtorrent `bandwidth_channel`. The session has one per direction; each download adds its own. A request
 * passes through every channel it names and waits until all of them have quota.
 *
 * Quota is computed lazily from the clock; a request may take a channel's balance below zero (it is granted
 * whole once the balance is positive), so large requests pass and the long-run rate still holds.
 */
export class BandwidthChannel {
  /** Bytes granted through this channel so far (limited or not). */
  totalBytes = 0
  #rate: number
  #balance = 0
  #updatedAt: number
  #waiting = 0
  readonly #manager: BandwidthManager

  /** @internal use {@link BandwidthManager.channel} */
  constructor(manager: BandwidthManager, rateBytesPerSec: number, nowMs: number) {
    this.#manager = manager
    this.#rate = checkRate(rateBytesPerSec)
    this.#updatedAt = nowMs
    this.#balance = this.#startBalance()
  }

  /** The limit in bytes per second; 0 = unlimited. */
  get rateBytesPerSec(): number {
    return this.#rate
  }

  /** Whether this channel limits nothing. */
  get unlimited(): boolean {
    return this.#rate === 0
  }

  /** Changes the limit at once; waiting requests see the new rate from now on. 0 = unlimited. */
  setRate(rateBytesPerSec: number): void {
    const rate = checkRate(rateBytesPerSec)
    if (rate === this.#rate) return
    this.refill(this.#manager.now())
    const wasUnlimited = this.#rate === 0
    this.#rate = rate
    // A channel that starts limiting begins with one tick of quota; a lower limit drops what exceeds its burst.
    if (rate === 0) this.#balance = 0
    else if (wasUnlimited) this.#balance = this.#startBalance()
    else this.#balance = Math.min(this.#balance, this.#burst())
    this.#manager.wake()
  }

  /** Quota available now (negative while in debt); Infinity when unlimited. */
  get balance(): number {
    if (this.#rate === 0) return Number.POSITIVE_INFINITY
    this.refill(this.#manager.now())
    return this.#balance
  }

  /** @internal */
  refill(nowMs: number): void {
    const elapsedMs = nowMs - this.#updatedAt
    this.#updatedAt = nowMs
    if (this.#rate === 0 || elapsedMs <= 0) return
    this.#balance = Math.min(this.#balance + (this.#rate * elapsedMs) / 1000, this.#burst())
  }

  /** @internal Unlimited, or the balance is positive (call {@link refill} first). */
  canPass(): boolean {
    return this.#rate === 0 || this.#balance > 0
  }

  /** @internal */
  consume(bytes: number): void {
    this.totalBytes += bytes
    if (this.#rate !== 0) this.#balance -= bytes
  }

  /** @internal Number of queued requests that name this channel. */
  get waiting(): number {
    return this.#waiting
  }

  set waiting(n: number) {
    this.#waiting = n
  }

  #startBalance(): number {
    return (this.#rate * this.#manager.tickMs) / 1000
  }

  #burst(): number {
    return Math.max((this.#rate * this.#manager.burstMs) / 1000, 1)
  }
}

interface Pending {
  bytes: number
  channels: readonly BandwidthChannel[]
  grant: GrantCallback
  /** Set by {@link BandwidthManager.acquire}: fails the promise when the manager stops. */
  reject?: (err: Error) => void
  done: boolean
}

/**
 * Hands out bytes to transfers under hierarchical rate limits (libtorrent's `bandwidth_manager`). Requests are
 * served in arrival order among those whose channels all have quota, so many peers on one channel share it
 * fairly and none starves; a request held back by its own download's limit does not block other downloads.
 * While requests wait, one shared timer looks at them every `tickMs`; when none waits there is no timer.
 * Unlimited channels cost nothing: a request through unlimited channels only is granted synchronously.
 *
 * @example
 * ```ts
 * const bandwidth = new BandwidthManager({ clock })
 * const globalUp = bandwidth.channel(settings.maxUploadRate) // 0 = unlimited
 * const torrentUp = bandwidth.channel(0)
 * await bandwidth.acquire(16_384, [torrentUp, globalUp], { signal })
 * socket.write(pieceMessage)
 * globalUp.setRate(1_000_000) // applies at once
 * ```
 */
export class BandwidthManager {
  readonly tickMs: number
  readonly burstMs: number
  readonly #clock: Clock
  #queue: Pending[] = []
  #timer: TimerHandle | undefined
  #wakeQueued = false
  #stopped = false

  constructor(opts: { clock?: Clock; tickMs?: number; burstMs?: number } = {}) {
    this.#clock = opts.clock ?? systemClock
    this.tickMs = opts.tickMs ?? DEFAULT_TICK_MS
    this.burstMs = opts.burstMs ?? DEFAULT_BURST_MS
  }

  /** A new channel limited to `rateBytesPerSec` (0 = unlimited). */
  channel(rateBytesPerSec = 0): BandwidthChannel {
    return new BandwidthChannel(this, rateBytesPerSec, this.now())
  }

  /** Requests waiting for quota. */
  get queued(): number {
    return this.#queue.length
  }

  /**
   * Grants `bytes` through every channel at once if they all have quota; returns whether it did. Never queues:
   * the synchronous hot path. Requests already queued on these channels are served first.
   */
  tryAcquire(bytes: number, channels: readonly BandwidthChannel[]): boolean {
    checkBytes(bytes)
    if (this.#stopped) return false
    const now = this.now()
    let queuedFirst = false
    for (const channel of channels) {
      if (channel.unlimited) continue
      channel.refill(now)
      if (channel.waiting > 0) queuedFirst = true
    }
    // Whatever stays queued after this pass waits on some channel without quota, so what is left may go to us.
    if (queuedFirst) this.#process()
    for (const channel of channels) if (!channel.canPass()) return false
    for (const channel of channels) channel.consume(bytes)
    return true
  }

  /**
   * Calls `grant` once `bytes` may move through all `channels`: synchronously when they have quota now, else from
   * the tick. Returns a function that withdraws the request.
   */
  request(bytes: number, channels: readonly BandwidthChannel[], grant: GrantCallback): CancelRequest {
    if (this.#stopped) throw new BandwidthError('STOPPED')
    if (this.tryAcquire(bytes, channels)) {
      grant()
      return noop
    }
    const pending: Pending = { bytes, channels, grant, done: false }
    for (const channel of channels) channel.waiting++
    this.#queue.push(pending)
    this.#schedule()
    return () => this.#withdraw(pending)
  }

  /**
   * Resolves once `bytes` may move through all `channels`; rejects with the signal's reason if it aborts first,
   * or with `STOPPED`.
   */
  acquire(bytes: number, channels: readonly BandwidthChannel[], opts: AbortOptions = {}): Promise<void> {
    if (this.#stopped) return Promise.reject(new BandwidthError('STOPPED'))
    const { signal } = opts
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.tryAcquire(bytes, channels)) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        cancel()
        reject(signal?.reason)
      }
      const pending: Pending = {
        bytes,
        channels,
        done: false,
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
      }
      const cancel = (): void => this.#withdraw(pending)
      pending.reject = (err) => {
        signal?.removeEventListener('abort', onAbort)
        reject(err)
      }
      for (const channel of channels) channel.waiting++
      this.#queue.push(pending)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#schedule()
    })
  }

  /** Stops the tick and fails every waiting {@link acquire} with `STOPPED` (callbacks are dropped). */
  stop(): void {
    this.#stopped = true
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    const queue = this.#queue
    this.#queue = []
    for (const pending of queue) {
      pending.done = true
      for (const channel of pending.channels) channel.waiting--
      pending.reject?.(new BandwidthError('STOPPED'))
    }
  }

  /** @internal */
  now(): number {
    return this.#clock.monotonic()
  }

  /** @internal A limit changed: look at the queue soon (not inside the caller). */
  wake(): void {
    if (this.#wakeQueued || this.#queue.length === 0) return
    this.#wakeQueued = true
    queueMicrotask(() => {
      this.#wakeQueued = false
      this.#process()
    })
  }

  #withdraw(pending: Pending): void {
    if (pending.done) return
    pending.done = true
    for (const channel of pending.channels) channel.waiting--
    const at = this.#queue.indexOf(pending)
    if (at >= 0) this.#queue.splice(at, 1)
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#stopped) return
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined
      this.#process()
    }, this.tickMs)
  }

  #process(): void {
    if (this.#stopped) return
    const now = this.now()
    const seen = new Set<BandwidthChannel>()
    const granted: Pending[] = []
    const left: Pending[] = []
    for (const pending of this.#queue) {
      let pass = true
      for (const channel of pending.channels) {
        if (!seen.has(channel)) {
          seen.add(channel)
          channel.refill(now)
        }
        if (!channel.canPass()) pass = false
      }
      if (!pass) {
        left.push(pending)
        continue
      }
      for (const channel of pending.channels) {
        channel.consume(pending.bytes)
        channel.waiting--
      }
      pending.done = true
      granted.push(pending)
    }
    this.#queue = left
    if (left.length > 0) this.#schedule()
    for (const pending of granted) pending.grant()
  }
}

function noop(): void {}

function checkRate(rate: number): number {
  if (!Number.isFinite(rate) || rate < 0) throw new BandwidthError('INVALID_ARGUMENT', { rate })
  return Math.floor(rate)
}

function checkBytes(bytes: number): void {
  if (!Number.isInteger(bytes) || bytes <= 0) throw new BandwidthError('INVALID_ARGUMENT', { bytes })
}
