import type { SocketAddress } from '../../net/index.js'
import type { PublicKey } from '../keys/index.js'

/**
 * A verified member of an overlay: someone whose signed message we checked. The address is where its last
 * verified message came from.
 */
export class Peer {
  readonly publicKey: PublicKey
  /** SHA-1 of the public key bin (20 bytes). */
  readonly mid: Buffer
  /** The mid in hex, for map keys and logs. */
  readonly midHex: string
  address: SocketAddress
  /** The LAN address the peer reported in its introduction-request, if any. */
  lanAddress: SocketAddress | undefined
  /** When the peer last sent us a verified message (clock ms). */
  lastSeenMs: number
  /** When we last probed it because it was quiet (clock ms). */
  lastProbedMs = 0
  /** Whether it understands the new-style (any address family) introduction messages. */
  newStyle = false
  /** The highest global time it has claimed. */
  globalTime = 0n

  constructor(publicKey: PublicKey, address: SocketAddress, nowMs: number) {
    this.publicKey = publicKey
    this.mid = publicKey.mid
    this.midHex = publicKey.midHex
    this.address = address
    this.lastSeenMs = nowMs
  }
}
