import { Duplex } from 'node:stream'

class PairEnd extends Duplex {
  other!: PairEnd
  #pendingWrite: (() => void) | undefined

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    // Delivered on a later tick like a socket (never inside the writer's call), with socket-like backpressure: the
    // write completes when the other end's reader has room.
    process.nextTick(() => {
      if (this.other.push(chunk)) callback()
      else this.other.#pendingWrite = () => callback()
    })
  }

  override _read(): void {
    const pending = this.#pendingWrite
    this.#pendingWrite = undefined
    pending?.()
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.other.push(null)
    callback()
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.other.destroyed) this.other.destroy()
    callback(err)
  }
}

/**
 * Two connected in-process Duplex streams: what one writes, the other reads, with socket-like backpressure
 * (`write()` returns false once the reader's buffer is full). Destroying one end destroys the other.
 *
 * @example
 * ```ts
 * const [a, b] = duplexPair()
 * const seeder = new PeerWire(a, { peerId, infoHash })
 * ```
 */
export function duplexPair(opts: { highWaterMark?: number } = {}): [Duplex, Duplex] {
  const a = new PairEnd({ highWaterMark: opts.highWaterMark ?? 256 * 1024 })
  const b = new PairEnd({ highWaterMark: opts.highWaterMark ?? 256 * 1024 })
  a.other = b
  b.other = a
  return [a, b]
}
