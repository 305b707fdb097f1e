import { Duplex } from 'node:stream'
import type { BandwidthChannel, BandwidthManager } from './manager.js'
import type { CancelRequest } from './types.js'

/** Largest slice of a chunk granted at once, so a big chunk is paced smoothly rather than in one burst. */
export const DEFAULT_QUANTUM_BYTES = 16 * 1024

/** Options of {@link throttle}. */
export interface ThrottleOptions {
  manager: BandwidthManager
  /** Channels that bytes read from the stream pass through (the download direction). */
  read?: readonly BandwidthChannel[]
  /** Channels that bytes written to the stream pass through (the upload direction). */
  write?: readonly BandwidthChannel[]
  /** Largest slice granted at once. Default 16 KiB. */
  quantumBytes?: number
  /** Buffer sizes of the wrapper on both sides. Default 64 KiB. */
  highWaterMark?: number
}

function allUnlimited(channels: readonly BandwidthChannel[]): boolean {
  for (const channel of channels) if (!channel.unlimited) return false
  return true
}

function countBytes(channels: readonly BandwidthChannel[], bytes: number): void {
  for (const channel of channels) channel.totalBytes += bytes
}

/**
 * A Duplex over `inner` whose reads and writes are paced by bandwidth channels. Backpressure all the way: while a
 * read waits for quota the inner stream is paused (a socket then stops reading and TCP slows the sender), and a
 * write completes only once its bytes are granted and the inner stream took them. Nothing is buffered beyond the
 * usual stream buffers. When every channel of a direction is unlimited, chunks pass straight through.
 */
class ThrottledStream extends Duplex {
  readonly #inner: Duplex
  readonly #manager: BandwidthManager
  readonly #readChannels: BandwidthChannel[]
  readonly #writeChannels: BandwidthChannel[]
  readonly #quantum: number
  readonly #pendingIn: Buffer[] = []
  #granting = false
  #wantRead = true
  #innerEnded = false
  #cancelIn: CancelRequest | undefined
  #cancelOut: CancelRequest | undefined

  constructor(inner: Duplex, opts: ThrottleOptions) {
    const highWaterMark = opts.highWaterMark ?? 64 * 1024
    super({ highWaterMark, allowHalfOpen: true })
    this.#inner = inner
    this.#manager = opts.manager
    this.#readChannels = [...(opts.read ?? [])]
    this.#writeChannels = [...(opts.write ?? [])]
    this.#quantum = opts.quantumBytes ?? DEFAULT_QUANTUM_BYTES
    inner.on('data', (chunk: Buffer) => this.#onData(chunk))
    inner.on('end', () => {
      this.#innerEnded = true
      if (this.#pendingIn.length === 0 && !this.#granting) this.push(null)
    })
    inner.on('error', (err: Error) => this.destroy(err))
    inner.on('close', () => {
      if (!this.#innerEnded && !this.destroyed) this.destroy()
    })
  }

  /** The stream being paced. */
  get inner(): Duplex {
    return this.#inner
  }

  /**
   * Adds channels from now on (a connection whose download is known only after its handshake). Bytes already granted
   * or waiting keep the channels they asked; a channel added twice counts once.
   */
  addChannels(channels: { read?: readonly BandwidthChannel[]; write?: readonly BandwidthChannel[] }): void {
    for (const channel of channels.read ?? []) {
      if (!this.#readChannels.includes(channel)) this.#readChannels.push(channel)
    }
    for (const channel of channels.write ?? []) {
      if (!this.#writeChannels.includes(channel)) this.#writeChannels.push(channel)
    }
  }

  #onData(chunk: Buffer): void {
    if (this.#pendingIn.length === 0 && !this.#granting && allUnlimited(this.#readChannels)) {
      countBytes(this.#readChannels, chunk.length)
      if (!this.push(chunk)) {
        this.#wantRead = false
        this.#inner.pause()
      }
      return
    }
    this.#pendingIn.push(chunk)
    this.#inner.pause()
    this.#pumpIn()
  }

  #pumpIn(): void {
    if (this.#granting || !this.#wantRead || this.destroyed) return
    const chunk = this.#pendingIn[0]
    if (chunk === undefined) {
      if (this.#innerEnded) this.push(null)
      else this.#inner.resume()
      return
    }
    const n = Math.min(chunk.length, this.#quantum)
    this.#granting = true
    this.#cancelIn = this.#manager.request(n, [...this.#readChannels], () => {
      this.#granting = false
      this.#cancelIn = undefined
      if (this.destroyed) return
      if (n === chunk.length) this.#pendingIn.shift()
      else this.#pendingIn[0] = chunk.subarray(n)
      if (!this.push(chunk.subarray(0, n))) this.#wantRead = false
      this.#pumpIn()
    })
  }

  override _read(): void {
    this.#wantRead = true
    if (this.#pendingIn.length > 0 || this.#granting) this.#pumpIn()
    else if (!this.#innerEnded) this.#inner.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#writeChunk(chunk, callback)
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (err?: Error | null) => void,
  ): void {
    if (allUnlimited(this.#writeChannels)) {
      // Corked writes (several messages at once) stay together on the inner stream.
      this.#inner.cork()
      let ok = true
      let bytes = 0
      for (const { chunk } of chunks) {
        ok = this.#inner.write(chunk)
        bytes += chunk.length
      }
      this.#inner.uncork()
      countBytes(this.#writeChannels, bytes)
      if (ok) callback()
      else this.#afterDrain(callback)
      return
    }
    this.#writeChunk(Buffer.concat(chunks.map((c) => c.chunk)), callback)
  }

  #writeChunk(chunk: Buffer, callback: (err?: Error | null) => void): void {
    if (allUnlimited(this.#writeChannels)) {
      countBytes(this.#writeChannels, chunk.length)
      if (this.#inner.write(chunk)) callback()
      else this.#afterDrain(callback)
      return
    }
    const n = Math.min(chunk.length, this.#quantum)
    this.#cancelOut = this.#manager.request(n, [...this.#writeChannels], () => {
      this.#cancelOut = undefined
      if (this.destroyed) return
      const ok = this.#inner.write(chunk.subarray(0, n))
      const next = (): void => {
        if (n === chunk.length) callback()
        else this.#writeChunk(chunk.subarray(n), callback)
      }
      if (ok) next()
      else this.#afterDrain(next)
    })
  }

  #afterDrain(fn: () => void): void {
    this.#inner.once('drain', () => fn())
  }

  override _final(callback: (err?: Error | null) => void): void {
    // Finished only once the inner stream flushed everything: destroying it earlier would drop those bytes.
    this.#inner.end(() => callback())
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#cancelIn?.()
    this.#cancelOut?.()
    this.#pendingIn.length = 0
    if (!this.#inner.destroyed) this.#inner.destroy(err ?? undefined)
    callback(err)
  }
}

/** A Duplex paced by {@link throttle}, which can take more channels later. */
export interface ThrottledDuplex extends Duplex {
  /** The stream being paced. */
  readonly inner: Duplex
  /**
   * Adds channels that later bytes pass through too, e.g. a download's own limits once the handshake named the
   * torrent. Limits compose: bytes move only when every channel has quota, so the lowest limit wins.
   */
  addChannels(channels: { read?: readonly BandwidthChannel[]; write?: readonly BandwidthChannel[] }): void
}

/** Whether `stream` came from {@link throttle}. */
export function isThrottled(stream: Duplex): stream is ThrottledDuplex {
  return stream instanceof ThrottledStream
}

/**
 * Wraps any Duplex (a TCP socket, a uTP connection, an in-process pair) so reads and writes pass through rate
 * limits. The result is a Duplex with the same bytes; destroying it destroys `inner`.
 *
 * @example
 * ```ts
 * const paced = throttle(socket, {
 *   manager: bandwidth,
 *   read: [torrentDown, globalDown],
 *   write: [torrentUp, globalUp],
 * })
 * const wire = new PeerWire(paced, { peerId, infoHash })
 * ```
 */
export function throttle(inner: Duplex, opts: ThrottleOptions): ThrottledDuplex {
  return new ThrottledStream(inner, opts)
}
