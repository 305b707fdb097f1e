import {
  type DatagramHandler,
  type DatagramSocket,
  type DatagramStats,
  emptyDatagramStats,
  formatAddress,
  ipFamily,
  type SocketAddress,
} from '../../net/index.js'
import type { Circuit } from './circuit.js'
import type { TunnelCommunity } from './community.js'

/** The address a circuit socket reports as its own: the real source is the exit's, which we do not choose. */
const ANONYMOUS_LOCAL: SocketAddress = { host: '0.0.0.0', port: 0 }

/** A DNS host name (RFC 1123 labels), as a domain destination of a data cell carries it. */
const HOST_NAME =
  /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i

/** Options of {@link circuitDatagramSocket}. */
export interface CircuitSocketOptions {
  /**
   * Called when a circuit closes with the destinations that were sent through it: their next datagrams leave
   * through another circuit, so from another exit address (a uTP peer then sees a new source and the owner
   * should close those connections and dial again).
   */
  readonly onRouteLost?: (destinations: readonly SocketAddress[]) => void
}

/**
 * A {@link DatagramSocket} whose datagrams leave through `hops`-hop circuits: uTP, the DHT and UDP trackers run
 * over it unchanged, and every destination sees only an exit's address. Each destination sticks to one circuit
 * while it lives (a uTP peer must see one source address); replies from any circuit of that length arrive
 * here. Sends while no circuit is ready are dropped and counted in `stats.sendErrors`, as a full socket buffer
 * drops them.
 *
 * A destination may be a host name: it travels in the data cell as a domain address and only the exit resolves
 * it, so no name is ever looked up locally. Replies then come from the address the exit resolved, never from
 * the name: whoever sends to a name matches its replies by content (a UDP tracker's transaction id).
 *
 * @example
 * ```ts
 * const socket = circuitDatagramSocket(tunnels, 2)
 * socket.onMessage((data, from) => tracker.onResponse(data, from))
 * socket.send(connectRequest, { host: '198.51.100.7', port: 6969 })
 * ```
 */
export function circuitDatagramSocket(
  community: TunnelCommunity,
  hops: number,
  options: CircuitSocketOptions = {},
): DatagramSocket {
  return new CircuitSocket(community, hops, options)
}

class CircuitSocket implements DatagramSocket {
  readonly local = ANONYMOUS_LOCAL
  readonly stats: DatagramStats = emptyDatagramStats()
  readonly #community: TunnelCommunity
  readonly #hops: number
  readonly #handlers = new Set<DatagramHandler>()
  readonly #detach = new Map<Circuit, () => void>()
  readonly #sticky = new Map<string, { circuit: Circuit; to: SocketAddress }>()
  readonly #off: (() => void)[]
  readonly #onRouteLost: CircuitSocketOptions['onRouteLost']
  #closed = false

  constructor(community: TunnelCommunity, hops: number, options: CircuitSocketOptions) {
    this.#community = community
    this.#hops = hops
    this.#onRouteLost = options.onRouteLost
    if (!community.circuitsNeeded.has(hops)) community.buildTunnels(hops, community.settings.minCircuits)
    for (const circuit of community.findCircuits({ hops })) this.#attach(circuit)
    this.#off = [
      community.tunnelEvents.on('circuit-ready', ({ circuit }) => {
        if (circuit.goalHops === hops && circuit.purpose === 'data') this.#attach(circuit)
      }),
      community.tunnelEvents.on('circuit-removed', ({ circuit }) => {
        this.#detach.get(circuit)?.()
        this.#detach.delete(circuit)
        const lost: SocketAddress[] = []
        for (const [key, route] of this.#sticky) {
          if (route.circuit !== circuit) continue
          this.#sticky.delete(key)
          lost.push(route.to)
        }
        if (lost.length > 0 && !this.#closed) this.#onRouteLost?.(lost)
      }),
    ]
  }

  send(data: Uint8Array, to: SocketAddress): void {
    if (this.#closed) {
      this.stats.sendErrors += 1
      return
    }
    if (ipFamily(to.host) === 0 && !HOST_NAME.test(to.host)) {
      this.stats.sendErrors += 1
      return
    }
    const key = formatAddress(to)
    let circuit = this.#sticky.get(key)?.circuit
    if (circuit === undefined || circuit.state !== 'ready') {
      const ready = this.#community.findCircuits({ hops: this.#hops })
      circuit = ready[Math.floor(this.#community.random() * ready.length)]
      if (circuit === undefined) {
        this.stats.sendErrors += 1
        return
      }
      this.#sticky.set(key, { circuit, to: { host: to.host, port: to.port } })
    }
    try {
      this.#community.sendData(circuit, to, data)
      this.stats.packetsSent += 1
      this.stats.bytesSent += data.length
    } catch {
      this.stats.sendErrors += 1
    }
  }

  onMessage(handler: DatagramHandler): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const off of this.#off) off()
    for (const detach of this.#detach.values()) detach()
    this.#detach.clear()
    this.#sticky.clear()
    this.#handlers.clear()
  }

  #attach(circuit: Circuit): void {
    if (this.#closed || this.#detach.has(circuit)) return
    this.#detach.set(
      circuit,
      circuit.onData((data, origin) => {
        this.stats.packetsReceived += 1
        this.stats.bytesReceived += data.length
        for (const handler of this.#handlers) handler(data, origin)
      }),
    )
  }
}
