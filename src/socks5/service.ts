import { logger, type Service } from '../common/index.js'
import { circuitDatagramSocket, type TunnelCommunity } from '../ipv8/index.js'
import type { DatagramSocket, DatagramTransport } from '../net/index.js'
import { Socks5Server } from './server.js'
import type { AssociationInfo, Socks5Credentials, Socks5Stats } from './types.js'

const log = logger('socks5')

/** The settings the service reads. */
export interface Socks5Config {
  get(section: string, key: string): unknown
  getString(section: string, key: string): string
  getNumber(section: string, key: string): number
}

/** What the SOCKS5 service needs from the session. */
export interface Socks5ServiceDeps {
  readonly config: Socks5Config
  readonly ports?: { set(name: string, port: number): void }
}

/** Options of a {@link Socks5Service}. */
export interface Socks5ServiceOptions {
  /**
   * The socket datagrams of the `hops`-hop proxy leave through, or undefined when anonymous traffic cannot be
   * carried (the tunnel community is not running): then no server is started.
   */
  readonly upstream: (hops: number) => (() => DatagramSocket | Promise<DatagramSocket>) | undefined
  /** Hop counts served, from 1; default 3 (the tunnel's maximum). */
  readonly maxHops?: number
  readonly relayTransport?: DatagramTransport
}

/** One server of the service, as `ports` and the slots view show it. */
export interface Socks5ProxyInfo {
  readonly hops: number
  readonly port: number
  readonly associations: AssociationInfo[]
  readonly stats: Socks5Stats
}

/** The port registry prefix: Tribler's `tunnel_community~socks5_listen_ports~<index>`. */
export const SOCKS5_PORT_KEY = 'tunnel_community~socks5_listen_ports~'

/**
 * Tribler's anonymous SOCKS5 proxies: one {@link Socks5Server} per hop count (1 to 3) on 127.0.0.1, each relaying
 * its clients' UDP through circuits of that length. Ports come from `tunnel_community.socks5_listen_ports` (entry
 * `n - 1` for `n` hops; -1 or a missing entry picks a free port) and are published in the port registry as
 * `tunnel_community~socks5_listen_ports~<n - 1>`. With `libtorrent.anon_proxy_type` 3 (SOCKS5 with
 * authentication), clients must give `libtorrent.anon_proxy_auth` (`user:password`). Runs only while the tunnel community does.
 *
 * @example
 * ```ts
 * session.addService((deps) => new Socks5Service(deps, { upstream: (hops) => () => circuitDatagramSocket(t, hops) }))
 * ```
 */
export class Socks5Service implements Service {
  readonly name = 'socks5'
  readonly #deps: Socks5ServiceDeps
  readonly #opts: Socks5ServiceOptions
  readonly #servers = new Map<number, Socks5Server>()

  constructor(deps: Socks5ServiceDeps, opts: Socks5ServiceOptions) {
    this.#deps = deps
    this.#opts = opts
  }

  /** The proxy serving `hops`-hop circuits, while it runs. */
  server(hops: number): Socks5Server | undefined {
    return this.#servers.get(hops)
  }

  /** The running proxies, by hop count. */
  proxies(): Socks5ProxyInfo[] {
    return [...this.#servers].map(([hops, server]) => ({
      hops,
      port: server.address?.port ?? 0,
      associations: server.associations(),
      stats: server.stats,
    }))
  }

  async start(): Promise<void> {
    const ports = configuredPorts(this.#deps.config.get('tunnel_community', 'socks5_listen_ports'))
    // Proxy type 3 is "SOCKS5 with authentication" (libtorrent's numbering, as in the settings).
    const credentials =
      this.#deps.config.getNumber('libtorrent', 'anon_proxy_type') === 3
        ? parseCredentials(this.#deps.config.getString('libtorrent', 'anon_proxy_auth'))
        : undefined
    const maxHops = this.#opts.maxHops ?? 3
    try {
      for (let hops = 1; hops <= maxHops; hops++) {
        const upstream = this.#opts.upstream(hops)
        if (upstream === undefined) {
          log.info('anonymous SOCKS5 proxy not started: the tunnel community is not running')
          return
        }
        const configured = ports[hops - 1] ?? -1
        const server = new Socks5Server({
          port: configured >= 0 && configured <= 65535 ? configured : 0,
          upstream,
          label: `hops=${hops}`,
          ...(credentials !== undefined && { credentials }),
          ...(this.#opts.relayTransport !== undefined && { relayTransport: this.#opts.relayTransport }),
        })
        await server.start()
        this.#servers.set(hops, server)
        this.#deps.ports?.set(`${SOCKS5_PORT_KEY}${hops - 1}`, server.address?.port ?? 0)
      }
    } catch (err) {
      await this.stop()
      throw err
    }
    log.info('anonymous SOCKS5 proxies listening', { ports: this.proxies().map((p) => p.port) })
  }

  async stop(): Promise<void> {
    const servers = [...this.#servers.values()].reverse()
    this.#servers.clear()
    for (const server of servers) await server.stop()
  }
}

/**
 * The production upstream: the `hops`-hop circuits of the tunnel community `tunnels()` returns, or none while it
 * is not running.
 *
 * @example
 * ```ts
 * new Socks5Service(deps, { upstream: circuitUpstream(() => ipv8.tunnels) })
 * ```
 */
export function circuitUpstream(
  tunnels: () => TunnelCommunity | undefined,
): (hops: number) => (() => DatagramSocket) | undefined {
  return (hops) => {
    const community = tunnels()
    return community?.running === true ? () => circuitDatagramSocket(community, hops) : undefined
  }
}

/** `socks5_listen_ports` entries as numbers (strings in the settings file; bad entries count as -1). */
function configuredPorts(value: unknown): number[] {
  if (!Array.isArray(value)) return []
  return value.map((item) => {
    const port = Number(item)
    return Number.isInteger(port) ? port : -1
  })
}

/** `user:password`, or undefined when empty or without a colon. */
export function parseCredentials(text: string): Socks5Credentials | undefined {
  const colon = text.indexOf(':')
  if (text === '' || colon < 0) return undefined
  return { username: text.slice(0, colon), password: text.slice(colon + 1) }
}
