/**
 * A byte queue for a streaming parser. Chunks are kept as received; {@link Framer.take} returns a view of a chunk
 * (no copy) when the bytes asked for lie in one chunk, and copies only when they span chunks.
 */
export class Framer {
  #chunks: Buffer[] = []
  /** Read position in `#chunks[0]`. */
  #offset = 0
  #buffered = 0

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

  /** Removes and returns `n` bytes, or undefined when fewer wait. */
  take(n: number): Buffer | undefined {
    if (n > this.#buffered) return undefined
    this.#buffered -= n
    const first = this.#chunks[0]
    if (first === undefined) return Buffer.alloc(0)
    const available = first.length - this.#offset
    if (n <= available) {
      const view = first.subarray(this.#offset, this.#offset + n)
      this.#offset += n
      if (this.#offset === first.length) {
        this.#chunks.shift()
        this.#offset = 0
      }
      return view
    }
    const out = Buffer.allocUnsafe(n)
    let written = 0
    while (written < n) {
      const chunk = this.#chunks[0]!
      const count = Math.min(chunk.length - this.#offset, n - written)
      chunk.copy(out, written, this.#offset, this.#offset + count)
      written += count
      this.#offset += count
      if (this.#offset === chunk.length) {
        this.#chunks.shift()
        this.#offset = 0
      }
    }
    return out
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
      if (this.#offset === chunk.length) {
        this.#chunks.shift()
        this.#offset = 0
      }
    }
  }

  clear(): void {
    this.#chunks = []
    this.#offset = 0
    this.#buffered = 0
  }
}
