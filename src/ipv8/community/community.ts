import { isIPv6 } from 'node:net'
import { type Clock, logger, type Service, systemClock, TaskScope, TypedEmitter } from '../../common/index.js'
import type { DatagramTransport, SocketAddress } from '../../net/index.js'
import { RandomWalk, type WalkStrategy } from '../discovery/strategies.js'
import { type Ipv8Endpoint, type RateLimit, SourceRateLimiter } from '../endpoint/index.js'
import { Ipv8Error } from '../errors.js'
import { type PrivateKey, SignatureVerifier } from '../keys/index.js'
import {
  communityPrefix,
  type FrameOptions,
  ipv4Number,
  MSG_ID_OFFSET,
  NO_ADDRESS,
  type PayloadSchema,
  PREFIX_LENGTH,
  readSigned,
  readUnsigned,
  signedPacket,
  unsignedPacket,
  type VerifiedFrame,
  verifySigned,
} from '../serialization/index.js'
import { ipv4OrNone, isLanHost, isLoopback, isNoAddress, lanAddressOf, sameAddress } from './addresses.js'
import {
  AnnounceLimiter,
  type BootstrapOptions,
  type Bootstrapper,
  defaultBootstrappers,
  LanBroadcastBootstrapper,
  publicNetworkAllowed,
} from './bootstrap.js'
import { Network } from './network.js'
import {
  DEPRECATED_MESSAGE_IDS,
  type IntroductionRequestPayload as IntroductionRequest,
  IntroductionRequestPayload,
  IntroductionResponsePayload,
  NewIntroductionRequestPayload,
  NewIntroductionResponsePayload,
  NewPuncturePayload,
  NewPunctureRequestPayload,
  PuncturePayload,
  PunctureRequestPayload,
} from './payloads.js'
import { Peer } from './peer.js'
import { RequestCache } from './request-cache.js'

/** What a community needs from the node. */
export interface CommunityDeps {
  endpoint: Ipv8Endpoint
  key: PrivateKey
  clock?: Clock
  /** Random numbers in [0, 1); seed it in tests for replayable walks. */
  random?: () => number
  /**
   * The node's public-network choice, the default of `settings.bootstrap.publicNetwork` (which otherwise follows
   * `TRIBLER_NO_PUBLIC_NETWORK`).
   */
  publicNetwork?: boolean
  /** The node's explicit bootstrap addresses, the default of `settings.bootstrap.addresses`. */
  bootstrapAddresses?: readonly SocketAddress[]
  /** Where extra sockets (the LAN broadcast socket) come from; default real UDP. */
  transport?: DatagramTransport
}

/** Settings every community has. */
export interface CommunitySettings {
  /** Introduction requests are refused once this many peers are known (default 30). */
  maxPeers?: number
  /** Interval of the walker (default 500 ms). */
  walkIntervalMs?: number
  /** Walk strategies; default one {@link RandomWalk} with a target of 20 peers. */
  strategies?: (community: Community) => WalkStrategy[]
  /** Bootstrappers; default {@link defaultBootstrappers} of `bootstrap`. */
  bootstrappers?: Bootstrapper[]
  /** Options of the default bootstrappers. */
  bootstrap?: BootstrapOptions
  /** A peer silent for this long is probed (default 27.5 s). */
  peerInactiveMs?: number
  /** A peer silent for this long is dropped (default 57.5 s). */
  peerDropMs?: number
  /**
   * Signed messages accepted per source host before their signature is checked (default 1 000/s with a burst of
   * 2 000), so a flooding host cannot spend our CPU on verifications; `false` for no limit.
   */
  signedRateLimit?: RateLimit | false
  /**
   * Signed messages of one burst whose signatures are checked together (default 64). The first signed message
   * after a quiet moment is verified and handled at once; those that follow it before the event loop turns are
   * queued, verified as one batch (when the queue is full, when another kind of message arrives, or when the
   * loop turns) and then handled in arrival order. A bad signature found in a batch counts as
   * `dropped.badSignature` like any other, and as rejected at the endpoint, which hears of it then. After a batch
   * fails, the following bursts are verified one message at a time for a while (see {@link SignatureVerifier}).
   * 1 verifies each message as it arrives.
   */
  signatureBatch?: number
}

/** Where a message came from and how it was framed. */
export interface MessageContext {
  readonly source: SocketAddress
  readonly msgId: number
  /** The sender's global time; `undefined` for messages without one. */
  readonly globalTime: bigint | undefined
  /** The whole datagram. */
  readonly data: Buffer
}

/** Handler of a verified signed message. */
export type SignedHandler<T> = (peer: Peer, payload: T, ctx: MessageContext) => void
/** Handler of an unsigned message (its source is not authenticated). */
export type UnsignedHandler<T> = (source: SocketAddress, payload: T, ctx: MessageContext) => void
/** Handler of a raw datagram with its own framing (tunnel cells); returns false to count it as dropped. */
export type RawHandler = (data: Buffer, source: SocketAddress) => boolean | undefined

/** Events of a community. */
export interface CommunityEvents {
  'peer-added': { peer: Peer }
  'peer-removed': { peer: Peer; reason: 'timeout' | 'unreachable' | 'replaced' }
  'introduction-request': { peer: Peer }
  'introduction-response': { peer: Peer; introduced: SocketAddress | undefined }
}

/** Counters of one message id. */
export interface MessageCounters {
  packetsIn: number
  bytesIn: number
  packetsOut: number
  bytesOut: number
}

/** Counters of one message id since statistics were enabled, with py-ipv8's first/last times (Unix s, 0: none). */
export interface ReportedCounters extends MessageCounters {
  firstMeasuredUp: number
  firstMeasuredDown: number
  lastMeasuredUp: number
  lastMeasuredDown: number
}

interface MeasureTimes {
  firstUp: number
  firstDown: number
  lastUp: number
  lastDown: number
}

/** Counters of a community. */
export interface CommunityStatistics {
  readonly messages: ReadonlyMap<number, MessageCounters>
  /** The declared name of each handled message id. */
  readonly names: ReadonlyMap<number, string>
  readonly dropped: {
    malformed: number
    badSignature: number
    unknownMessage: number
    handlerError: number
    /** Signed messages refused unchecked because their source host sent more than its budget. */
    rateLimited: number
  }
}

type Route = (data: Buffer, source: SocketAddress) => boolean | undefined

/** A signed datagram waiting for the batched check of its burst's signatures. */
interface PendingSigned {
  readonly data: Buffer
  readonly source: SocketAddress
  readonly frame: VerifiedFrame
  readonly deliver: (frame: VerifiedFrame, data: Buffer, source: SocketAddress) => boolean
}

const log = logger('ipv8:community')
const DEFAULT_SIGNED_RATE_LIMIT: RateLimit = { packetsPerSec: 1_000, burst: 2_000 }
const DEFAULT_SIGNATURE_BATCH = 64
/** How long the interface lookup behind a wildcard bind's LAN address is reused. */
const LAN_ADDRESS_TTL_MS = 5_000

/** Whether a host is an IPv6 address (addresses that reach us are IPv4 dotted quads or contain a colon). */
function isV6Host(host: string): boolean {
  return host.includes(':')
}

/**
 * An IPv8 overlay: one community id, its message handlers, its peers and its walker. Handlers get payloads that
 * are decoded and whose signature was verified. The base class speaks the discovery protocol every py-ipv8
 * community speaks (introduction request/response, puncture request/puncture, old and new style) and walks
 * the network with its strategies; subclasses add their messages with {@link Community.addSignedHandler} and
 * friends and piggyback data on introductions through the `extra bytes` hooks.
 *
 * @example
 * ```ts
 * class ChatCommunity extends Community {
 *   constructor(deps: CommunityDeps) {
 *     super(deps, CHAT_ID)
 *     this.addSignedHandler(ChatPayload, (peer, payload) => this.onChat(peer, payload))
 *   }
 * }
 * const chat = new ChatCommunity({ endpoint, key })
 * await chat.start()
 * ```
 */
export class Community implements Service {
  /** The 20-byte community id. */
  readonly communityId: Buffer
  /** The 22-byte datagram prefix. */
  readonly prefix: Buffer
  readonly network = new Network()
  readonly events = new TypedEmitter<CommunityEvents>()
  readonly requestCache: RequestCache
  readonly maxPeers: number
  protected readonly endpoint: Ipv8Endpoint
  protected readonly key: PrivateKey
  /** The clock of every timer and timestamp of this overlay. */
  readonly clock: Clock
  /** The random source of walks and introductions. */
  readonly random: () => number
  protected readonly tasks: TaskScope
  readonly #stopped = new AbortController()
  readonly #routes: Array<Route | undefined> = new Array(256)
  readonly #counters = new Map<number, MessageCounters>()
  readonly #names = new Map<number, string>()
  readonly #dropped = { malformed: 0, badSignature: 0, unknownMessage: 0, handlerError: 0, rateLimited: 0 }
  readonly #signedLimiter: SourceRateLimiter | undefined
  readonly #signatureBatch: number
  /** Verifies the batches of signed messages, one signature at a time for a while after a batch fails. */
  readonly #verifier = new SignatureVerifier()
  /** Message ids with a signed handler. */
  readonly #signedIds: boolean[] = new Array(256).fill(false)
  #pending: PendingSigned[] = []
  /** Whether a signed message was handled since the event loop last turned (later ones join a batch). */
  #inBurst = false
  readonly #settings: CommunitySettings
  readonly #nodeBootstrap: BootstrapOptions
  /** Whether old-style introduction-requests may start with `"Y" || mid` (DiscoveryCommunity). */
  protected acceptsIntroduceTo = false
  #strategies: WalkStrategy[] = []
  #bootstrappers: Bootstrapper[] = []
  #globalTime = 0n
  #wan: SocketAddress | undefined
  #unregister: (() => void) | undefined
  #unbeacon: (() => void) | undefined
  #running = false
  #lan: { address: SocketAddress; atMs: number } | undefined
  /** The counters when reported statistics were enabled; `undefined` while they are off. */
  #reportedSince: Map<number, MessageCounters> | undefined
  readonly #measured = new Map<number, MeasureTimes>()

  constructor(deps: CommunityDeps, communityId: Uint8Array, settings: CommunitySettings = {}) {
    this.communityId = Buffer.from(communityId)
    this.prefix = communityPrefix(this.communityId)
    this.endpoint = deps.endpoint
    this.key = deps.key
    this.clock = deps.clock ?? systemClock
    this.random = deps.random ?? Math.random
    this.tasks = new TaskScope(this.#stopped.signal, this.clock)
    this.requestCache = new RequestCache({ clock: this.clock, random: this.random })
    this.maxPeers = settings.maxPeers ?? 30
    this.#settings = settings
    const signedLimit = settings.signedRateLimit ?? DEFAULT_SIGNED_RATE_LIMIT
    this.#signedLimiter = signedLimit === false ? undefined : new SourceRateLimiter(signedLimit, this.clock)
    this.#signatureBatch = Math.max(1, Math.floor(settings.signatureBatch ?? DEFAULT_SIGNATURE_BATCH))
    this.#nodeBootstrap = {
      ...(deps.publicNetwork !== undefined && { publicNetwork: deps.publicNetwork }),
      ...(deps.bootstrapAddresses !== undefined && { addresses: deps.bootstrapAddresses }),
      ...(deps.transport !== undefined && { transport: deps.transport }),
    }

    const oldRequest: PayloadSchema<IntroductionRequest & { introduceTo?: Buffer }> = {
      ...IntroductionRequestPayload,
      decode: (data, start = 0, end = data.length) => {
        // DiscoveryCommunity quirk: `"Y" || mid` before the payload asks for an introduction to that member.
        if (this.acceptsIntroduceTo && data[start] === 0x59 && end - start >= 42) {
          const mid = data.subarray(start + 1, start + 21)
          if (this.network.getPeer(mid) !== undefined) {
            return { ...IntroductionRequestPayload.decode(data, start + 21, end), introduceTo: mid }
          }
        }
        return IntroductionRequestPayload.decode(data, start, end)
      },
    }
    this.addSignedHandler(oldRequest, (peer, payload, ctx) =>
      this.#onIntroductionRequest(peer, payload, false, ctx),
    )
    this.addSignedHandler(NewIntroductionRequestPayload, (peer, payload, ctx) =>
      this.#onIntroductionRequest(peer, payload, true, ctx),
    )
    this.addSignedHandler(IntroductionResponsePayload, (peer, payload) =>
      this.#onIntroductionResponse(peer, {
        ...payload,
        supportsNewStyle: payload.bits[3] === true,
        introSupportsNewStyle: payload.bits[4] === true,
      }),
    )
    this.addSignedHandler(NewIntroductionResponsePayload, (peer, payload) =>
      this.#onIntroductionResponse(peer, {
        ...payload,
        supportsNewStyle: true,
        introSupportsNewStyle: payload.bits[0] === true,
      }),
    )
    this.addUnsignedHandler(PunctureRequestPayload, (_source, payload) =>
      this.#onPunctureRequest(payload, false),
    )
    this.addUnsignedHandler(NewPunctureRequestPayload, (_source, payload) =>
      this.#onPunctureRequest(payload, true),
    )
    this.addSignedHandler(PuncturePayload, (peer) => this.#touch(peer))
    this.addSignedHandler(NewPuncturePayload, (peer) => this.#touch(peer))
  }

  /** The name in logs and statistics. */
  get name(): string {
    return this.constructor.name
  }

  /** Whether {@link Community.start} ran and {@link Community.stop} did not. */
  get running(): boolean {
    return this.#running
  }

  /** The verified peers. */
  get peers(): Peer[] {
    return this.network.peers
  }

  /** Our public key bin's mid. */
  get myMid(): Buffer {
    return this.key.mid
  }

  /** The key this community signs with. */
  get myKey(): PrivateKey {
    return this.key
  }

  /** Our LAN address as peers see it. */
  get myLanAddress(): SocketAddress {
    const local = this.endpoint.local
    if (local.host !== '0.0.0.0' && local.host !== '::') return local
    // A wildcard bind: look the interfaces up at most every few seconds, not for every message we build.
    const now = this.clock.monotonic()
    const cached = this.#lan
    if (
      cached !== undefined &&
      cached.address.port === local.port &&
      now - cached.atMs < LAN_ADDRESS_TTL_MS
    ) {
      return cached.address
    }
    const address = lanAddressOf(local)
    this.#lan = { address, atMs: now }
    return address
  }

  /** Our WAN address as the last non-LAN responder saw it (our LAN address until then). */
  get myWanAddress(): SocketAddress {
    return this.#wan ?? this.myLanAddress
  }

  /** The current global time (Lamport clock). */
  get globalTime(): bigint {
    return this.#globalTime
  }

  /** Increments and returns the global time, for a message that carries it. */
  claimGlobalTime(): bigint {
    this.#globalTime += 1n
    return this.#globalTime
  }

  /** Registers with the endpoint and starts the walker, the bootstrappers and the peer check. */
  async start(): Promise<void> {
    if (this.#running) return
    if (this.#stopped.signal.aborted)
      throw new Ipv8Error('NOT_RUNNING', { reason: 'a stopped community cannot restart' })
    if (this.endpoint.isRegistered(this.prefix)) {
      throw new Ipv8Error('DUPLICATE_COMMUNITY', { communityId: this.communityId.toString('hex') })
    }
    this.#unregister = this.endpoint.register(this.prefix, (data, source) => this.onPacket(data, source), {
      established: (data, source) => this.isEstablishedTraffic(data, source),
    })
    this.#running = true
    const settings = this.#settings
    const bootstrap = { ...this.#nodeBootstrap, ...(settings.bootstrap ?? {}) }
    this.#bootstrappers = settings.bootstrappers ?? defaultBootstrappers({ clock: this.clock, ...bootstrap })
    this.#strategies = settings.strategies?.(this) ?? [new RandomWalk(this, { targetPeers: 20 })]
    const lanDiscovery =
      this.#bootstrappers.some((b) => b instanceof LanBroadcastBootstrapper) ||
      (bootstrap.publicNetwork ?? publicNetworkAllowed())
    if (lanDiscovery) {
      const announces = new AnnounceLimiter(this.clock)
      this.#unbeacon = this.endpoint.onBeacon((prefix, from) => {
        if (!prefix.equals(this.prefix) || sameAddress(from, this.endpoint.local)) return
        if (announces.admit(from.host)) this.walkTo(from)
      })
    }
    await Promise.all(this.#bootstrappers.map((b) => b.start(this)))
    this.tasks.every('walk', settings.walkIntervalMs ?? 500, () => this.walkStep(), { now: true })
    this.tasks.every('check-peers', 2_500, () => this.checkPeers())
  }

  /** Stops every task and pending request and leaves the endpoint. */
  async stop(): Promise<void> {
    // messages that arrived before the stop are handled, not lost in the queue
    this.#flushSigned()
    this.#running = false
    this.#stopped.abort()
    this.requestCache.close()
    this.#unregister?.()
    this.#unbeacon?.()
    this.#unregister = undefined
    await Promise.all(this.#bootstrappers.map((b) => b.stop()))
  }

  /** The bootstrappers in use (once started). */
  get bootstrappers(): readonly Bootstrapper[] {
    return this.#bootstrappers
  }

  /** The walk strategies in use. */
  get strategies(): readonly WalkStrategy[] {
    return this.#strategies
  }

  /** One walker tick: every strategy whose peer target is not reached takes a step. */
  walkStep(): void {
    if (!this.#running) return
    for (const strategy of this.#strategies) {
      if (strategy.targetPeers < 0 || this.network.size < strategy.targetPeers) {
        try {
          strategy.takeStep()
        } catch (err) {
          log.debug('walk step failed', { err })
        }
      }
    }
  }

  /** Probes quiet peers and drops those that stopped answering. */
  checkPeers(): void {
    const now = this.clock.now()
    const inactiveMs = this.#settings.peerInactiveMs ?? 27_500
    const dropMs = this.#settings.peerDropMs ?? 57_500
    for (const peer of this.network.peers) {
      const silentMs = now - peer.lastSeenMs
      if (silentMs >= dropMs) {
        this.removePeer(peer, 'timeout')
      } else if (silentMs >= inactiveMs && now - peer.lastProbedMs >= inactiveMs / 2) {
        peer.lastProbedMs = now
        this.probe(peer)
      }
    }
  }

  /** Asks a quiet peer for a sign of life; the base community sends it an introduction-request. */
  protected probe(peer: Peer): void {
    this.walkTo(peer.address)
  }

  /** Removes a peer from the table and tells listeners. */
  removePeer(peer: Peer, reason: 'timeout' | 'unreachable' | 'replaced'): void {
    if (this.network.removePeer(peer)) this.events.emit('peer-removed', { peer, reason })
  }

  /** Forgets an address that did not answer: its walkable entry, and the peer there. */
  forgetAddress(address: SocketAddress): void {
    const peer = this.network.removeByAddress(address)
    if (peer !== undefined) this.events.emit('peer-removed', { peer, reason: 'unreachable' })
  }

  /** Sends a datagram that is not a message of this community (LAN announces). */
  sendRaw(data: Buffer, to: SocketAddress): void {
    this.endpoint.send(data, to)
  }

  /** Never adds a peer at this address (bootstrap trackers). */
  blacklist(address: SocketAddress): void {
    this.network.blacklist(address)
  }

  /** Contacts the bootstrappers (each at most once per its interval). */
  async bootstrap(): Promise<SocketAddress[]> {
    const walked = await Promise.all(this.#bootstrappers.map((b) => b.bootstrap(this)))
    return walked.flat()
  }

  /** The bootstrap addresses of the address bootstrappers. */
  get bootstrapAddresses(): SocketAddress[] {
    return this.#bootstrappers.flatMap((b) => ('addresses' in b ? [...(b.addresses as SocketAddress[])] : []))
  }

  /**
   * Asks a random verified peer (or `from`) for an introduction; without peers it bootstraps, and with a small
   * chance it asks a bootstrap address instead, to heal a partitioned network.
   */
  getNewIntroduction(from?: SocketAddress): void {
    let target = from
    if (target === undefined) {
      const peers = this.network.peers
      const bootstrap = this.bootstrapAddresses
      if (peers.length === 0) {
        void this.bootstrap()
        return
      }
      target =
        bootstrap.length > 0 && this.random() < 0.05
          ? bootstrap[Math.floor(this.random() * bootstrap.length)]
          : peers[Math.floor(this.random() * peers.length)]?.address
    }
    if (target !== undefined) this.walkTo(target)
  }

  /** Sends an introduction-request to `address` (new style for IPv6 and known new-style peers). */
  walkTo(address: SocketAddress): void {
    if (!this.#running || sameAddress(address, this.endpoint.local) || isNoAddress(address)) return
    const known = this.network.getPeerByAddress(address)
    const newStyle =
      isIPv6(address.host) || known?.newStyle === true || this.network.walkable(address)?.newStyle === true
    this.send(address, this.createIntroductionRequest(address, newStyle))
  }

  /** Builds a signed introduction-request to `destination`. */
  createIntroductionRequest(destination: SocketAddress, newStyle: boolean): Buffer {
    const globalTime = this.claimGlobalTime()
    const identifier = Number(globalTime % 65536n)
    const extraBytes = this.introductionRequestExtraBytes(this.network.getPeerByAddress(destination))
    if (newStyle) {
      return this.createSigned(
        NewIntroductionRequestPayload,
        {
          destinationAddress: destination,
          sourceLanAddress: this.myLanAddress,
          sourceWanAddress: this.myWanAddress,
          identifier,
          bits: [false, false, false, false, false, false, false, false],
          extraBytes,
        },
        { globalTime },
      )
    }
    return this.createSigned(
      IntroductionRequestPayload,
      {
        destinationAddress: ipv4OrNone(destination),
        sourceLanAddress: ipv4OrNone(this.myLanAddress),
        sourceWanAddress: ipv4OrNone(this.myWanAddress),
        // conn type unknown (0, 0), supports new style 0, advice 1: what py-ipv8 sends
        bits: [false, false, false, false, false, false, false, true],
        identifier,
        extraBytes,
      },
      { globalTime },
    )
  }

  /** Extra bytes piggybacked on our introduction-requests (tunnel peer flags, PEX keys); empty by default. */
  protected introductionRequestExtraBytes(_peer: Peer | undefined): Buffer {
    return Buffer.alloc(0)
  }

  /** Extra bytes piggybacked on our introduction-responses; empty by default. */
  protected introductionResponseExtraBytes(_peer: Peer): Buffer {
    return Buffer.alloc(0)
  }

  /** Called with the extra bytes of a verified introduction request or response. */
  protected onIntroductionExtraBytes(_peer: Peer, _extraBytes: Buffer, _kind: 'request' | 'response'): void {}

  /** Called after a verified introduction-request was answered. */
  protected introductionRequestCallback(_peer: Peer): void {}

  /** Called after a verified introduction-response was processed. */
  protected introductionResponseCallback(_peer: Peer, _introduced: SocketAddress | undefined): void {}

  // --- messaging ------------------------------------------------------------------------------------------

  /**
   * Handles message `schema.msgId` as a signed message: the signature is checked and the payload decoded before
   * `handler` runs. The peer is the table's peer when known, else a fresh unverified-as-member one.
   */
  addSignedHandler<T>(schema: PayloadSchema<T>, handler: SignedHandler<T>, opts: FrameOptions = {}): void {
    this.#names.set(schema.msgId, schema.name)
    const deliver = (frame: VerifiedFrame, data: Buffer, source: SocketAddress): boolean => {
      let payload: T
      try {
        payload = schema.decode(data, frame.payloadStart, frame.payloadEnd)
      } catch {
        this.#dropped.malformed += 1
        return false
      }
      const now = this.clock.now()
      const known = this.network.getPeer(frame.publicKey.midHex)
      const peer = known ?? new Peer(frame.publicKey, source, now)
      if (known !== undefined && sameAddress(known.address, source)) known.lastSeenMs = now
      if (frame.globalTime !== undefined && frame.globalTime > peer.globalTime)
        peer.globalTime = frame.globalTime
      try {
        handler(peer, payload, { source, msgId: frame.msgId, globalTime: frame.globalTime, data })
      } catch (err) {
        this.#handlerFailed(err)
      }
      return true
    }
    this.#route(schema.msgId, (data, source) => {
      if (this.#signedLimiter !== undefined && !this.#signedLimiter.admit(source.host)) {
        this.#dropped.rateLimited += 1
        return false
      }
      if (!this.#inBurst || this.#signatureBatch === 1) {
        let frame: VerifiedFrame
        try {
          frame = verifySigned(data, opts)
        } catch (err) {
          this.#countDecodeError(err)
          return false
        }
        if (this.#signatureBatch > 1) this.#startBurst()
        return deliver(frame, data, source)
      }
      let frame: VerifiedFrame
      try {
        frame = readSigned(data, opts)
      } catch (err) {
        this.#countDecodeError(err)
        return false
      }
      // the verdict comes with the batch: a bad signature is counted as badSignature then
      this.#pending.push({ data, source, frame, deliver })
      if (this.#pending.length >= this.#signatureBatch) this.#flushSigned()
      return true
    })
    this.#signedIds[schema.msgId] = true
  }

  /** Marks a burst of signed messages until the event loop turns (or a manual clock moves), then ends it. */
  #startBurst(): void {
    this.#inBurst = true
    const end = (): void => {
      this.#inBurst = false
      this.#flushSigned()
    }
    if (this.clock === systemClock) setImmediate(end)
    else this.clock.setTimeout(end, 0)
  }

  /** Verifies the queued signed messages as one batch and handles the valid ones in arrival order. */
  #flushSigned(): void {
    const batch = this.#pending
    if (batch.length === 0) return
    this.#pending = []
    let valid: boolean[]
    try {
      valid = this.#verifier.verify(
        batch.map((p) => ({ key: p.frame.publicKey, data: p.data, signatureOffset: p.frame.payloadEnd })),
      )
    } catch (err) {
      // the native verifier refused its input (it never should): nothing is accepted unchecked
      log.debug('batch verification failed', { err })
      valid = batch.map((p) =>
        p.frame.publicKey.verify(p.data.subarray(0, p.frame.payloadEnd), p.data.subarray(p.frame.payloadEnd)),
      )
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as PendingSigned
      // the endpoint counted these as accepted when they were queued: it learns of a rejection now
      if (valid[i] !== true) {
        this.#dropped.badSignature += 1
        this.endpoint.rejectLater(this.prefix)
      } else if (!p.deliver(p.frame, p.data, p.source)) {
        this.endpoint.rejectLater(this.prefix)
      }
    }
  }

  /** Handles message `schema.msgId` as an unsigned message (`prefix || id || [Q global time] || payload`). */
  addUnsignedHandler<T>(
    schema: PayloadSchema<T>,
    handler: UnsignedHandler<T>,
    opts: FrameOptions = {},
  ): void {
    this.#names.set(schema.msgId, schema.name)
    this.#route(schema.msgId, (data, source) => {
      let payload: T
      let globalTime: bigint | undefined
      try {
        const frame = readUnsigned(data, opts)
        globalTime = frame.globalTime
        payload = schema.decode(data, frame.payloadStart, frame.payloadEnd)
      } catch {
        this.#dropped.malformed += 1
        return false
      }
      try {
        handler(source, payload, { source, msgId: schema.msgId, globalTime, data })
      } catch (err) {
        this.#handlerFailed(err)
      }
      return true
    })
  }

  /** Handles a message id with its own framing (tunnel cells); the handler parses `data` itself. */
  addRawHandler(msgId: number, handler: RawHandler): void {
    this.#route(msgId, handler)
  }

  /** Builds a signed datagram of this community (global time claimed unless given or turned off). */
  createSigned<T>(schema: PayloadSchema<T>, value: T, opts: { globalTime?: bigint | false } = {}): Buffer {
    const globalTime = opts.globalTime === false ? undefined : (opts.globalTime ?? this.claimGlobalTime())
    return signedPacket(this.prefix, schema, value, this.key, globalTime)
  }

  /** Builds an unsigned datagram of this community (global time claimed unless given or turned off). */
  createUnsigned<T>(schema: PayloadSchema<T>, value: T, opts: { globalTime?: bigint | false } = {}): Buffer {
    const globalTime = opts.globalTime === false ? undefined : (opts.globalTime ?? this.claimGlobalTime())
    return unsignedPacket(this.prefix, schema, value, globalTime)
  }

  /** Sends a datagram through the endpoint and counts it. */
  send(to: SocketAddress, packet: Buffer): void {
    if (packet.length > MSG_ID_OFFSET) {
      const msgId = packet[MSG_ID_OFFSET] as number
      const counters = this.#count(msgId)
      counters.packetsOut += 1
      counters.bytesOut += packet.length
      if (this.#reportedSince !== undefined) this.#measure(msgId, true)
    }
    this.endpoint.send(packet, to)
  }

  /** Signs and sends one message to a peer. */
  ezSend<T>(peer: Peer | SocketAddress, schema: PayloadSchema<T>, value: T): void {
    this.send('address' in peer ? peer.address : peer, this.createSigned(schema, value))
  }

  /**
   * Whether a datagram belongs to traffic this node agreed to carry, so the endpoint's per-source flood limit
   * does not count it. Runs before any parsing, for every datagram of this community. None by default.
   */
  protected isEstablishedTraffic(_data: Buffer, _source: SocketAddress): boolean {
    return false
  }

  /** Handles one datagram of this community; returns false when it was dropped. Never throws. */
  onPacket(data: Buffer, source: SocketAddress): boolean {
    if (data.length <= PREFIX_LENGTH) return false
    const msgId = data[MSG_ID_OFFSET] as number
    // messages are handled in arrival order: signed ones queued for their batch go first
    if (this.#pending.length > 0 && !this.#signedIds[msgId]) this.#flushSigned()
    const route = this.#routes[msgId]
    if (route === undefined) {
      if (DEPRECATED_MESSAGE_IDS.has(msgId)) return true
      this.#dropped.unknownMessage += 1
      return false
    }
    const counters = this.#count(msgId)
    counters.packetsIn += 1
    counters.bytesIn += data.length
    if (this.#reportedSince !== undefined) this.#measure(msgId, false)
    try {
      return route(data, source) !== false
    } catch (err) {
      this.#dropped.handlerError += 1
      log.debug('message handler failed', { msgId, err })
      return false
    }
  }

  /**
   * Turns the reported message statistics on or off, as py-ipv8's StatisticsEndpoint does per community:
   * enabling starts them from zero (enabling again keeps counting), disabling discards them. The counters behind
   * {@link Community.statistics} always run; this only decides what {@link Community.reportedStatistics} shows.
   */
  enableStatistics(enabled: boolean): void {
    if (!enabled) {
      this.#reportedSince = undefined
      this.#measured.clear()
    } else {
      this.#reportedSince ??= this.#snapshotCounters()
    }
  }

  /** Whether {@link Community.enableStatistics} turned the reported statistics on. */
  get statisticsEnabled(): boolean {
    return this.#reportedSince !== undefined
  }

  /**
   * The message counters since statistics were enabled, for message ids that had traffic since; empty while they
   * are off.
   */
  get reportedStatistics(): ReadonlyMap<number, ReportedCounters> {
    const since = this.#reportedSince
    const out = new Map<number, ReportedCounters>()
    if (since === undefined) return out
    for (const [id, now] of this.#counters) {
      const then = since.get(id)
      const times = this.#measured.get(id)
      const diff = {
        packetsIn: now.packetsIn - (then?.packetsIn ?? 0),
        bytesIn: now.bytesIn - (then?.bytesIn ?? 0),
        packetsOut: now.packetsOut - (then?.packetsOut ?? 0),
        bytesOut: now.bytesOut - (then?.bytesOut ?? 0),
        firstMeasuredUp: times?.firstUp ?? 0,
        firstMeasuredDown: times?.firstDown ?? 0,
        lastMeasuredUp: times?.lastUp ?? 0,
        lastMeasuredDown: times?.lastDown ?? 0,
      }
      if (diff.packetsIn > 0 || diff.packetsOut > 0) out.set(id, diff)
    }
    return out
  }

  #measure(msgId: number, up: boolean): void {
    const nowSec = this.clock.now() / 1000
    let times = this.#measured.get(msgId)
    if (times === undefined) {
      times = { firstUp: 0, firstDown: 0, lastUp: 0, lastDown: 0 }
      this.#measured.set(msgId, times)
    }
    if (up) {
      if (times.firstUp === 0) times.firstUp = nowSec
      times.lastUp = nowSec
    } else {
      if (times.firstDown === 0) times.firstDown = nowSec
      times.lastDown = nowSec
    }
  }

  #snapshotCounters(): Map<number, MessageCounters> {
    const out = new Map<number, MessageCounters>()
    for (const [id, c] of this.#counters) out.set(id, { ...c })
    return out
  }

  /** Message counters and drop reasons. */
  get statistics(): CommunityStatistics {
    const messages = new Map<number, MessageCounters>()
    for (const [id, c] of this.#counters) messages.set(id, { ...c })
    return { messages, names: new Map(this.#names), dropped: { ...this.#dropped } }
  }

  #route(msgId: number, route: Route): void {
    if (this.#routes[msgId] !== undefined)
      throw new Ipv8Error('DUPLICATE_REQUEST', { msgId, reason: 'handler exists' })
    this.#routes[msgId] = route
  }

  #count(msgId: number): MessageCounters {
    let c = this.#counters.get(msgId)
    if (c === undefined) {
      c = { packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0 }
      this.#counters.set(msgId, c)
    }
    return c
  }

  #countDecodeError(err: unknown): void {
    if (err instanceof Ipv8Error && err.code === 'BAD_SIGNATURE') this.#dropped.badSignature += 1
    else this.#dropped.malformed += 1
  }

  #handlerFailed(err: unknown): void {
    this.#dropped.handlerError += 1
    log.debug('message handler failed', { err })
  }

  // --- discovery protocol ----------------------------------------------------------------------------------

  #touch(peer: Peer): void {
    if (this.network.has(peer)) peer.lastSeenMs = this.clock.now()
  }

  #addPeer(peer: Peer): Peer | undefined {
    const result = this.network.addVerifiedPeer(peer)
    if (result === undefined) return undefined
    result.peer.lastSeenMs = this.clock.now()
    if (result.added) this.events.emit('peer-added', { peer: result.peer })
    return result.peer
  }

  #onIntroductionRequest(
    requester: Peer,
    payload: {
      sourceLanAddress: SocketAddress
      bits: readonly boolean[]
      identifier: number
      extraBytes: Buffer
      introduceTo?: Buffer
    },
    newStyle: boolean,
    ctx: MessageContext,
  ): void {
    if (!this.#running || this.network.isBlacklisted(ctx.source) || this.#isMyKey(requester)) return
    requester.address = ctx.source
    if (!isNoAddress(payload.sourceLanAddress)) requester.lanAddress = payload.sourceLanAddress
    requester.newStyle ||= newStyle || payload.bits[2] === true
    // py-ipv8 ignores requests once it has max peers; we still answer with an introduction (and the
    // peer-limit bit) without adding the requester, so a newcomer whose only contact is full can join.
    const full = !this.network.has(requester) && this.network.size >= this.maxPeers
    const peer = full ? requester : this.#addPeer(requester)
    if (peer === undefined) return
    this.onIntroductionExtraBytes(peer, payload.extraBytes, 'request')

    const candidates = this.network.peers
    let count = 0
    for (const p of candidates) {
      if (p === peer || sameAddress(p.address, ctx.source)) continue
      // an old-style response carries IPv4 addresses only
      if (!newStyle && ipv4Number(p.address.host) < 0) continue
      candidates[count++] = p
    }
    candidates.length = count
    const wanted = payload.introduceTo === undefined ? undefined : this.network.getPeer(payload.introduceTo)
    const introduced =
      wanted !== undefined && wanted !== peer
        ? wanted
        : candidates[Math.floor(this.random() * candidates.length)]
    let lanIntro = NO_ADDRESS
    let wanIntro = NO_ADDRESS
    if (introduced !== undefined) {
      if (isLanHost(introduced.address.host)) {
        lanIntro = introduced.address
        // Without a learned WAN address (or on loopback) the LAN address is the only one that reaches it.
        wanIntro =
          this.#wan === undefined || isLoopback(introduced.address.host)
            ? introduced.address
            : { host: this.#wan.host, port: introduced.address.port }
      } else {
        wanIntro = introduced.address
        lanIntro = introduced.lanAddress ?? NO_ADDRESS
      }
    }
    const globalTime = this.claimGlobalTime()
    const extraBytes = this.introductionResponseExtraBytes(peer)
    const response = newStyle
      ? this.createSigned(
          NewIntroductionResponsePayload,
          {
            destinationAddress: ctx.source,
            sourceLanAddress: this.myLanAddress,
            sourceWanAddress: this.myWanAddress,
            lanIntroductionAddress: lanIntro,
            wanIntroductionAddress: wanIntro,
            identifier: payload.identifier,
            bits: [introduced?.newStyle === true, false, false, false, false, false, false, false],
            extraBytes,
          },
          { globalTime },
        )
      : this.createSigned(
          IntroductionResponsePayload,
          {
            destinationAddress: ipv4OrNone(ctx.source),
            sourceLanAddress: ipv4OrNone(this.myLanAddress),
            sourceWanAddress: ipv4OrNone(this.myWanAddress),
            lanIntroductionAddress: ipv4OrNone(lanIntro),
            wanIntroductionAddress: ipv4OrNone(wanIntro),
            bits: [false, false, false, true, introduced?.newStyle === true, full, false, false],
            identifier: payload.identifier,
            extraBytes,
          },
          { globalTime },
        )
    this.send(ctx.source, response)

    if (introduced !== undefined) {
      const lanWalker = isNoAddress(payload.sourceLanAddress) ? ctx.source : payload.sourceLanAddress
      const punctureNewStyle = introduced.newStyle || isV6Host(ctx.source.host) || isV6Host(lanWalker.host)
      const punctureRequest = punctureNewStyle
        ? this.createUnsigned(NewPunctureRequestPayload, {
            lanWalkerAddress: lanWalker,
            wanWalkerAddress: ctx.source,
            identifier: payload.identifier,
          })
        : this.createUnsigned(PunctureRequestPayload, {
            lanWalkerAddress: ipv4OrNone(lanWalker),
            wanWalkerAddress: ctx.source,
            identifier: payload.identifier,
          })
      this.send(isNoAddress(lanIntro) ? wanIntro : lanIntro, punctureRequest)
    }
    this.events.emit('introduction-request', { peer })
    this.introductionRequestCallback(peer)
  }

  #onIntroductionResponse(
    responder: Peer,
    payload: {
      destinationAddress: SocketAddress
      lanIntroductionAddress: SocketAddress
      wanIntroductionAddress: SocketAddress
      extraBytes: Buffer
      supportsNewStyle: boolean
      introSupportsNewStyle: boolean
    },
  ): void {
    if (!this.#running || this.#isMyKey(responder)) return
    if (!this.network.has(responder) && this.network.size >= this.maxPeers) return
    const destination = payload.destinationAddress
    if (!isNoAddress(destination) && !isLanHost(destination.host)) this.#wan = destination
    responder.newStyle ||= payload.supportsNewStyle
    const peer = this.#addPeer(responder)
    if (peer === undefined) return
    this.onIntroductionExtraBytes(peer, payload.extraBytes, 'response')

    const lan = payload.lanIntroductionAddress
    const wan = payload.wanIntroductionAddress
    const myWanHost = this.myWanAddress.host
    let introduced: SocketAddress | undefined
    if (!isNoAddress(wan) && wan.host !== myWanHost) introduced = wan
    else if (!isNoAddress(lan)) introduced = lan
    else if (!isNoAddress(wan)) introduced = wan
    if (introduced !== undefined && !this.#isMe(introduced)) {
      this.network.discoverAddress(peer, introduced, payload.introSupportsNewStyle, this.clock.now())
    } else {
      introduced = undefined
    }
    this.events.emit('introduction-response', { peer, introduced })
    this.introductionResponseCallback(peer, introduced)
  }

  #onPunctureRequest(
    payload: { lanWalkerAddress: SocketAddress; wanWalkerAddress: SocketAddress; identifier: number },
    newStyle: boolean,
  ): void {
    if (!this.#running) return
    let target = payload.wanWalkerAddress
    if (target.host === this.myWanAddress.host && !isNoAddress(payload.lanWalkerAddress)) {
      target = payload.lanWalkerAddress
    }
    if (isNoAddress(target) || this.#isMe(target)) return
    // py-ipv8 puts the WAN walker address in the puncture whichever address it is sent to
    const value = {
      sourceLanAddress: this.myLanAddress,
      sourceWanAddress: payload.wanWalkerAddress,
      identifier: payload.identifier,
    }
    const packet =
      newStyle || isIPv6(target.host)
        ? this.createSigned(NewPuncturePayload, value)
        : this.createSigned(PuncturePayload, {
            ...value,
            sourceLanAddress: ipv4OrNone(value.sourceLanAddress),
            sourceWanAddress: ipv4OrNone(value.sourceWanAddress),
          })
    this.send(target, packet)
  }

  /** Whether a message is our own, reflected back (a LAN announce we heard ourselves, a loop): never a peer. */
  #isMyKey(peer: Peer): boolean {
    return peer.mid.equals(this.key.mid)
  }

  #isMe(address: SocketAddress): boolean {
    return (
      sameAddress(address, this.endpoint.local) ||
      sameAddress(address, this.myLanAddress) ||
      (this.#wan !== undefined && sameAddress(address, this.#wan))
    )
  }
}
