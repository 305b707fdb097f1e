import type { SocketAddress } from '../../net/index.js'

/** Options of a {@link PeerStore}. */
export interface PeerStoreOptions {
  /** How long an announced peer is kept (default 30 minutes, as libtorrent). */
  ttlMs?: number
  /** Peers kept per info hash (default 500). */
  maxPeersPerTorrent?: number
  /** Info hashes kept (default 5000). */
  maxTorrents?: number
}

/**
 * The peers announced to us with `announce_peer`, by info hash, each expiring after a while. Bounded in torrents
 * and peers per torrent so a flood of announces cannot exhaust memory.
 */
export class PeerStore {
  readonly #ttlMs: number
  readonly #maxPeers: number
  readonly #maxTorrents: number
  readonly #torrents = new Map<string, Map<string, { address: SocketAddress; expiresAt: number }>>()

  constructor(options: PeerStoreOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 30 * 60 * 1000
    this.#maxPeers = options.maxPeersPerTorrent ?? 500
    this.#maxTorrents = options.maxTorrents ?? 5000
  }

  /** Number of info hashes with peers. */
  get torrentCount(): number {
    return this.#torrents.size
  }

  /** Stores or refreshes a peer; returns false when the store is full. */
  add(infoHash: Uint8Array, address: SocketAddress, nowMs: number): boolean {
    const key = Buffer.from(infoHash).toString('hex')
    let peers = this.#torrents.get(key)
    if (peers === undefined) {
      if (this.#torrents.size >= this.#maxTorrents) this.expire(nowMs)
      if (this.#torrents.size >= this.#maxTorrents) return false
      peers = new Map()
      this.#torrents.set(key, peers)
    }
    const peerKey = `${address.host}|${address.port}`
    if (!peers.has(peerKey) && peers.size >= this.#maxPeers) {
      // Make room by dropping the peer that expires first.
      let oldestKey: string | undefined
      let oldest = Number.POSITIVE_INFINITY
      for (const [k, v] of peers) {
        if (v.expiresAt < oldest) {
          oldest = v.expiresAt
          oldestKey = k
        }
      }
      if (oldestKey !== undefined) peers.delete(oldestKey)
    }
    peers.set(peerKey, {
      address: { host: address.host, port: address.port },
      expiresAt: nowMs + this.#ttlMs,
    })
    return true
  }

  /** Up to `max` live peers of an info hash, in random order. */
  get(infoHash: Uint8Array, nowMs: number, max = 50): SocketAddress[] {
    const peers = this.#torrents.get(Buffer.from(infoHash).toString('hex'))
    if (peers === undefined) return []
    const live = [...peers.values()].filter((p) => p.expiresAt > nowMs).map((p) => p.address)
    for (let i = live.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1))
      ;[live[i], live[j]] = [live[j]!, live[i]!]
    }
    return live.slice(0, max)
  }

  /** Drops expired peers and empty torrents. */
  expire(nowMs: number): void {
    for (const [key, peers] of this.#torrents) {
      for (const [peerKey, peer] of peers) if (peer.expiresAt <= nowMs) peers.delete(peerKey)
      if (peers.size === 0) this.#torrents.delete(key)
    }
  }
}
