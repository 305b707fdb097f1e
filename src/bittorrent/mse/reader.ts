import type { Duplex } from 'node:stream'
import { MseError } from './types.js'

// A legitimate peer sends at most ~67 KiB before it waits for our answer (96 + 512 + 40 + 528 + 65535 bytes of
// IA); past this much unread data the socket is paused rather than buffered.
const MAX_BUFFERED_BYTES = 128 * 1024

/** Collects handshake bytes from a raw connection until the handshake hands the connection on. */
export class HandshakeReader {
  readonly #raw: Duplex
  #buf: Buffer
  #failure: MseError | undefined
  #wake: (() => void) | undefined
  readonly #onData: (chunk: Buffer) => void
  readonly #onEnd: () => void
  readonly #onError: (err: Error) => void

  constructor(raw: Duplex, signal: AbortSignal, reasonOnAbort: () => MseError, prefix?: Buffer) {
    this.#raw = raw
    this.#buf = prefix ?? Buffer.alloc(0)
    this.#onData = (chunk: Buffer): void => {
      // Always a copy: a chunk of a pooled socket read is not ours to keep.
      this.#buf = Buffer.concat([this.#buf, chunk])
      if (this.#buf.length > MAX_BUFFERED_BYTES) raw.pause()
      this.#notify()
    }
    this.#onEnd = (): void => this.fail(new MseError('CLOSED', { received: this.#buf.length }))
    this.#onError = (err: Error): void => this.fail(new MseError('CLOSED', { cause: err }))
    raw.on('data', this.#onData)
    raw.on('end', this.#onEnd)
    raw.on('close', this.#onEnd)
    raw.on('error', this.#onError)
    if (raw.destroyed) this.fail(new MseError('CLOSED'))
    if (signal.aborted) this.fail(reasonOnAbort())
    else signal.addEventListener('abort', () => this.fail(reasonOnAbort()), { once: true })
    raw.resume()
  }

  /** Bytes received and not consumed yet. */
  get buffered(): number {
    return this.#buf.length
  }

  /** The next `n` bytes, consumed. */
  async read(n: number): Promise<Buffer> {
    await this.#waitFor(n)
    const out = this.#buf.subarray(0, n)
    this.#buf = this.#buf.subarray(n)
    return out
  }

  /** The next `n` bytes, left in place. */
  async peek(n: number): Promise<Buffer> {
    await this.#waitFor(n)
    return this.#buf.subarray(0, n)
  }

  /** Skips at most `maxSkip` bytes up to `pattern` and consumes the pattern too. */
  async syncTo(pattern: Buffer, maxSkip: number): Promise<number> {
    for (;;) {
      const at = this.#buf.subarray(0, maxSkip + pattern.length).indexOf(pattern)
      if (at >= 0) {
        this.#buf = this.#buf.subarray(at + pattern.length)
        return at
      }
      if (this.#buf.length >= maxSkip + pattern.length) throw new MseError('SYNC_NOT_FOUND', { maxSkip })
      await this.#waitFor(this.#buf.length + 1)
    }
  }

  /** Stops reading: pauses the connection and returns the bytes received but not consumed. */
  detach(): Buffer {
    this.#raw.pause()
    this.#raw.off('data', this.#onData)
    this.#raw.off('end', this.#onEnd)
    this.#raw.off('close', this.#onEnd)
    this.#raw.off('error', this.#onError)
    const rest = this.#buf
    this.#buf = Buffer.alloc(0)
    return rest
  }

  /** Fails every wait with `err` (the first failure wins). */
  fail(err: MseError): void {
    this.#failure ??= err
    this.#notify()
  }

  async #waitFor(n: number): Promise<void> {
    while (this.#buf.length < n) {
      if (this.#failure !== undefined) throw this.#failure
      if (this.#raw.isPaused()) this.#raw.resume()
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
    }
  }

  #notify(): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }
}
