import type { SocketAddress } from '../../net/index.js'
import { ipv4OrNone } from '../community/addresses.js'
import { Community, type CommunityDeps, type CommunitySettings } from '../community/community.js'
import type { Peer } from '../community/peer.js'
import { PingPayload, PongPayload, SimilarityRequestPayload, SimilarityResponsePayload } from './payloads.js'
import { RandomWalk, type WalkStrategy } from './strategies.js'

/** The DiscoveryCommunity id. */
export const DISCOVERY_COMMUNITY_ID = Buffer.from('7e313685c1912a141279f8248fc8db5899c5df5a', 'hex')

/** Settings of a {@link DiscoveryCommunity}. */
export interface DiscoverySettings extends CommunitySettings {
  /** The community ids this node takes part in (ours is always included). */
  services?: () => Iterable<Uint8Array>
  /** How long a ping or similarity request waits for its answer (default 5 s). */
  requestTimeoutMs?: number
}

const NO_BITS = [false, false, false, false, false, false, false, false]

/**
 * py-ipv8's DiscoveryCommunity: besides walking, it tells every peer it meets which communities this node runs
 * (similarity request/response), so peers of other overlays can be found, and it keeps its peers alive with
 * ping/pong, dropping those that stop answering.
 *
 * @example
 * ```ts
 * const discovery = new DiscoveryCommunity({ endpoint, key }, { services: () => overlays.map((o) => o.communityId) })
 * await discovery.start()
 * ```
 */
export class DiscoveryCommunity extends Community {
  readonly #services: () => Iterable<Uint8Array>
  readonly #timeoutMs: number

  constructor(deps: CommunityDeps, settings: DiscoverySettings = {}) {
    super(deps, DISCOVERY_COMMUNITY_ID, {
      // py-ipv8's defaults: a random walk to 20 peers, and a similarity request to a random peer every second
      strategies: (c) => [
        new RandomWalk(c, { targetPeers: 20 }),
        new PeriodicSimilarity(c as DiscoveryCommunity),
      ],
      ...settings,
    })
    this.acceptsIntroduceTo = true
    this.#services = settings.services ?? (() => [])
    this.#timeoutMs = settings.requestTimeoutMs ?? 5_000
    this.addSignedHandler(SimilarityRequestPayload, (peer, payload, ctx) =>
      this.#onSimilarityRequest(peer, payload, ctx.source),
    )
    this.addSignedHandler(SimilarityResponsePayload, (peer, payload) =>
      this.#onSimilarityResponse(peer, payload),
    )
    this.addUnsignedHandler(PingPayload, (source, payload) =>
      this.send(source, this.createUnsigned(PongPayload, { identifier: payload.identifier })),
    )
    this.addUnsignedHandler(PongPayload, (source, payload) => this.#onPong(source, payload.identifier))
  }

  /** Our community ids: the preference list we announce (this community first). */
  myPreferences(): Buffer[] {
    const out = [this.communityId]
    for (const id of this.#services()) {
      const buf = Buffer.from(id)
      if (buf.length === 20 && !out.some((known) => known.equals(buf))) out.push(buf)
    }
    return out
  }

  /** Sends a similarity-request to a peer (done after every introduction-response). */
  sendSimilarityRequest(address: SocketAddress): void {
    const globalTime = this.claimGlobalTime()
    const identifier = Number(globalTime % 65536n)
    if (this.requestCache.has('similarity', identifier)) return
    this.requestCache.add(
      'similarity',
      { onTimeout: () => {} },
      { number: identifier, timeoutMs: this.#timeoutMs },
    )
    const packet = this.createSigned(
      SimilarityRequestPayload,
      {
        identifier,
        lanAddress: ipv4OrNone(this.myLanAddress),
        wanAddress: ipv4OrNone(this.myWanAddress),
        bits: NO_BITS,
        preferenceList: Buffer.concat(this.myPreferences()),
      },
      { globalTime },
    )
    this.send(address, packet)
  }

  /** Pings a quiet peer; the pong refreshes it, silence lets the peer check drop it. */
  protected override probe(peer: Peer): void {
    const identifier = this.requestCache.add('ping', { onTimeout: () => {} }, { timeoutMs: this.#timeoutMs })
    this.send(peer.address, this.createUnsigned(PingPayload, { identifier }))
  }

  protected override introductionResponseCallback(peer: Peer): void {
    this.sendSimilarityRequest(peer.address)
  }

  #admits(peer: Peer): Peer | undefined {
    const known = this.network.getPeer(peer.midHex)
    if (known !== undefined) return known
    if (this.network.size >= this.maxPeers) return undefined
    const added = this.network.addVerifiedPeer(peer)
    if (added?.added === true) this.events.emit('peer-added', { peer: added.peer })
    return added?.peer
  }

  #onSimilarityRequest(requester: Peer, payload: SimilarityRequestPayload, source: SocketAddress): void {
    if (payload.preferenceList.length % 20 !== 0) return
    requester.address = source
    const peer = this.#admits(requester)
    if (peer === undefined) return
    peer.lastSeenMs = this.clock.now()
    this.network.discoverServices(peer, splitIds(payload.preferenceList))
    const response = this.createSigned(SimilarityResponsePayload, {
      identifier: payload.identifier,
      preferenceList: Buffer.concat(this.myPreferences()),
      tbOverlap: Buffer.alloc(0),
    })
    this.send(source, response)
  }

  #onSimilarityResponse(responder: Peer, payload: SimilarityResponsePayload): void {
    if (this.requestCache.pop('similarity', payload.identifier) === undefined) return
    const peer = this.#admits(responder)
    if (peer === undefined) return
    peer.lastSeenMs = this.clock.now()
    this.network.discoverServices(peer, splitIds(payload.preferenceList))
  }

  #onPong(source: SocketAddress, identifier: number): void {
    if (this.requestCache.pop('ping', identifier) === undefined) return
    const peer = this.network.getPeerByAddress(source)
    if (peer !== undefined) peer.lastSeenMs = this.clock.now()
  }
}

function splitIds(list: Buffer): string[] {
  const out: string[] = []
  for (let at = 0; at + 20 <= list.length; at += 20) out.push(list.subarray(at, at + 20).toString('hex'))
  return out
}

/** Options of {@link PeriodicSimilarity}. */
export interface PeriodicSimilarityOptions {
  /** Least time between two requests (default 1 s). */
  intervalMs?: number
}

/**
 * py-ipv8's PeriodicSimilarity: at most once per interval, sends a similarity-request to a random verified peer,
 * so community lists stay fresh, also those of peers that only ever walked to us. It runs whatever the peer count.
 *
 * @example
 * ```ts
 * new DiscoveryCommunity(deps, { strategies: (c) => [new PeriodicSimilarity(c as DiscoveryCommunity)] })
 * ```
 */
export class PeriodicSimilarity implements WalkStrategy {
  readonly targetPeers = -1
  readonly #overlay: DiscoveryCommunity
  readonly #intervalMs: number
  #lastMs = Number.NEGATIVE_INFINITY

  constructor(overlay: DiscoveryCommunity, opts: PeriodicSimilarityOptions = {}) {
    this.#overlay = overlay
    this.#intervalMs = opts.intervalMs ?? 1_000
  }

  takeStep(): void {
    const overlay = this.#overlay
    const now = overlay.clock.now()
    if (now - this.#lastMs < this.#intervalMs) return
    const peers = overlay.network.peers
    const peer = peers[Math.floor(overlay.random() * peers.length)]
    if (peer === undefined) return
    this.#lastMs = now
    overlay.sendSimilarityRequest(peer.address)
  }
}
