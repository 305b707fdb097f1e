import { createHash, randomBytes } from 'node:crypto'
import type { Clock } from '../../common/index.js'

/** How often the token secret changes; a token stays valid for two periods (BEP 5: 10 minutes in all). */
export const TOKEN_ROTATE_MS = 5 * 60 * 1000

/**
 * Write tokens for `announce_peer` (BEP 5): a hash of the requester's IP with a secret that rotates every five
 * minutes; tokens made with the current or the previous secret are accepted.
 */
export class TokenIssuer {
  readonly #clock: Clock
  readonly #rotateMs: number
  #current = randomBytes(16)
  #previous = randomBytes(16)
  #rotatedAt: number

  constructor(clock: Clock, rotateMs = TOKEN_ROTATE_MS) {
    this.#clock = clock
    this.#rotateMs = rotateMs
    this.#rotatedAt = clock.monotonic()
  }

  /** The token for a requester's IP. */
  issue(host: string): Buffer {
    this.#rotate()
    return tokenFor(this.#current, host)
  }

  /** Whether `token` was issued to `host` within the validity period. */
  check(token: Uint8Array, host: string): boolean {
    this.#rotate()
    const given = Buffer.from(token)
    return given.equals(tokenFor(this.#current, host)) || given.equals(tokenFor(this.#previous, host))
  }

  #rotate(): void {
    const now = this.#clock.monotonic()
    const periods = Math.floor((now - this.#rotatedAt) / this.#rotateMs)
    if (periods <= 0) return
    this.#previous = periods === 1 ? this.#current : randomBytes(16)
    this.#current = randomBytes(16)
    this.#rotatedAt += periods * this.#rotateMs
  }
}

function tokenFor(secret: Buffer, host: string): Buffer {
  return createHash('sha1').update(secret).update(host).digest().subarray(0, 8)
}
