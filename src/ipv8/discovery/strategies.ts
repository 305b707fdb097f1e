import type { SocketAddress } from '../../net/index.js'
import { addressKey } from '../community/addresses.js'
import type { Community } from '../community/community.js'
import type { Peer } from '../community/peer.js'

/** A way of walking the network; the walker calls {@link WalkStrategy.takeStep} every tick. */
export interface WalkStrategy {
  /** The strategy steps only while the overlay has fewer peers than this; -1 for always. */
  readonly targetPeers: number
  takeStep(): void
}

/** Options of {@link RandomWalk}. */
export interface RandomWalkOptions {
  targetPeers?: number
  /** An address that has not answered in this time is forgotten (default 3 s). */
  timeoutMs?: number
  /** Most unanswered requests at a time (default 5); while that many are out, the walk waits. 0: no limit. */
  windowSize?: number
  /** Chance to ask a known peer for a fresh introduction instead of walking to an introduced address. */
  resetChance?: number
}

/**
 * py-ipv8's RandomWalk: walks to random introduced addresses, at most `windowSize` unanswered at a time, and
 * now and then asks a verified peer (or a bootstrapper) for a new introduction. Addresses that do not answer
 * within the timeout are forgotten, and so are the peers at them.
 *
 * @example
 * ```ts
 * new Community(deps, id, { strategies: (c) => [new RandomWalk(c, { targetPeers: 20 })] })
 * ```
 */
export class RandomWalk implements WalkStrategy {
  readonly targetPeers: number
  readonly #overlay: Community
  readonly #timeoutMs: number
  readonly #windowSize: number
  readonly #resetChance: number
  readonly #pending = new Map<string, { address: SocketAddress; sentMs: number }>()

  constructor(overlay: Community, opts: RandomWalkOptions = {}) {
    this.#overlay = overlay
    this.targetPeers = opts.targetPeers ?? 20
    this.#timeoutMs = opts.timeoutMs ?? 3_000
    this.#windowSize = opts.windowSize ?? 5
    this.#resetChance = opts.resetChance ?? 50 / 255
  }

  takeStep(): void {
    const overlay = this.#overlay
    const now = overlay.clock.now()
    for (const [key, entry] of this.#pending) {
      if (overlay.network.getPeerByAddress(entry.address) !== undefined) this.#pending.delete(key)
      else if (now - entry.sentMs >= this.#timeoutMs) {
        this.#pending.delete(key)
        overlay.forgetAddress(entry.address)
      }
    }
    // a full window of unanswered requests: wait for answers or timeouts before anything else
    if (this.#windowSize > 0 && this.#pending.size >= this.#windowSize) return
    const available = overlay.network.walkableAddresses.filter(
      (w) => !this.#pending.has(addressKey(w.address)),
    )
    if (available.length > 0 && overlay.random() >= this.#resetChance) {
      const pick = available[Math.floor(overlay.random() * available.length)]
      if (pick === undefined) return
      this.#pending.set(addressKey(pick.address), { address: pick.address, sentMs: now })
      overlay.walkTo(pick.address)
    } else {
      overlay.getNewIntroduction()
    }
  }
}

/** Options of {@link EdgeWalk}. */
export interface EdgeWalkOptions {
  targetPeers?: number
  /** Hops of one edge, root included (default 4). */
  edgeLength?: number
  /** Direct neighbours to collect first (default 6). */
  neighborhoodSize?: number
  /** An edge that does not grow for this long is reset (default 3 s). */
  edgeTimeoutMs?: number
}

interface Edge {
  /** Addresses of the chain, root first. */
  chain: SocketAddress[]
  /** When the last hop was asked (clock ms). */
  sentMs: number
}

/**
 * py-ipv8's EdgeWalk: first collects a neighbourhood of direct peers, then from each root grows a chain by
 * walking to the peer the previous hop introduced, up to `edgeLength` hops, and then starts over from home.
 * It reaches deeper into the network than a random walk, which helps against eclipse by the first contacts.
 *
 * @example
 * ```ts
 * new Community(deps, id, { strategies: (c) => [new EdgeWalk(c, { targetPeers: 20 })] })
 * ```
 */
export class EdgeWalk implements WalkStrategy {
  readonly targetPeers: number
  readonly #overlay: Community
  readonly #edgeLength: number
  readonly #neighborhoodSize: number
  readonly #timeoutMs: number
  readonly #neighborhood: Peer[] = []
  readonly #edges = new Map<string, Edge>()
  /** Introductions seen: the responder's address key to the address it introduced. */
  readonly #introductions = new Map<string, SocketAddress>()

  constructor(overlay: Community, opts: EdgeWalkOptions = {}) {
    this.#overlay = overlay
    this.targetPeers = opts.targetPeers ?? 20
    this.#edgeLength = opts.edgeLength ?? 4
    this.#neighborhoodSize = opts.neighborhoodSize ?? 6
    this.#timeoutMs = opts.edgeTimeoutMs ?? 3_000
    overlay.events.on('introduction-response', ({ peer, introduced }) => {
      if (introduced !== undefined) this.#introductions.set(addressKey(peer.address), introduced)
    })
  }

  /** Completed edges so far. */
  completedEdges = 0

  takeStep(): void {
    const overlay = this.#overlay
    const now = overlay.clock.now()
    for (let i = this.#neighborhood.length - 1; i >= 0; i--) {
      const root = this.#neighborhood[i]
      if (root !== undefined && !overlay.network.has(root)) {
        this.#neighborhood.splice(i, 1)
        this.#edges.delete(root.midHex)
      }
    }
    if (this.#neighborhood.length < this.#neighborhoodSize) {
      for (const peer of overlay.network.peers) {
        if (this.#neighborhood.length >= this.#neighborhoodSize) break
        if (!this.#neighborhood.includes(peer)) this.#neighborhood.push(peer)
      }
      if (this.#neighborhood.length < this.#neighborhoodSize) {
        const walkable = overlay.network.walkableAddresses
        const pick = walkable[Math.floor(overlay.random() * walkable.length)]
        if (pick !== undefined && overlay.random() >= 0.5) overlay.walkTo(pick.address)
        else overlay.getNewIntroduction()
        return
      }
    }
    for (const root of this.#neighborhood) {
      const edge = this.#edges.get(root.midHex)
      if (edge === undefined) {
        this.#edges.set(root.midHex, { chain: [root.address], sentMs: now })
        this.#introductions.delete(addressKey(root.address))
        overlay.walkTo(root.address)
        continue
      }
      const last = edge.chain.at(-1) as SocketAddress
      const next = this.#introductions.get(addressKey(last))
      if (next !== undefined) {
        this.#introductions.delete(addressKey(last))
        if (edge.chain.length >= this.#edgeLength) {
          // edge complete: teleport home and grow a fresh one from the same root
          this.completedEdges += 1
          this.#edges.delete(root.midHex)
          continue
        }
        edge.chain.push(next)
        edge.sentMs = now
        overlay.walkTo(next)
      } else if (now - edge.sentMs >= this.#timeoutMs) {
        this.#edges.delete(root.midHex)
      }
    }
  }
}
