import { Duplex } from 'node:stream'
import type { StreamCipher } from './rc4.js'

/**
 * The connection after the handshake: bytes already received (`initial`, plaintext) come out first, then what
 * `raw` delivers, decrypted when `decrypt` is given; writes are encrypted with `encrypt` when given. Backpressure
 * passes through both ways; destroying either side destroys the other.
 */
export class MseStream extends Duplex {
  readonly #raw: Duplex
  readonly #encrypt: StreamCipher | undefined
  readonly #decrypt: StreamCipher | undefined
  #rawEnded = false

  constructor(raw: Duplex, ciphers: { encrypt?: StreamCipher; decrypt?: StreamCipher }, initial: Buffer) {
    super({ allowHalfOpen: true, highWaterMark: 64 * 1024 })
    this.#raw = raw
    this.#encrypt = ciphers.encrypt
    this.#decrypt = ciphers.decrypt
    if (initial.length > 0) this.push(initial)
    raw.on('data', (chunk: Buffer) => {
      if (!this.push(this.#decrypt === undefined ? chunk : this.#decrypt.update(chunk))) raw.pause()
    })
    raw.on('end', () => {
      this.#rawEnded = true
      this.push(null)
    })
    raw.on('error', (err: Error) => this.destroy(err))
    raw.on('close', () => {
      if (!this.#rawEnded && !this.destroyed) this.destroy()
    })
    // The handshake paused the raw stream; adding a 'data' listener alone does not restart a paused stream.
    raw.resume()
  }

  /** The connection underneath (a socket or any Duplex). */
  get raw(): Duplex {
    return this.#raw
  }

  override _read(): void {
    this.#raw.resume()
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    const out = this.#encrypt === undefined ? chunk : this.#encrypt.update(chunk)
    if (this.#raw.write(out)) callback()
    else this.#raw.once('drain', () => callback())
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (err?: Error | null) => void,
  ): void {
    this.#raw.cork()
    let ok = true
    for (const { chunk } of chunks)
      ok = this.#raw.write(this.#encrypt === undefined ? chunk : this.#encrypt.update(chunk))
    this.#raw.uncork()
    if (ok) callback()
    else this.#raw.once('drain', () => callback())
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#raw.end(() => callback())
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.#raw.destroyed) this.#raw.destroy(err ?? undefined)
    callback(err)
  }
}
