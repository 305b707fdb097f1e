import { lookup } from 'node:dns/promises'
import { networkInterfaces } from 'node:os'
import { type Clock, logger, systemClock, type TimerHandle } from '../../common/index.js'
import {
  type DatagramSocket,
  type DatagramStats,
  type DatagramTransport,
  type SocketAddress,
  udpTransport,
} from '../../net/index.js'
import { BEACON_HEADER, SourceRateLimiter } from '../endpoint/index.js'
import { isLoopback } from './addresses.js'

const log = logger('ipv8:bootstrap')

/** The public IPv8 bootstrap trackers (py-ipv8's DispersyBootstrapper defaults). */
export const DEFAULT_BOOTSTRAP_ADDRESSES: readonly SocketAddress[] = Object.freeze(
  [
    ['130.161.119.206', 6421],
    ['130.161.119.206', 6422],
    ['131.180.27.155', 6423],
    ['131.180.27.156', 6424],
    ['131.180.27.161', 6427],
    ['131.180.27.161', 6521],
    ['131.180.27.161', 6522],
    ['131.180.27.162', 6523],
    ['131.180.27.162', 6524],
    ['130.161.119.215', 6525],
    ['130.161.119.215', 6526],
    ['130.161.119.201', 6527],
    ['130.161.119.201', 6528],
  ].map(([host, port]) => Object.freeze({ host: host as string, port: port as number })),
)

/** The public bootstrap trackers known by DNS name. */
export const DEFAULT_BOOTSTRAP_NAMES: readonly SocketAddress[] = Object.freeze(
  [
    ['dispersy1.tribler.org', 6421],
    ['dispersy1.st.tudelft.nl', 6421],
    ['dispersy2.tribler.org', 6422],
    ['dispersy2.st.tudelft.nl', 6422],
    ['dispersy3.tribler.org', 6423],
    ['dispersy3.st.tudelft.nl', 6423],
    ['dispersy4.tribler.org', 6424],
  ].map(([host, port]) => Object.freeze({ host: host as string, port: port as number })),
)

/** What a bootstrapper needs from its overlay. */
export interface BootstrapTarget {
  readonly prefix: Buffer
  walkTo(address: SocketAddress): void
  /** Sends a raw datagram from the overlay's socket. */
  sendRaw(data: Buffer, to: SocketAddress): void
  blacklist(address: SocketAddress): void
  /** Handles a datagram of the overlay that arrived on another socket (LAN broadcast handoff). */
  onPacket?(data: Buffer, source: SocketAddress): boolean
}

/** A source of first contacts for an overlay with no peers. */
export interface Bootstrapper {
  /** Called once when the overlay starts. */
  start(target: BootstrapTarget): void | Promise<void>
  /** Contacts the bootstrap peers, at most once per interval; returns the addresses walked to. */
  bootstrap(target: BootstrapTarget): Promise<SocketAddress[]>
  stop(): void | Promise<void>
}

/** Options of an {@link AddressBootstrapper}. */
export interface AddressBootstrapperOptions {
  /** Host names to resolve (IPv4) at start, in addition to the addresses. */
  names?: readonly SocketAddress[]
  /** Whether these are trackers that must never become regular peers (py-ipv8 blacklists them). */
  trackers?: boolean
  /** Minimum time between two bootstrap rounds (default 30 s). */
  intervalMs?: number
  clock?: Clock
}

/**
 * Walks to a fixed list of addresses, at most once per interval: py-ipv8's DispersyBootstrapper. With
 * `trackers` the addresses are blacklisted so they never become regular peers; explicitly configured addresses
 * of ordinary nodes should leave it off.
 *
 * @example
 * ```ts
 * new AddressBootstrapper([{ host: '127.0.0.2', port: 8090 }])
 * ```
 */
export class AddressBootstrapper implements Bootstrapper {
  readonly #addresses: SocketAddress[]
  readonly #names: readonly SocketAddress[]
  readonly #trackers: boolean
  readonly #intervalMs: number
  readonly #clock: Clock
  #lastMs = Number.NEGATIVE_INFINITY

  constructor(addresses: readonly SocketAddress[], opts: AddressBootstrapperOptions = {}) {
    this.#addresses = [...addresses]
    this.#names = opts.names ?? []
    this.#trackers = opts.trackers ?? false
    this.#intervalMs = opts.intervalMs ?? 30_000
    this.#clock = opts.clock ?? systemClock
  }

  /** The addresses (resolved names included). */
  get addresses(): readonly SocketAddress[] {
    return this.#addresses
  }

  async start(target: BootstrapTarget): Promise<void> {
    const resolved = await Promise.all(
      this.#names.map(async (name) => {
        try {
          const { address } = await lookup(name.host, { family: 4 })
          return { host: address, port: name.port }
        } catch (err) {
          log.debug('bootstrap name did not resolve', { host: name.host, err })
          return undefined
        }
      }),
    )
    for (const address of resolved) if (address !== undefined) this.#addresses.push(address)
    if (this.#trackers) for (const address of this.#addresses) target.blacklist(address)
  }

  bootstrap(target: BootstrapTarget): Promise<SocketAddress[]> {
    const now = this.#clock.monotonic()
    if (now - this.#lastMs < this.#intervalMs) return Promise.resolve([])
    this.#lastMs = now
    for (const address of this.#addresses) target.walkTo(address)
    return Promise.resolve([...this.#addresses])
  }

  stop(): void {}
}

/** Options of a {@link LanBroadcastBootstrapper}. */
export interface LanBroadcastOptions {
  /** Where the broadcast socket comes from (default real UDP); it is bound with `broadcast: true`. */
  transport?: DatagramTransport
  /** Local address of the broadcast socket (default `0.0.0.0`, any port: it must hear broadcasts). */
  bindHost?: string
  /** Where announces go (default the limited broadcast address 255.255.255.255). */
  broadcastHost?: string
  /** Ports to announce on, inclusive (default every port, 0..65534, as py-ipv8). */
  ports?: readonly [number, number]
  /** Minimum time between the starts of two sweeps over the ports (default 30 s). */
  intervalMs?: number
  /**
   * Most announces sent per second (default 8 192): a sweep of every port is spread over 8 s instead of one
   * burst that would overrun the socket's send buffer and the LAN.
   */
  announcesPerSec?: number
  /** Most datagrams per second handed from the broadcast socket to the overlay (default 100). */
  handoffsPerSec?: number
  clock?: Clock
}

/** What a {@link LanBroadcastBootstrapper} did. */
export interface LanBroadcastStats {
  /** Sweeps over the ports started. */
  sweeps: number
  /** Announce datagrams sent. */
  announces: number
  /** Announces for our overlay heard, that we walked to. */
  beaconsHeard: number
  /** Announces for our overlay not walked to: their source (or everyone) announced too often. */
  beaconsLimited: number
  /** Overlay datagrams that arrived on the broadcast socket and were handed to the overlay. */
  handoffs: number
  /** Datagrams on the broadcast socket that were dropped (other overlays, garbage, over the handoff limit). */
  dropped: number
}

const SWEEP_TICK_MS = 50

/**
 * Finds overlay members on the LAN as py-ipv8's UDPBroadcastBootstrapper does: an extra socket with
 * SO_BROADCAST announces `"\0\0IPv8\0" || prefix` to the broadcast address on every port, because the
 * listeners are other nodes' broadcast sockets on random ports. A node that hears an announce for its overlay
 * walks to the sender's broadcast socket, whose overlay datagrams are handed to the overlay, which answers from
 * its own socket. Announces also reach overlay sockets directly (see {@link Ipv8Endpoint.onBeacon}).
 *
 * Unlike py-ipv8, a sweep is paced ({@link LanBroadcastOptions.announcesPerSec}) rather than sent in one burst,
 * and a sweep runs at start and then only when the overlay asks to bootstrap (it has no peers), at most once
 * per interval. The default bootstrappers include it only when the public network is on. Without a broadcast
 * socket (the bind failed) it does nothing.
 *
 * @example
 * ```ts
 * new LanBroadcastBootstrapper({ announcesPerSec: 4096 })
 * ```
 */
export class LanBroadcastBootstrapper implements Bootstrapper {
  readonly stats: LanBroadcastStats = {
    sweeps: 0,
    announces: 0,
    beaconsHeard: 0,
    beaconsLimited: 0,
    handoffs: 0,
    dropped: 0,
  }
  readonly #announceLimit: AnnounceLimiter
  readonly #opts: LanBroadcastOptions
  readonly #clock: Clock
  readonly #ports: readonly [number, number]
  readonly #perTick: number
  #socket: DatagramSocket | undefined
  #detach: (() => void) | undefined
  #sweepTimer: TimerHandle | undefined
  #nextPort: number | undefined
  #lastSweepMs = Number.NEGATIVE_INFINITY
  readonly #handoffs: SourceRateLimiter
  #stopped = false

  constructor(opts: LanBroadcastOptions = {}) {
    this.#opts = opts
    this.#clock = opts.clock ?? systemClock
    const [first, last] = opts.ports ?? [0, 65534]
    if (
      !(Number.isInteger(first) && Number.isInteger(last) && first >= 0 && first <= last && last <= 65535)
    ) {
      throw new RangeError('ports must be an inclusive range within 0..65535')
    }
    this.#ports = [first, last]
    const perSec = opts.announcesPerSec ?? 8192
    if (!(perSec > 0)) throw new RangeError('announcesPerSec must be positive')
    this.#perTick = Math.max(1, Math.floor((perSec * SWEEP_TICK_MS) / 1000))
    this.#announceLimit = new AnnounceLimiter(this.#clock)
    const handoffsPerSec = opts.handoffsPerSec ?? 100
    this.#handoffs = new SourceRateLimiter(
      { packetsPerSec: handoffsPerSec, burst: handoffsPerSec },
      this.#clock,
    )
  }

  /** The broadcast socket's address, once bound. */
  get local(): SocketAddress | undefined {
    return this.#socket?.local
  }

  /** Counters of the broadcast socket, once bound (a send refused for lack of SO_BROADCAST is a send error). */
  get socketStats(): DatagramStats | undefined {
    return this.#socket?.stats
  }

  /** Whether a sweep is being sent. */
  get sweeping(): boolean {
    return this.#nextPort !== undefined
  }

  async start(target: BootstrapTarget): Promise<void> {
    const transport = this.#opts.transport ?? udpTransport
    let socket: DatagramSocket
    try {
      socket = await transport.bind({ host: this.#opts.bindHost ?? '0.0.0.0', port: 0, broadcast: true })
    } catch (err) {
      log.info('no LAN broadcast socket; LAN discovery is off', { err })
      return
    }
    if (this.#stopped) {
      await socket.close()
      return
    }
    this.#socket = socket
    this.#detach = socket.onMessage((data, from) => this.#onMessage(target, data, from))
    this.#sweep(target)
  }

  bootstrap(target: BootstrapTarget): Promise<SocketAddress[]> {
    if (this.#socket !== undefined && !this.sweeping) {
      if (this.#clock.monotonic() - this.#lastSweepMs >= (this.#opts.intervalMs ?? 30_000))
        this.#sweep(target)
    }
    return Promise.resolve([])
  }

  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#sweepTimer !== undefined) this.#clock.clearTimeout(this.#sweepTimer)
    this.#sweepTimer = undefined
    this.#nextPort = undefined
    this.#detach?.()
    this.#detach = undefined
    const socket = this.#socket
    this.#socket = undefined
    await socket?.close()
  }

  #sweep(target: BootstrapTarget): void {
    this.#lastSweepMs = this.#clock.monotonic()
    this.stats.sweeps += 1
    this.#nextPort = this.#ports[0]
    this.#sendSome(Buffer.concat([BEACON_HEADER, target.prefix]))
  }

  #sendSome(beacon: Buffer): void {
    this.#sweepTimer = undefined
    const socket = this.#socket
    let port = this.#nextPort
    if (socket === undefined || port === undefined) return
    const host = this.#opts.broadcastHost ?? '255.255.255.255'
    const last = this.#ports[1]
    for (let i = 0; i < this.#perTick && port <= last; i++, port++) {
      socket.send(beacon, { host, port })
      this.stats.announces += 1
    }
    if (port > last) {
      this.#nextPort = undefined
      return
    }
    this.#nextPort = port
    this.#sweepTimer = this.#clock.setTimeout(() => this.#sendSome(beacon), SWEEP_TICK_MS)
  }

  #onMessage(target: BootstrapTarget, data: Buffer, from: SocketAddress): void {
    const local = this.#socket?.local
    if (local === undefined) return
    if (
      data.length === BEACON_HEADER.length + target.prefix.length &&
      data.subarray(0, BEACON_HEADER.length).equals(BEACON_HEADER)
    ) {
      if (from.port === local.port && isOwnHost(from.host, local.host)) return // our own announce
      if (!data.subarray(BEACON_HEADER.length).equals(target.prefix)) {
        this.stats.dropped += 1
        return
      }
      if (!this.#announceLimit.admit(from.host)) {
        this.stats.beaconsLimited += 1
        return
      }
      this.stats.beaconsHeard += 1
      target.walkTo(from)
      return
    }
    if (
      target.onPacket !== undefined &&
      data.length > target.prefix.length &&
      data.subarray(0, target.prefix.length).equals(target.prefix) &&
      this.#handoffs.admit('')
    ) {
      this.stats.handoffs += 1
      target.onPacket(data, from)
      return
    }
    this.stats.dropped += 1
  }
}

/**
 * How often announces may make an overlay walk. An announce is an unauthenticated 29-byte datagram and the walk
 * it causes a signed request several times larger, so without a limit a forged source address would make us
 * an amplifier towards it: at most 2 walks per source host, then one per 5 s, and 10 per second in all.
 */
export class AnnounceLimiter {
  readonly #perHost: SourceRateLimiter
  readonly #overall: SourceRateLimiter

  constructor(clock: Clock = systemClock) {
    this.#perHost = new SourceRateLimiter({ packetsPerSec: 0.2, burst: 2 }, clock)
    this.#overall = new SourceRateLimiter({ packetsPerSec: 10, burst: 10 }, clock)
  }

  /** Whether an announce from `host` may be walked to now. */
  admit(host: string): boolean {
    return this.#perHost.admit(host) && this.#overall.admit('')
  }
}

/** Whether `host` is this machine: the socket's own bind address, loopback, or one of our interface addresses. */
function isOwnHost(host: string, bound: string): boolean {
  if (host === bound || isLoopback(host)) return true
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) if (entry.address === host) return true
  }
  return false
}

/** Whether the public network may be contacted: not when `TRIBLER_NO_PUBLIC_NETWORK=1` (every test harness). */
export function publicNetworkAllowed(): boolean {
  return process.env.TRIBLER_NO_PUBLIC_NETWORK !== '1'
}

/** Options of {@link defaultBootstrappers}. */
export interface BootstrapOptions {
  /** Explicit bootstrap addresses (ordinary nodes or trackers); they work even without the public network. */
  addresses?: readonly SocketAddress[]
  /** Whether `addresses` are trackers to blacklist (default false). */
  addressesAreTrackers?: boolean
  /**
   * Whether the public trackers and LAN broadcast are used. Default: true unless `TRIBLER_NO_PUBLIC_NETWORK=1`.
   * `false` empties every default list and disables LAN broadcast.
   */
  publicNetwork?: boolean
  /** Whether to announce on the LAN by UDP broadcast (default: `publicNetwork`; never without it). */
  lanBroadcast?: boolean
  /** Where the LAN broadcast socket comes from (default real UDP). */
  transport?: DatagramTransport
  intervalMs?: number
  clock?: Clock
}

/**
 * The bootstrappers of a node: the public trackers and LAN broadcast (only when the public network is allowed),
 * and the explicit addresses.
 *
 * @example
 * ```ts
 * defaultBootstrappers({ publicNetwork: false, addresses: [{ host: '127.0.0.1', port: 8090 }] })
 * ```
 */
export function defaultBootstrappers(opts: BootstrapOptions = {}): Bootstrapper[] {
  const out: Bootstrapper[] = []
  const common = {
    ...(opts.clock && { clock: opts.clock }),
    ...(opts.intervalMs && { intervalMs: opts.intervalMs }),
  }
  const publicNetwork = opts.publicNetwork ?? publicNetworkAllowed()
  if (publicNetwork) {
    out.push(
      new AddressBootstrapper(DEFAULT_BOOTSTRAP_ADDRESSES, {
        ...common,
        names: DEFAULT_BOOTSTRAP_NAMES,
        trackers: true,
      }),
    )
  }
  if (opts.addresses !== undefined && opts.addresses.length > 0) {
    out.push(
      new AddressBootstrapper(opts.addresses, { ...common, trackers: opts.addressesAreTrackers ?? false }),
    )
  }
  if (publicNetwork && opts.lanBroadcast !== false) {
    out.push(
      new LanBroadcastBootstrapper({ ...common, ...(opts.transport && { transport: opts.transport }) }),
    )
  }
  return out
}
