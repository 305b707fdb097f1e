import { join } from 'node:path'
import { type Clock, logger, type Service, systemClock } from '../common/index.js'
import {
  batchedUdpTransport,
  type DatagramSocket,
  type DatagramTransport,
  type SocketAddress,
  udpTransport,
} from '../net/index.js'
import type { Community, CommunityDeps } from './community/index.js'
import { DHTDiscoveryCommunity, DhtIntroPointProvider } from './dht/index.js'
import { DiscoveryCommunity } from './discovery/index.js'
import { Ipv8Endpoint } from './endpoint/index.js'
import { Ipv8Error } from './errors.js'
import { loadOrCreateKeyFile, type PrivateKey } from './keys/index.js'
import { HiddenTunnelCommunity, TriblerTunnelCommunity, TunnelCommunity } from './tunnel/index.js'

const log = logger('ipv8')

/** The default IPv8 UDP port. */
export const DEFAULT_IPV8_PORT = 8090
/** The key file in the state's `keys/` folder (Tribler's name; raw LibNaCL key bin, mode 0600). */
export const KEY_FILE_NAME = 'ec_multichain.pem'

/** The settings the service reads (a subset of the session's config). */
export interface Ipv8Config {
  getBoolean(section: string, key: string): boolean
  getString(section: string, key: string): string
  getNumber(section: string, key: string): number
}

/** What the IPv8 service needs from the session. */
export interface Ipv8ServiceDeps {
  readonly config: Ipv8Config
  /** False: no public trackers, no LAN broadcast (explicit bootstrap addresses still work). */
  readonly publicNetwork: boolean
  readonly paths: { readonly keys: string }
  readonly ports?: { set(name: string, port: number): void }
  readonly clock?: Clock
}

/** Options of an {@link Ipv8Service}. */
export interface Ipv8ServiceOptions {
  /** Where the socket comes from (default real UDP: the native batched socket when its addon loads). */
  transport?: DatagramTransport
  /** UDP port; default `dispersy.port`, or 8090 (then any free port) when that is -1. */
  port?: number
  /** Bootstrap addresses; default `ipv8.bootstrap_override` (`host:port`). */
  bootstrap?: SocketAddress[]
  /** Where tunnel exit sockets come from (default real UDP, batched as the endpoint's). */
  exitTransport?: DatagramTransport
}

/** A community added to the service: built once the endpoint and key exist. */
export type OverlayFactory = (deps: CommunityDeps, service: Ipv8Service) => Community

/**
 * The IPv8 part of the core: the identity key (created on first start), one UDP socket and its endpoint, the
 * DiscoveryCommunity, the DHT (DHTDiscoveryCommunity, when `dht.enabled`), Tribler's tunnel community (when
 * `tunnel_community.enabled`; an exit when `tunnel_community.exitnode_enabled`), which announces and finds
 * hidden-service introduction points in that DHT and runs a PEX overlay per swarm it introduces, and every
 * overlay added with {@link Ipv8Service.addOverlay}. Every overlay walks from the same bootstrap list: the public
 * trackers unless the public network is off, and the explicit bootstrap addresses.
 * Stops the overlays in reverse order, then the endpoint and the socket.
 *
 * @example
 * ```ts
 * const ipv8 = session.addService((deps) => new Ipv8Service(deps), { readableState: 'Loading communities...' })
 * ipv8.addOverlay((deps) => new TunnelCommunity(deps, settings))
 * ```
 */
export class Ipv8Service implements Service {
  readonly name = 'ipv8'
  readonly #deps: Ipv8ServiceDeps
  readonly #opts: Ipv8ServiceOptions
  readonly #factories: OverlayFactory[] = []
  readonly #overlays: Community[] = []
  #socket: DatagramSocket | undefined
  #endpoint: Ipv8Endpoint | undefined
  #key: PrivateKey | undefined
  #startedMs: number | undefined

  constructor(deps: Ipv8ServiceDeps, opts: Ipv8ServiceOptions = {}) {
    this.#deps = deps
    this.#opts = opts
  }

  /** Whether `ipv8.enabled` is on. */
  get enabled(): boolean {
    return this.#deps.config.getBoolean('ipv8', 'enabled')
  }

  /**
   * Whether per-overlay message statistics can be reported (`ipv8.statistics`, py-ipv8's StatisticsEndpoint):
   * then every overlay reports them from start, and each can be turned off and on again.
   */
  get statisticsSupported(): boolean {
    return this.#deps.config.getBoolean('ipv8', 'statistics')
  }

  /** Adds an overlay; call before `start()`. */
  addOverlay(factory: OverlayFactory): void {
    if (this.#endpoint !== undefined)
      throw new Ipv8Error('NOT_RUNNING', { reason: 'add overlays before start' })
    this.#factories.push(factory)
  }

  /** The running overlays, DiscoveryCommunity first, then the PEX overlays of the swarms we introduce. */
  get overlays(): readonly Community[] {
    const tunnels = this.tunnels
    const pex = tunnels instanceof HiddenTunnelCommunity ? tunnels.pexCommunities : []
    return pex.length === 0 ? this.#overlays : [...this.#overlays, ...pex]
  }

  /** The DHT community, while it runs. */
  get dht(): DHTDiscoveryCommunity | undefined {
    return this.#overlays.find((o): o is DHTDiscoveryCommunity => o instanceof DHTDiscoveryCommunity)
  }

  /** The tunnel community, while it runs. */
  get tunnels(): TunnelCommunity | undefined {
    return this.#overlays.find((o): o is TunnelCommunity => o instanceof TunnelCommunity)
  }

  /** The endpoint, once started. */
  get endpoint(): Ipv8Endpoint | undefined {
    return this.#endpoint
  }

  /** Our identity, once started. */
  get key(): PrivateKey | undefined {
    return this.#key
  }

  /** The endpoint's socket, once started. */
  get socket(): DatagramSocket | undefined {
    return this.#socket
  }

  /** The bound UDP address, once started. */
  get address(): SocketAddress | undefined {
    return this.#socket?.local
  }

  /** `GET /statistics/ipv8`'s body: empty when IPv8 is not running. */
  statistics(): { total_up: number; total_down: number; session_uptime: number } | Record<string, never> {
    const endpoint = this.#endpoint
    if (endpoint === undefined || this.#startedMs === undefined) return {}
    const total = endpoint.stats.total
    const clock = this.#deps.clock ?? systemClock
    return {
      total_up: total.bytesOut,
      total_down: total.bytesIn,
      session_uptime: (clock.now() - this.#startedMs) / 1000,
    }
  }

  async start(): Promise<void> {
    if (!this.enabled) {
      log.info('IPv8 is disabled')
      return
    }
    const clock = this.#deps.clock ?? systemClock
    this.#key = await loadOrCreateKeyFile(join(this.#deps.paths.keys, KEY_FILE_NAME))
    this.#socket = await this.#bind()
    this.#deps.ports?.set('dispersy~port', this.#socket.local.port)
    const endpoint = new Ipv8Endpoint({ socket: this.#socket, clock })
    this.#endpoint = endpoint
    const bootstrap =
      this.#opts.bootstrap ?? parseBootstrap(this.#deps.config.getString('ipv8', 'bootstrap_override'))
    const deps: CommunityDeps = {
      endpoint,
      key: this.#key,
      clock,
      publicNetwork: this.#deps.publicNetwork,
      bootstrapAddresses: bootstrap,
      transport: this.#opts.transport ?? udpTransport,
    }
    this.#overlays.push(
      new DiscoveryCommunity(deps, { services: () => this.#overlays.map((o) => o.communityId) }),
    )
    const dht = this.#deps.config.getBoolean('dht', 'enabled') ? new DHTDiscoveryCommunity(deps) : undefined
    if (dht !== undefined) this.#overlays.push(dht)
    if (this.#deps.config.getBoolean('tunnel_community', 'enabled')) {
      const tunnels = this.#tunnelCommunity(deps)
      if (dht !== undefined) tunnels.introPointDirectory = new DhtIntroPointProvider(dht)
      this.#overlays.push(tunnels)
    }
    for (const factory of this.#factories) this.#overlays.push(factory(deps, this))
    for (const overlay of this.#overlays) await overlay.start()
    if (this.statisticsSupported) for (const overlay of this.#overlays) overlay.enableStatistics(true)
    this.#startedMs = clock.now()
    log.info('IPv8 started', { port: this.#socket.local.port, overlays: this.#overlays.length })
  }

  async stop(): Promise<void> {
    for (const overlay of [...this.#overlays].reverse()) await overlay.stop()
    this.#endpoint?.close()
    await this.#socket?.close()
    this.#endpoint = undefined
    this.#socket = undefined
    this.#startedMs = undefined
  }

  #tunnelCommunity(deps: CommunityDeps): HiddenTunnelCommunity {
    const config = this.#deps.config
    const positive = (key: string, fallback: number): number => {
      const value = config.getNumber('tunnels', key)
      return Number.isInteger(value) && value > 0 ? value : fallback
    }
    const minCircuits = positive('min_circuits', 3)
    const host = config.getString('ipv8', 'address')
    return new TriblerTunnelCommunity(
      { ...deps, ...(this.#opts.exitTransport !== undefined && { exitTransport: this.#opts.exitTransport }) },
      {
        tunnel: {
          exit: config.getBoolean('tunnel_community', 'exitnode_enabled'),
          minCircuits,
          maxCircuits: Math.max(minCircuits, positive('max_circuits', 8)),
          relaySlots: {
            random: Math.max(0, config.getNumber('tunnel_community', 'random_slots')),
            competing: Math.max(0, config.getNumber('tunnel_community', 'competing_slots')),
          },
        },
        ...(host !== '' && host !== '0.0.0.0' && { exitBindHost: host }),
      },
    )
  }

  async #bind(): Promise<DatagramSocket> {
    // the endpoint carries every tunnel cell: the batched socket when the native addon is there
    const transport = this.#opts.transport ?? batchedUdpTransport
    const host = this.#deps.config.getString('ipv8', 'address') || '0.0.0.0'
    const configured = this.#opts.port ?? this.#deps.config.getNumber('dispersy', 'port')
    if (configured >= 0 && configured <= 65535) return transport.bind({ host, port: configured })
    try {
      return await transport.bind({ host, port: DEFAULT_IPV8_PORT })
    } catch {
      return transport.bind({ host, port: 0 })
    }
  }
}

/** Parses `ipv8.bootstrap_override`: `host:port`, several separated by commas or spaces. */
export function parseBootstrap(text: string): SocketAddress[] {
  const out: SocketAddress[] = []
  for (const item of text.split(/[\s,]+/)) {
    const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(item)
    if (match === null) continue
    const port = Number(match[2])
    if (port > 0 && port <= 65535) out.push({ host: match[1] as string, port })
  }
  return out
}
