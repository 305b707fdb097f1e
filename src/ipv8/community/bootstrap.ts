import { lookup } from 'node:dns/promises'
import { type Clock, logger, systemClock } from '../../common/index.js'
import type { SocketAddress } from '../../net/index.js'
import { BEACON_HEADER } from '../endpoint/index.js'

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
}

/** A source of first contacts for an overlay with no peers. */
export interface Bootstrapper {
  /** Called once when the overlay starts. */
  start(target: BootstrapTarget): void | Promise<void>
  /** Contacts the bootstrap peers, at most once per interval; returns the addresses walked to. */
  bootstrap(target: BootstrapTarget): Promise<SocketAddress[]>
  stop(): void
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
  /** Broadcast address (default 255.255.255.255). */
  broadcastHost?: string
  /** Ports to announce on, inclusive (default every port, 0..65534, as py-ipv8). */
  ports?: readonly [number, number]
  /** Minimum time between two announces (default 30 s). */
  intervalMs?: number
  clock?: Clock
}

/**
 * Finds overlay members on the LAN: broadcasts `"\0\0IPv8\0" || prefix` on every port (py-ipv8's
 * UDPBroadcastBootstrapper) from the overlay's own socket, so members that hear it (see
 * {@link Ipv8Endpoint.onBeacon}) walk to the sender's overlay address. The socket must allow broadcast
 * (SO_BROADCAST); without it the sends fail and are counted as send errors.
 */
export class LanBroadcastBootstrapper implements Bootstrapper {
  readonly #opts: LanBroadcastOptions
  readonly #clock: Clock
  #lastMs = Number.NEGATIVE_INFINITY

  constructor(opts: LanBroadcastOptions = {}) {
    this.#opts = opts
    this.#clock = opts.clock ?? systemClock
  }

  start(): void {}

  bootstrap(target: BootstrapTarget): Promise<SocketAddress[]> {
    const now = this.#clock.monotonic()
    if (now - this.#lastMs < (this.#opts.intervalMs ?? 30_000)) return Promise.resolve([])
    this.#lastMs = now
    const beacon = Buffer.concat([BEACON_HEADER, target.prefix])
    const host = this.#opts.broadcastHost ?? '255.255.255.255'
    const [from, to] = this.#opts.ports ?? [0, 65534]
    for (let port = from; port <= to; port++) target.sendRaw(beacon, { host, port })
    return Promise.resolve([])
  }

  stop(): void {}
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
  intervalMs?: number
  clock?: Clock
}

/**
 * The bootstrappers of a node: the public trackers (when the public network is allowed), the explicit
 * addresses, and LAN broadcast (when allowed and a broadcast socket is given).
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
    out.push(new LanBroadcastBootstrapper(common))
  }
  return out
}
