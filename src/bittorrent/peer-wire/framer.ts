import { isPooledRead, releaseRead } from './read-pool.js'

/**
 * A byte queue for a streaming parser. Chunks are kept as received; {@link Framer.take} returns a view of a chunk
 * (no copy) when the bytes asked for lie in one chunk, and copies only when they span chunks. Chunks of pooled
 * socket reads (see {@link pooledReads}) go back to the pool once every byte of them was taken and no view of them
 * escaped: call {@link Framer.recycle} when the views of {@link Framer.takeTransient} are no longer used.
 */
export class Framer {
  #chunks: Buffer[] = []
  /** Read position in `#chunks[0]`. */
  #offset = 0
  #buffered = 0
  /** A view of `#chunks[0]` outlives the parse: the chunk must not go back to the pool. */
  #firstEscaped = false
  /** Fully read pooled chunks, released by {@link recycle}. */
  #done: Buffer[] = []
  /** Where {@link takeTransient} assembles bytes that span chunks. */
  #scratch: Buffer = Buffer.alloc(0)

  /** Bytes waiting. */
  get buffered(): number {
    return this.#buffered
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
  }

  /** The big-endian u32 at the read position, or -1 when fewer than 4 bytes wait. */
  peekUInt32(): number {
    if (this.#buffered < 4) return -1
    const first = this.#chunks[0]!
    if (first.length - this.#offset >= 4) return first.readUInt32BE(this.#offset)
    let value = 0
    let chunkIndex = 0
    let offset = this.#offset
    for (let i = 0; i < 4; i++) {
      let chunk = this.#chunks[chunkIndex]!
      while (offset >= chunk.length) {
        chunkIndex++
        offset = 0
        chunk = this.#chunks[chunkIndex]!
      }
      value = value * 256 + chunk[offset]!
      offset++
    }
    return value
  }

  /** The byte at the read position, or -1 when none waits. */
  peekUInt8(): number {
    return this.#buffered === 0 ? -1 : this.#chunks[0]![this.#offset]!
  }

  /** Removes and returns `n` bytes, or undefined when fewer wait. The result stays valid. */
  take(n: number): Buffer | undefined {
    return this.#take(n, false)
  }

  /**
   * Removes and returns `n` bytes, or undefined when fewer wait. The result is valid only until the next take and
   * {@link recycle}: use it at once or copy it.
   */
  takeTransient(n: number): Buffer | undefined {
    return this.#take(n, true)
  }

  /** Drops `n` bytes (at most what waits). */
  skip(n: number): void {
    let left = Math.min(n, this.#buffered)
    this.#buffered -= left
    while (left > 0) {
      const chunk = this.#chunks[0]!
      const count = Math.min(chunk.length - this.#offset, left)
      left -= count
      this.#offset += count
      if (this.#offset === chunk.length) this.#shift()
    }
  }

  /** Gives the pooled chunks read to the end back to their pool; views of {@link takeTransient} die here. */
  recycle(): void {
    if (this.#done.length === 0) return
    for (const chunk of this.#done) releaseRead(chunk)
    this.#done.length = 0
  }

  clear(): void {
    this.#chunks = []
    this.#offset = 0
    this.#buffered = 0
    this.#firstEscaped = false
    this.#done.length = 0
  }

  #take(n: number, transient: boolean): Buffer | undefined {
    if (n > this.#buffered) return undefined
    this.#buffered -= n
    const first = this.#chunks[0]
    if (first === undefined) return Buffer.alloc(0)
    const available = first.length - this.#offset
    if (n <= available) {
      const view = first.subarray(this.#offset, this.#offset + n)
      if (!transient) this.#firstEscaped = true
      this.#offset += n
      if (this.#offset === first.length) this.#shift()
      return view
    }
    if (transient && this.#scratch.length < n) this.#scratch = Buffer.allocUnsafeSlow(Math.max(n, 16_384))
    const out = transient ? this.#scratch.subarray(0, n) : Buffer.allocUnsafe(n)
    let written = 0
    while (written < n) {
      const chunk = this.#chunks[0]!
      const count = Math.min(chunk.length - this.#offset, n - written)
      chunk.copy(out, written, this.#offset, this.#offset + count)
      written += count
      this.#offset += count
      if (this.#offset === chunk.length) this.#shift()
    }
    return out
  }

  #shift(): void {
    const chunk = this.#chunks.shift()!
    if (!this.#firstEscaped && isPooledRead(chunk)) this.#done.push(chunk)
    this.#firstEscaped = false
    this.#offset = 0
  }
}
