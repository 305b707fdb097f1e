import { type Clock, logger, systemClock } from '../../common/index.js'
import type { DatagramSocket, SocketAddress } from '../../net/index.js'
import { PREFIX_LENGTH } from '../serialization/index.js'
import { type RateLimit, SourceRateLimiter } from './rate-limit.js'

const log = logger('ipv8:endpoint')

/**
 * Receives the datagrams of one community. Returns `false` when the datagram was dropped (malformed, bad
 * signature, unknown message); throwing counts as a drop too and never goes past the endpoint. A datagram kept
 * for a later check (a signature verified with its burst) and rejected then is reported with
 * {@link Ipv8Endpoint.rejectLater}.
 */
export type PacketListener = (data: Buffer, from: SocketAddress) => boolean | undefined

/** Byte and packet counters of one community or of the whole endpoint. */
export interface TrafficCounters {
  bytesIn: number
  bytesOut: number
  packetsIn: number
  packetsOut: number
  /** Datagrams the community refused (malformed, bad signature, unknown message id). */
  packetsDropped: number
}

/** Reasons the endpoint itself drops a datagram before any community sees it. */
export interface EndpointDrops {
  /** Shorter than a prefix and message id. */
  tooShort: number
  /** No community has this prefix. */
  unknownPrefix: number
  /** The source sent faster than the per-source limit. */
  rateLimited: number
  /** A community rejected the datagram, or its handler threw. */
  rejected: number
}

/** Everything the endpoint counts. */
export interface EndpointStats {
  readonly total: TrafficCounters
  readonly drops: EndpointDrops
  /** Counters per community, keyed by the hex community id. */
  readonly communities: ReadonlyMap<string, TrafficCounters>
}

/** Options of an {@link Ipv8Endpoint}. */
export interface EndpointOptions {
  /**
   * Per-source-host limit on unsolicited traffic, or `false` for none. Default 20 000 packets/s with a burst of
   * 20 000. Datagrams a community calls established (see {@link RegisterOptions}) are not counted.
   */
  rateLimit?: RateLimit | false
}

/** How a community registers with the endpoint. */
export interface RegisterOptions {
  /**
   * Whether a datagram belongs to traffic this node already agreed to carry (a tunnel cell from the neighbour of
   * one of its circuits). Such datagrams skip the per-source flood limit, so a busy circuit is not throttled
   * like a flood; everything else from that host still counts. Called for every datagram with this prefix,
   * before any parsing, so it must be cheap (one that throws counts as unsolicited).
   */
  established?: (data: Buffer, from: SocketAddress) => boolean
}

/** Dependencies of an {@link Ipv8Endpoint}. */
export interface EndpointDeps {
  socket: DatagramSocket
  clock?: Clock
}

// "\0\0IPv8\0": py-ipv8's UDP broadcast announce header (version 0, magic, type 0), followed by a prefix.
export const BEACON_HEADER = Buffer.from([0x00, 0x00, 0x49, 0x50, 0x76, 0x38, 0x00])
const DEFAULT_RATE_LIMIT: RateLimit = { packetsPerSec: 20_000, burst: 20_000 }

function zeroCounters(): TrafficCounters {
  return { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0, packetsDropped: 0 }
}

interface Registration {
  prefix: Buffer
  listener: PacketListener
  established: ((data: Buffer, from: SocketAddress) => boolean) | undefined
  counters: TrafficCounters
}

/**
 * The IPv8 side of a datagram socket: dispatches each datagram to the community whose 22-byte prefix it starts
 * with, counts traffic per community and in total, limits floods per source, and drops (and counts) everything
 * that does not belong to a registered community. It never owns the socket: closing the endpoint detaches it.
 *
 * @example
 * ```ts
 * const socket = await udpTransport.bind({ port: 8090 })
 * const endpoint = new Ipv8Endpoint({ socket })
 * endpoint.register(community.prefix, (data, from) => community.onPacket(data, from))
 * ```
 */
export class Ipv8Endpoint {
  readonly #socket: DatagramSocket
  readonly #clock: Clock
  readonly #limiter: SourceRateLimiter | undefined
  readonly #byPrefix = new Map<string, Registration>()
  // the same registrations as a list: matching a datagram's prefix against a few communities byte by byte is
  // cheaper than building a string key for every datagram
  #registrations: Registration[] = []
  readonly #beaconListeners = new Set<(prefix: Buffer, from: SocketAddress) => void>()
  readonly #total = zeroCounters()
  readonly #drops: EndpointDrops = { tooShort: 0, unknownPrefix: 0, rateLimited: 0, rejected: 0 }
  readonly #detach: () => void

  constructor(deps: EndpointDeps, opts: EndpointOptions = {}) {
    this.#socket = deps.socket
    this.#clock = deps.clock ?? systemClock
    const limit = opts.rateLimit ?? DEFAULT_RATE_LIMIT
    this.#limiter = limit === false ? undefined : new SourceRateLimiter(limit, this.#clock)
    this.#detach = this.#socket.onMessage((data, from) => this.receive(data, from))
  }

  /** The address of the underlying socket. */
  get local(): SocketAddress {
    return this.#socket.local
  }

  /** Routes datagrams starting with `prefix` to `listener`; returns the function that unregisters it. */
  register(prefix: Uint8Array, listener: PacketListener, opts: RegisterOptions = {}): () => void {
    const key = Buffer.from(prefix).toString('latin1')
    if (prefix.length !== PREFIX_LENGTH) throw new RangeError('a community prefix is 22 bytes')
    if (this.#byPrefix.has(key)) throw new RangeError('this prefix is already registered')
    const registration: Registration = {
      prefix: Buffer.from(prefix),
      listener,
      established: opts.established,
      counters: zeroCounters(),
    }
    this.#byPrefix.set(key, registration)
    this.#registrations = [...this.#byPrefix.values()]
    return () => {
      if (this.#byPrefix.get(key) !== registration) return
      this.#byPrefix.delete(key)
      this.#registrations = [...this.#byPrefix.values()]
    }
  }

  /** Whether a community with this prefix is registered. */
  isRegistered(prefix: Uint8Array): boolean {
    return this.#byPrefix.has(Buffer.from(prefix).toString('latin1'))
  }

  /** Calls `listener` for every LAN broadcast announce (`"\0\0IPv8\0" || prefix`) that arrives. */
  onBeacon(listener: (prefix: Buffer, from: SocketAddress) => void): () => void {
    this.#beaconListeners.add(listener)
    return () => this.#beaconListeners.delete(listener)
  }

  /** Sends a datagram of the community whose prefix it starts with. */
  send(data: Uint8Array, to: SocketAddress): void {
    this.#total.bytesOut += data.length
    this.#total.packetsOut += 1
    const registration = this.#registrationOf(data)
    if (registration !== undefined) {
      registration.counters.bytesOut += data.length
      registration.counters.packetsOut += 1
    }
    this.#socket.send(data, to)
  }

  /** Hands one incoming datagram to its community; never throws. */
  receive(data: Buffer, from: SocketAddress): void {
    this.#total.bytesIn += data.length
    this.#total.packetsIn += 1
    const registration = this.#registrationOf(data)
    if (
      this.#limiter !== undefined &&
      !this.#established(registration, data, from) &&
      !this.#limiter.admit(from.host)
    ) {
      this.#drops.rateLimited += 1
      this.#total.packetsDropped += 1
      return
    }
    if (data.length <= PREFIX_LENGTH) {
      this.#drop('tooShort')
      return
    }
    if (registration === undefined) {
      if (!this.#beacon(data, from)) this.#drop('unknownPrefix')
      return
    }
    const counters = registration.counters
    counters.bytesIn += data.length
    counters.packetsIn += 1
    let accepted: boolean | undefined
    try {
      accepted = registration.listener(data, from)
    } catch (err) {
      log.debug('community handler threw', { err })
      accepted = false
    }
    if (accepted === false) {
      counters.packetsDropped += 1
      this.#drop('rejected')
    }
  }

  /**
   * Counts a datagram of the community with this prefix that its listener accepted for a later check and that
   * failed it (a bad signature found in its burst's batch, a payload that did not decode after it), as a drop
   * the listener had reported at once.
   */
  rejectLater(prefix: Uint8Array): void {
    const registration = this.#registrationOf(prefix)
    if (registration === undefined) return
    registration.counters.packetsDropped += 1
    this.#drop('rejected')
  }

  /** A snapshot of the counters. */
  get stats(): EndpointStats {
    const communities = new Map<string, TrafficCounters>()
    for (const [key, registration] of this.#byPrefix) {
      communities.set(Buffer.from(key, 'latin1').subarray(2).toString('hex'), { ...registration.counters })
    }
    return { total: { ...this.#total }, drops: { ...this.#drops }, communities }
  }

  /** Counters of one community (by prefix); `undefined` when it is not registered. */
  countersOf(prefix: Uint8Array): TrafficCounters | undefined {
    const registration = this.#byPrefix.get(Buffer.from(prefix).toString('latin1'))
    return registration === undefined ? undefined : { ...registration.counters }
  }

  /** Stops listening on the socket (the socket stays open: its owner closes it). */
  close(): void {
    this.#detach()
    this.#byPrefix.clear()
    this.#registrations = []
    this.#beaconListeners.clear()
  }

  #registrationOf(data: Uint8Array): Registration | undefined {
    if (data.length < PREFIX_LENGTH) return undefined
    next: for (const registration of this.#registrations) {
      const prefix = registration.prefix
      // from the end, so the version bytes every community shares are compared last
      for (let i = PREFIX_LENGTH - 1; i >= 0; i--) if (data[i] !== prefix[i]) continue next
      return registration
    }
    return undefined
  }

  #established(registration: Registration | undefined, data: Buffer, from: SocketAddress): boolean {
    const established = registration?.established
    if (established === undefined) return false
    try {
      return established(data, from)
    } catch (err) {
      log.debug('established check threw', { err })
      return false
    }
  }

  #drop(reason: keyof EndpointDrops): void {
    this.#drops[reason] += 1
    this.#total.packetsDropped += 1
  }

  #beacon(data: Buffer, from: SocketAddress): boolean {
    if (data.length !== BEACON_HEADER.length + PREFIX_LENGTH) return false
    if (!data.subarray(0, BEACON_HEADER.length).equals(BEACON_HEADER)) return false
    const prefix = data.subarray(BEACON_HEADER.length)
    for (const listener of this.#beaconListeners) {
      try {
        listener(prefix, from)
      } catch (err) {
        log.debug('beacon listener threw', { err })
      }
    }
    return true
  }
}
