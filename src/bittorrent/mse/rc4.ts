import { createCipheriv } from 'node:crypto'
import { endianness } from 'node:os'

const LITTLE_ENDIAN = endianness() === 'LE'

/** A stream cipher state: XORs its keystream into bytes, continuing where the last call stopped. */
export interface StreamCipher {
  /** Returns `input` XORed with the next `input.length` keystream bytes (a new buffer; `input` is untouched). */
  update(input: Uint8Array): Buffer
}

/**
 * RC4 in TypeScript, for Node builds whose OpenSSL has no RC4 (OpenSSL 3 without the legacy provider).
 *
 * @example
 * ```ts
 * const rc4 = new Rc4(key)
 * rc4.discard(1024)
 * const cipherText = rc4.update(plainText)
 * ```
 */
export class Rc4 implements StreamCipher {
  readonly #s = new Uint8Array(256)
  #i = 0
  #j = 0

  constructor(key: Uint8Array) {
    if (key.length === 0 || key.length > 256) throw new RangeError('RC4 keys are 1 to 256 bytes')
    const s = this.#s
    for (let i = 0; i < 256; i++) s[i] = i
    let j = 0
    for (let i = 0; i < 256; i++) {
      const si = s[i] as number
      j = (j + si + (key[i % key.length] as number)) & 255
      s[i] = s[j] as number
      s[j] = si
    }
  }

  /** XORs the keystream into `input`, writing to `output` (which may be `input` itself). */
  process(input: Uint8Array, output: Uint8Array = input): void {
    const n = input.length
    if (output.length < n) throw new RangeError('RC4 output is shorter than its input')
    const misalignment = input.byteOffset & 3
    if (!LITTLE_ENDIAN || n < 64 || misalignment !== (output.byteOffset & 3)) {
      this.#bytes(input, output, 0, n)
      return
    }
    // Four keystream bytes at a time through 32-bit views: a third fewer memory operations per byte.
    const head = (4 - misalignment) & 3
    this.#bytes(input, output, 0, head)
    const words = (n - head) >>> 2
    this.#words(
      new Uint32Array(input.buffer, input.byteOffset + head, words),
      new Uint32Array(output.buffer, output.byteOffset + head, words),
    )
    this.#bytes(input, output, head + words * 4, n)
  }

  update(input: Uint8Array): Buffer {
    // Allocated with the input's alignment so both take the 32-bit path.
    const n = input.length
    const room = Buffer.allocUnsafe(n + 3)
    const shift = ((input.byteOffset & 3) - (room.byteOffset & 3) + 4) & 3
    const out = room.subarray(shift, shift + n)
    this.process(input, out)
    return out
  }

  #bytes(input: Uint8Array, output: Uint8Array, from: number, to: number): void {
    const s = this.#s
    let i = this.#i
    let j = this.#j
    for (let k = from; k < to; k++) {
      i = (i + 1) & 255
      const si = s[i] as number
      j = (j + si) & 255
      const sj = s[j] as number
      s[i] = sj
      s[j] = si
      output[k] = (input[k] as number) ^ (s[(si + sj) & 255] as number)
    }
    this.#i = i
    this.#j = j
  }

  #words(input: Uint32Array, output: Uint32Array): void {
    const s = this.#s
    let i = this.#i
    let j = this.#j
    const n = input.length
    for (let k = 0; k < n; k++) {
      i = (i + 1) & 255
      let si = s[i] as number
      j = (j + si) & 255
      let sj = s[j] as number
      s[i] = sj
      s[j] = si
      let w = s[(si + sj) & 255] as number
      i = (i + 1) & 255
      si = s[i] as number
      j = (j + si) & 255
      sj = s[j] as number
      s[i] = sj
      s[j] = si
      w |= (s[(si + sj) & 255] as number) << 8
      i = (i + 1) & 255
      si = s[i] as number
      j = (j + si) & 255
      sj = s[j] as number
      s[i] = sj
      s[j] = si
      w |= (s[(si + sj) & 255] as number) << 16
      i = (i + 1) & 255
      si = s[i] as number
      j = (j + si) & 255
      sj = s[j] as number
      s[i] = sj
      s[j] = si
      w |= (s[(si + sj) & 255] as number) << 24
      output[k] = (input[k] as number) ^ w
    }
    this.#i = i
    this.#j = j
  }

  /** Skips `n` keystream bytes. */
  discard(n: number): void {
    const s = this.#s
    let i = this.#i
    let j = this.#j
    for (let k = 0; k < n; k++) {
      i = (i + 1) & 255
      const si = s[i] as number
      j = (j + si) & 255
      s[i] = s[j] as number
      s[j] = si
    }
    this.#i = i
    this.#j = j
  }
}

let nativeProbe: boolean | undefined

/**
 * Whether Node's OpenSSL can do RC4 (OpenSSL 1.1, or OpenSSL 3 with the legacy provider loaded, for example by
 * `node --openssl-legacy-provider`). `crypto.getCiphers()` may list `rc4` even when creating it fails, so this
 * tries it.
 */
export function nativeRc4Available(): boolean {
  if (nativeProbe === undefined) {
    try {
      createCipheriv('rc4', Buffer.alloc(16), null).update(Buffer.alloc(1))
      nativeProbe = true
    } catch {
      nativeProbe = false
    }
  }
  return nativeProbe
}

/**
 * An RC4 state with the first `discardBytes` keystream bytes dropped: OpenSSL's when available (`native`
 * `'auto'`, the default), else {@link Rc4}. `native: false` forces the TypeScript one; `true` requires OpenSSL's.
 */
export function createRc4(
  key: Uint8Array,
  opts: { discardBytes?: number; native?: boolean | 'auto' } = {},
): StreamCipher {
  const discard = opts.discardBytes ?? 0
  const native = opts.native ?? 'auto'
  if (native === true || (native === 'auto' && nativeRc4Available())) {
    const cipher = createCipheriv('rc4', key, null)
    if (discard > 0) cipher.update(Buffer.alloc(discard))
    return { update: (input) => cipher.update(input) }
  }
  const rc4 = new Rc4(key)
  rc4.discard(discard)
  return rc4
}
