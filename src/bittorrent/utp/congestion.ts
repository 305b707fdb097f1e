/**
 * LEDBAT congestion control (BEP 29, RFC 6817) as libtorrent's uTP does it, the round-trip-time estimator and
 * the base-delay history. Pure state machines without timers, so tests can pin them exactly.
 */

/** LEDBAT's target queuing delay (BEP 29: 100 ms). */
export const TARGET_DELAY_US = 100_000
/** Most a window grows per round trip when all of it was acked at zero delay (libtorrent `utp_gain_factor`). */
export const GAIN_BYTES = 3000
/** Smallest retransmission timeout (BEP 29: 500 ms). */
export const MIN_RTO_MS = 500
/** Largest retransmission timeout after backoff. */
export const MAX_RTO_MS = 60_000
/** Retransmission timeout before any round trip was measured. */
export const INITIAL_RTO_MS = 1000
/** Minutes of one-minute minimums kept to find the base delay (RFC 6817 BASE_HISTORY). */
export const BASE_HISTORY_MINUTES = 10
/** Number of recent delay samples whose minimum is the current delay (RFC 6817 CURRENT_FILTER). */
export const CURRENT_FILTER = 4

const U32 = 0x1_0000_0000

/** True when `a` is before `b` on a 32-bit wrapping clock. */
function u32Less(a: number, b: number): boolean {
  const d = (b - a + U32) % U32
  return d !== 0 && d < U32 / 2
}

/**
 * One-way delay history. The sender's and receiver's clocks are unrelated, so a sample is the real delay plus an
 * unknown constant offset; subtracting the minimum over the last minutes leaves the queuing delay.
 */
export class DelayHistory {
  readonly #minutes: number[] = []
  #currentMinuteStartMs = Number.NEGATIVE_INFINITY
  #base: number | undefined
  readonly #recent: number[] = []

  /** The base delay in µs (modulo 2^32), or undefined before the first sample. */
  get baseUs(): number | undefined {
    return this.#base
  }

  /** Adds a delay sample (µs, modulo 2^32) taken at `nowMs`; returns the filtered queuing delay in µs. */
  add(sampleUs: number, nowMs: number): number {
    const sample = sampleUs >>> 0
    if (nowMs - this.#currentMinuteStartMs >= 60_000 || this.#minutes.length === 0) {
      this.#minutes.push(sample)
      if (this.#minutes.length > BASE_HISTORY_MINUTES) this.#minutes.shift()
      this.#currentMinuteStartMs = nowMs
      this.#base = undefined
      for (const m of this.#minutes) if (this.#base === undefined || u32Less(m, this.#base)) this.#base = m
    } else {
      const last = this.#minutes.length - 1
      if (u32Less(sample, this.#minutes[last] ?? sample)) this.#minutes[last] = sample
    }
    if (this.#base === undefined || u32Less(sample, this.#base)) this.#base = sample
    const queuing = (sample - this.#base + U32) % U32
    this.#recent.push(queuing)
    if (this.#recent.length > CURRENT_FILTER) this.#recent.shift()
    return Math.min(...this.#recent)
  }
}

/** Round-trip time and retransmission timeout (RFC 6298 as BEP 29 words it), with exponential backoff. */
export class RttEstimator {
  #srttMs: number | undefined
  #rttVarMs = 0
  #backoff = 0

  /** Smoothed round-trip time in ms (0 before the first sample). */
  get rttMs(): number {
    return this.#srttMs ?? 0
  }

  get rttVarMs(): number {
    return this.#rttVarMs
  }

  /** Current timeout in ms, backoff included. */
  get rtoMs(): number {
    const base =
      this.#srttMs === undefined ? INITIAL_RTO_MS : Math.max(MIN_RTO_MS, this.#srttMs + 4 * this.#rttVarMs)
    return Math.min(MAX_RTO_MS, base * 2 ** this.#backoff)
  }

  /** Timeouts in a row since the last new acknowledgement. */
  get backoff(): number {
    return this.#backoff
  }

  /**
   * Adds a sample. Callers follow Karn's algorithm: only packets sent once give samples, since the ack of a
   * retransmitted packet cannot tell which copy it answers.
   */
  sample(rttMs: number): void {
    if (this.#srttMs === undefined) {
      this.#srttMs = rttMs
      this.#rttVarMs = rttMs / 2
    } else {
      this.#rttVarMs += (Math.abs(this.#srttMs - rttMs) - this.#rttVarMs) / 4
      this.#srttMs += (rttMs - this.#srttMs) / 8
    }
  }

  /** A timeout fired: the next one waits twice as long. */
  onTimeout(): void {
    this.#backoff = Math.min(this.#backoff + 1, 16)
  }

  /** New data was acknowledged: the backoff ends. */
  onProgress(): void {
    this.#backoff = 0
  }
}

/** Options of {@link Ledbat}. */
export interface LedbatOptions {
  /** Payload bytes of a full packet; the window never goes below one. */
  packetBytes: number
  initialCwndBytes?: number
  maxCwndBytes?: number
  targetDelayUs?: number
  gainBytes?: number
}

/**
 * LEDBAT window control in bytes, the way libtorrent's `utp_socket_impl::do_ledbat` applies it:
 * the window moves by `gain * (acked / window) * (target - delay) / target` per ack, so one window's worth of acks
 * at zero queuing delay adds `gain` bytes, and a delay above target shrinks it by as much. In slow start the
 * window grows by the acked bytes (doubling per round trip) until delay reaches the target, a loss occurs, or the
 * slow-start threshold is passed. The window does not grow while the sender does not fill it.
 */
export class Ledbat {
  #cwnd: number
  #slowStart = true
  #ssthresh = 0
  readonly #packetBytes: number
  readonly #maxCwnd: number
  readonly #target: number
  readonly #gain: number

  constructor(opts: LedbatOptions) {
    this.#packetBytes = opts.packetBytes
    this.#cwnd = opts.initialCwndBytes ?? 2 * opts.packetBytes
    this.#maxCwnd = opts.maxCwndBytes ?? 8 * 1024 * 1024
    this.#target = opts.targetDelayUs ?? TARGET_DELAY_US
    this.#gain = opts.gainBytes ?? GAIN_BYTES
  }

  /** Congestion window in bytes. */
  get cwndBytes(): number {
    return Math.floor(this.#cwnd)
  }

  get slowStart(): boolean {
    return this.#slowStart
  }

  /** Slow-start threshold in bytes (0: none yet). */
  get ssthreshBytes(): number {
    return this.#ssthresh
  }

  /**
   * Bytes were acknowledged.
   * @param ackedBytes payload bytes newly acknowledged
   * @param queuingDelayUs current queuing delay (delay sample minus base delay)
   * @param inFlightBytes bytes in flight before this ack
   */
  onAck(ackedBytes: number, queuingDelayUs: number, inFlightBytes: number): void {
    if (ackedBytes <= 0) return
    const windowFactor = ackedBytes / Math.max(this.#cwnd, inFlightBytes, 1)
    const delayFactor = (this.#target - queuingDelayUs) / this.#target
    if (queuingDelayUs >= this.#target && this.#slowStart) {
      this.#ssthresh = Math.floor(this.#cwnd / 2)
      this.#slowStart = false
    }
    const linear = this.#gain * windowFactor * delayFactor
    const saturated = inFlightBytes + this.#packetBytes > this.#cwnd
    let gain = 0
    if (saturated) {
      if (this.#slowStart) {
        if (this.#ssthresh !== 0 && this.#cwnd + ackedBytes > this.#ssthresh) {
          this.#slowStart = false
          gain = linear
        } else {
          gain = Math.max(ackedBytes, linear)
        }
      } else {
        gain = linear
      }
    } else if (linear < 0) {
      gain = linear
    }
    this.#cwnd = Math.min(this.#maxCwnd, Math.max(this.#packetBytes, this.#cwnd + gain))
  }

  /** A packet was lost: halve the window and leave slow start. Callers limit this to once per round trip. */
  onLoss(): void {
    this.#cwnd = Math.max(this.#packetBytes, this.#cwnd / 2)
    this.#ssthresh = Math.floor(this.#cwnd)
    this.#slowStart = false
  }

  /** The retransmission timer fired: back to one packet, slow start up to half the old window. */
  onTimeout(): void {
    this.#ssthresh = Math.max(this.#packetBytes, Math.floor(this.#cwnd / 2))
    this.#cwnd = this.#packetBytes
    this.#slowStart = true
  }
}
