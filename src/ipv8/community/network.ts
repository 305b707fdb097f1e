import type { SocketAddress } from '../../net/index.js'
import { addressKey, sameAddress } from './addresses.js'
import type { Peer } from './peer.js'

/** An address we were told about but have not verified yet. */
export interface WalkableAddress {
  readonly address: SocketAddress
  /** The mid (hex) of the peer that introduced it. */
  readonly introducedBy: string | undefined
  readonly newStyle: boolean
  readonly discoveredAtMs: number
}

/** Caps on the table sizes, so a peer cannot flood us with introductions. */
const MAX_WALKABLE = 500

/**
 * The peer table of one overlay: verified peers (by mid and by address), addresses that were introduced to us
 * and may be walked to, a blacklist (bootstrap trackers), and the community ids each peer announced.
 */
export class Network {
  readonly #peers = new Map<string, Peer>()
  readonly #byAddress = new Map<string, Peer>()
  readonly #walkable = new Map<string, WalkableAddress>()
  readonly #blacklist = new Set<string>()
  readonly #services = new Map<string, Set<string>>()

  /** Every verified peer. */
  get peers(): Peer[] {
    return [...this.#peers.values()]
  }

  get size(): number {
    return this.#peers.size
  }

  /** The peer with this mid (hex or bytes). */
  getPeer(mid: string | Uint8Array): Peer | undefined {
    return this.#peers.get(typeof mid === 'string' ? mid : Buffer.from(mid).toString('hex'))
  }

  /** The verified peer at this address. */
  getPeerByAddress(address: SocketAddress): Peer | undefined {
    return this.#byAddress.get(addressKey(address))
  }

  has(peer: Peer): boolean {
    return this.#peers.has(peer.midHex)
  }

  /**
   * Adds a verified peer, or refreshes the known one with the same mid (its address moves to `peer.address`).
   * Returns the peer kept in the table, or `undefined` when the address is blacklisted.
   */
  addVerifiedPeer(peer: Peer): { peer: Peer; added: boolean } | undefined {
    const key = addressKey(peer.address)
    if (this.#blacklist.has(key)) return undefined
    this.#walkable.delete(key)
    const known = this.#peers.get(peer.midHex)
    if (known !== undefined) {
      if (!sameAddress(known.address, peer.address)) {
        this.#byAddress.delete(addressKey(known.address))
        known.address = peer.address
      }
      this.#byAddress.set(key, known)
      known.lastSeenMs = Math.max(known.lastSeenMs, peer.lastSeenMs)
      known.newStyle ||= peer.newStyle
      if (peer.lanAddress !== undefined) known.lanAddress = peer.lanAddress
      return { peer: known, added: false }
    }
    const previous = this.#byAddress.get(key)
    if (previous !== undefined) this.removePeer(previous)
    this.#peers.set(peer.midHex, peer)
    this.#byAddress.set(key, peer)
    return { peer, added: true }
  }

  /** Records an address introduced by `introducer` as walkable, unless it is known or blacklisted. */
  discoverAddress(
    introducer: Peer | undefined,
    address: SocketAddress,
    newStyle: boolean,
    nowMs: number,
  ): boolean {
    const key = addressKey(address)
    if (this.#blacklist.has(key) || this.#byAddress.has(key) || this.#walkable.has(key)) return false
    if (this.#walkable.size >= MAX_WALKABLE) {
      const oldest = this.#walkable.keys().next()
      if (oldest.done !== true) this.#walkable.delete(oldest.value)
    }
    this.#walkable.set(key, { address, introducedBy: introducer?.midHex, newStyle, discoveredAtMs: nowMs })
    return true
  }

  /** Introduced addresses that are not verified peers yet. */
  get walkableAddresses(): WalkableAddress[] {
    return [...this.#walkable.values()]
  }

  /** The walkable entry of an address. */
  walkable(address: SocketAddress): WalkableAddress | undefined {
    return this.#walkable.get(addressKey(address))
  }

  /** Forgets an address: its walkable entry and the peer verified there. Returns the removed peer. */
  removeByAddress(address: SocketAddress): Peer | undefined {
    const key = addressKey(address)
    this.#walkable.delete(key)
    const peer = this.#byAddress.get(key)
    if (peer !== undefined) this.removePeer(peer)
    return peer
  }

  /** Removes a verified peer. */
  removePeer(peer: Peer): boolean {
    const known = this.#peers.get(peer.midHex)
    if (known === undefined) return false
    this.#peers.delete(peer.midHex)
    this.#byAddress.delete(addressKey(known.address))
    this.#services.delete(peer.midHex)
    return true
  }

  /** Never adds a peer at this address (bootstrap trackers). */
  blacklist(address: SocketAddress): void {
    const key = addressKey(address)
    this.#blacklist.add(key)
    this.#walkable.delete(key)
  }

  isBlacklisted(address: SocketAddress): boolean {
    return this.#blacklist.has(addressKey(address))
  }

  /** Records the community ids (hex) a peer takes part in. */
  discoverServices(peer: Peer, communityIds: Iterable<string>): void {
    if (!this.#peers.has(peer.midHex)) return
    let set = this.#services.get(peer.midHex)
    if (set === undefined) {
      set = new Set()
      this.#services.set(peer.midHex, set)
    }
    for (const id of communityIds) set.add(id)
  }

  /** Community ids (hex) a peer announced. */
  servicesOf(peer: Peer): string[] {
    return [...(this.#services.get(peer.midHex) ?? [])]
  }

  /** Verified peers that announced a community id (hex). */
  peersForService(communityId: string): Peer[] {
    return this.peers.filter((peer) => this.#services.get(peer.midHex)?.has(communityId) === true)
  }

  /** Forgets everything but the blacklist. */
  clear(): void {
    this.#peers.clear()
    this.#byAddress.clear()
    this.#walkable.clear()
    this.#services.clear()
  }
}
