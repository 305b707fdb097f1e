/**
 * A set of piece indices in BitTorrent's wire layout: piece 0 is the high bit of byte 0 (BEP 3 `bitfield`).
 *
 * @example
 * ```ts
 * const have = Bitfield.fromBytes(payload, torrent.pieceCount) // from a peer's bitfield message
 * if (have.has(7)) ...
 * ```
 */
export class Bitfield {
  readonly bytes: Uint8Array
  readonly length: number
  #count = 0

  /** An empty set of `length` pieces. */
  constructor(length: number) {
    this.length = length
    this.bytes = new Uint8Array(Math.ceil(length / 8))
  }

  /**
   * The bitfield of a peer's message. Returns `undefined` when the payload has the wrong length or sets a spare
   * bit past the last piece (BEP 3 says to drop such a peer).
   */
  static fromBytes(bytes: Uint8Array, length: number): Bitfield | undefined {
    const field = new Bitfield(length)
    if (bytes.length !== field.bytes.length) return undefined
    const spare = field.bytes.length * 8 - length
    if (spare > 0 && (bytes[bytes.length - 1]! & ((1 << spare) - 1)) !== 0) return undefined
    field.bytes.set(bytes)
    let count = 0
    for (const byte of field.bytes) count += popcount(byte)
    field.#count = count
    return field
  }

  /** A set holding every piece. */
  static full(length: number): Bitfield {
    const field = new Bitfield(length)
    for (let i = 0; i < length; i++) field.set(i)
    return field
  }

  /** How many pieces are in the set. */
  get count(): number {
    return this.#count
  }

  has(index: number): boolean {
    return ((this.bytes[index >> 3] ?? 0) & (0x80 >> (index & 7))) !== 0
  }

  /** Adds `index`; returns false when it was already there. */
  set(index: number): boolean {
    if (index < 0 || index >= this.length || this.has(index)) return false
    this.bytes[index >> 3]! |= 0x80 >> (index & 7)
    this.#count++
    return true
  }

  /** Removes `index`; returns false when it was not there. */
  clear(index: number): boolean {
    if (!this.has(index)) return false
    this.bytes[index >> 3]! &= ~(0x80 >> (index & 7))
    this.#count--
    return true
  }

  /** Every piece index in the set, ascending. */
  *[Symbol.iterator](): IterableIterator<number> {
    for (let byteIndex = 0; byteIndex < this.bytes.length; byteIndex++) {
      const byte = this.bytes[byteIndex]!
      if (byte === 0) continue
      for (let bit = 0; bit < 8; bit++) if (byte & (0x80 >> bit)) yield byteIndex * 8 + bit
    }
  }
}

function popcount(byte: number): number {
  let n = byte - ((byte >> 1) & 0x55)
  n = (n & 0x33) + ((n >> 2) & 0x33)
  return (n + (n >> 4)) & 0x0f
}
