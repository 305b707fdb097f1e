import { type Clock, systemClock } from '../common/clock.js'
import {
  type BindOptions,
  type DatagramHandler,
  type DatagramSocket,
  type DatagramStats,
  type DatagramTransport,
  emptyDatagramStats,
  formatAddress,
  type SocketAddress,
} from './types.js'

/** How the in-memory network treats datagrams: all optional, the default is a perfect link. */
export interface LinkConditions {
  /** Probability in [0, 1] that a datagram is dropped. */
  lossRate?: number
  /** One-way delay in ms (0: delivered on a later tick). */
  latencyMs?: number
  /** Extra random delay in [0, jitterMs) ms; with jitter, datagrams can arrive out of order. */
  jitterMs?: number
  /** Probability in [0, 1] that a datagram is delivered twice. */
  duplicateRate?: number
  /** Datagrams larger than this are dropped, like an IP path MTU. */
  mtuBytes?: number
}

/** Options of a {@link MemoryNetwork}. */
export interface MemoryNetworkOptions extends LinkConditions {
  clock?: Clock
  /** Seed of the network's random numbers, so a lossy run can be replayed. */
  seed?: number
}

/** Counters of the whole in-memory network. */
export interface MemoryNetworkStats {
  delivered: number
  dropped: number
  /** Datagrams sent to an address where nothing is bound. */
  undeliverable: number
}

/** A small deterministic PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The limited broadcast address: the memory network delivers to it on every host, like a LAN. */
const BROADCAST_HOST = '255.255.255.255'

class MemorySocket implements DatagramSocket {
  readonly stats: DatagramStats = emptyDatagramStats()
  readonly #handlers = new Set<DatagramHandler>()
  #closed = false

  constructor(
    readonly local: SocketAddress,
    readonly network: MemoryNetwork,
    readonly broadcast: boolean,
  ) {}

  send(data: Uint8Array, to: SocketAddress): void {
    // as a kernel without SO_BROADCAST answers EACCES
    if (this.#closed || (to.host === BROADCAST_HOST && !this.broadcast)) {
      this.stats.sendErrors += 1
      return
    }
    this.stats.bytesSent += data.length
    this.stats.packetsSent += 1
    this.network.route(this, Buffer.from(data), to)
  }

  onMessage(handler: DatagramHandler): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  deliver(data: Buffer, from: SocketAddress): void {
    if (this.#closed) return
    this.stats.bytesReceived += data.length
    this.stats.packetsReceived += 1
    for (const handler of this.#handlers) handler(data, from)
  }

  get closed(): boolean {
    return this.#closed
  }

  close(): Promise<void> {
    this.#closed = true
    this.network.unbind(this)
    return Promise.resolve()
  }
}

/**
 * An in-process datagram network for fast, deterministic protocol tests: every bound socket gets an address,
 * delivery happens on a later tick (never re-entrantly), and loss, delay, jitter, duplication and MTU can be set
 * for the whole network or for one direction between two addresses. It is one LAN: a datagram to
 * 255.255.255.255 reaches every other socket bound to that port, and only sockets bound with `broadcast` may
 * send one.
 *
 * @example
 * ```ts
 * const net = new MemoryNetwork({ lossRate: 0.05, latencyMs: 10, seed: 7 })
 * const a = await net.bind({ host: '10.0.0.1' })
 * const b = await net.bind({ host: '10.0.0.2' })
 * ```
 */
export class MemoryNetwork implements DatagramTransport {
  readonly stats: MemoryNetworkStats = { delivered: 0, dropped: 0, undeliverable: 0 }
  readonly #sockets = new Map<string, MemorySocket>()
  readonly #links = new Map<string, LinkConditions>()
  readonly #clock: Clock
  readonly #random: () => number
  #conditions: LinkConditions
  #nextPort = 10_000
  #partitioned = new Set<string>()

  constructor(opts: MemoryNetworkOptions = {}) {
    const { clock, seed, ...conditions } = opts
    this.#clock = clock ?? systemClock
    this.#random = seededRandom(seed ?? 1)
    this.#conditions = conditions
  }

  bind(opts: BindOptions = {}): Promise<DatagramSocket> {
    const host = opts.host ?? '127.0.0.1'
    let port = opts.port ?? 0
    if (port === 0) {
      while (this.#sockets.has(formatAddress({ host, port: this.#nextPort }))) this.#nextPort += 1
      port = this.#nextPort++
    }
    const key = formatAddress({ host, port })
    if (this.#sockets.has(key)) return Promise.reject(new Error(`address in use: ${key}`))
    const socket = new MemorySocket({ host, port }, this, opts.broadcast === true)
    this.#sockets.set(key, socket)
    return Promise.resolve(socket)
  }

  /** Changes the conditions of the whole network. */
  setConditions(conditions: LinkConditions): void {
    this.#conditions = conditions
  }

  /** Sets the conditions of datagrams from `from` to `to` (one direction); they replace the network's. */
  setLink(from: SocketAddress, to: SocketAddress, conditions: LinkConditions): void {
    this.#links.set(`${formatAddress(from)}>${formatAddress(to)}`, conditions)
  }

  /** Drops everything sent to or from `host` until {@link MemoryNetwork.heal} is called. */
  partition(host: string): void {
    this.#partitioned.add(host)
  }

  heal(host: string): void {
    this.#partitioned.delete(host)
  }

  /** Addresses with a bound socket. */
  get addresses(): SocketAddress[] {
    return [...this.#sockets.values()].map((socket) => socket.local)
  }

  /** @internal */
  route(from: MemorySocket, data: Buffer, to: SocketAddress): void {
    const conditions =
      this.#links.get(`${formatAddress(from.local)}>${formatAddress(to)}`) ?? this.#conditions
    if (this.#partitioned.has(from.local.host) || this.#partitioned.has(to.host)) {
      this.stats.dropped += 1
      return
    }
    if (conditions.mtuBytes !== undefined && data.length > conditions.mtuBytes) {
      this.stats.dropped += 1
      return
    }
    if ((conditions.lossRate ?? 0) > 0 && this.#random() < (conditions.lossRate ?? 0)) {
      this.stats.dropped += 1
      return
    }
    const copies =
      (conditions.duplicateRate ?? 0) > 0 && this.#random() < (conditions.duplicateRate ?? 0) ? 2 : 1
    for (let i = 0; i < copies; i++) {
      const delay = (conditions.latencyMs ?? 0) + (conditions.jitterMs ?? 0) * this.#random()
      const deliver = (): void => {
        if (to.host === BROADCAST_HOST) {
          let reached = 0
          for (const socket of this.#sockets.values()) {
            if (socket.local.port !== to.port || socket === from || socket.closed) continue
            reached += 1
            socket.deliver(data, from.local)
          }
          if (reached === 0) this.stats.undeliverable += 1
          else this.stats.delivered += reached
          return
        }
        const target = this.#sockets.get(formatAddress(to))
        if (target === undefined || target.closed) {
          this.stats.undeliverable += 1
          return
        }
        this.stats.delivered += 1
        target.deliver(data, from.local)
      }
      if (delay > 0) this.#clock.setTimeout(deliver, delay)
      else setImmediate(deliver)
    }
  }

  /** @internal */
  unbind(socket: MemorySocket): void {
    const key = formatAddress(socket.local)
    if (this.#sockets.get(key) === socket) this.#sockets.delete(key)
  }
}
