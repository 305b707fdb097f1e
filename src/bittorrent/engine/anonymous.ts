import { randomBytes, randomInt } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { Clock, Logger } from '../../common/index.js'
import { circuitDatagramSocket, maxCircuitPayload, type TunnelCommunity } from '../../ipv8/index.js'
import { type DatagramSocket, formatAddress, type SocketAddress } from '../../net/index.js'
import { DhtNode } from '../dht/index.js'
import type { PeerConnection, PeerConnector } from '../download/index.js'
import { TrackerError, UdpTrackerClient } from '../tracker/index.js'
import { UtpSocket } from '../utp/index.js'
import { EngineError, PEER_ID_PREFIX } from './types.js'

/** What the anonymous transports take from the engine. */
export interface AnonymousDeps {
  /** The running tunnel community, or undefined when IPv8 or `tunnel_community.enabled` is off. */
  readonly tunnels: () => TunnelCommunity | undefined
  readonly clock: Clock
  readonly logger: Logger
  /** Wraps every peer stream (the session's rate limits). */
  readonly wrap: (stream: Duplex) => Duplex
  /** The DHT settings for the anonymous DHT nodes, or undefined when the DHT is off (`libtorrent.dht`). */
  readonly dht: () => AnonymousDhtOptions | undefined
  /** An incoming uTP connection that reached us through a circuit of `hops` hops. */
  readonly onIncoming: (stream: Duplex, address: SocketAddress, transport: AnonymousTransport) => void
}

/** How anonymous DHT nodes find the DHT: its routers (default: the public ones on the public network). */
export interface AnonymousDhtOptions {
  readonly publicNetwork: boolean
  readonly bootstrap?: ReadonlyArray<string | SocketAddress>
}

/**
 * The network of the anonymous downloads of one hop count, as libtorrent's second session behind Tribler's
 * SOCKS5 proxy is: one datagram socket whose datagrams leave through circuits of `hops` hops, carrying uTP peers
 * UDP trackers and a DHT node of its own. It has no TCP, no HTTP trackers, no LSD and no direct socket at all, so nothing it does can
 * reach the swarm except through an exit. Its peer id and announced port are its own, unrelated to the direct
 * ones, so peers cannot link the two.
 */
export class AnonymousTransport {
  readonly hops: number
  /** Our peer id towards the swarms of these downloads. */
  readonly peerId: Buffer
  /** The port announced to trackers (nothing listens on it: peers reach us only through circuits we open). */
  readonly announcePort: number
  readonly socket: DatagramSocket
  readonly utp: UtpSocket
  readonly udpTracker: UdpTrackerClient
  /** A DHT node of its own whose every message goes through the circuits, when the DHT is on. */
  readonly dht: DhtNode | undefined
  #dhtStarted: Promise<void> | undefined
  readonly #community: TunnelCommunity
  readonly #deps: AnonymousDeps
  readonly #offIncoming: () => void

  constructor(community: TunnelCommunity, hops: number, identity: AnonymousIdentity, deps: AnonymousDeps) {
    this.hops = hops
    this.#community = community
    this.#deps = deps
    this.peerId = identity.peerId
    this.announcePort = identity.announcePort
    // Asks the community to keep its minimum of circuits of this length.
    this.socket = circuitDatagramSocket(community, hops, { onRouteLost: (lost) => this.#onRouteLost(lost) })
    this.utp = new UtpSocket(
      { socket: this.socket, clock: deps.clock },
      { packetBytes: maxCircuitPayload(hops) },
    )
    this.udpTracker = new UdpTrackerClient(
      { socket: this.socket, clock: deps.clock, lookup: refuseLocalLookup },
      // A tracker's host name goes through the circuit as a domain address and the exit resolves it: asking
      // the local resolver would tell it (and whoever watches our DNS) which trackers we talk to.
      { receive: 'external', hostNames: 'remote' },
    )
    const tracker = this.udpTracker
    const dhtOptions = deps.dht()
    this.dht =
      dhtOptions === undefined
        ? undefined
        : new DhtNode(
            { socket: this.socket, clock: deps.clock },
            {
              receive: 'external',
              publicNetwork: dhtOptions.publicNetwork,
              ...(dhtOptions.bootstrap !== undefined && { bootstrap: dhtOptions.bootstrap }),
            },
          )
    const dht = this.dht
    this.utp.onFallback((data, from) => {
      if (dht?.handleDatagram(data, from) === true) return
      tracker.handleDatagram(data, from)
    })
    this.utp.listen()
    this.#offIncoming = this.utp.events.on('connection', (conn) =>
      deps.onIncoming(conn, { host: conn.remote.host, port: conn.remote.port }, this),
    )
  }

  /** Whether a circuit of this length is ready to carry data. */
  get ready(): boolean {
    return this.#community.running && this.#community.findCircuits({ hops: this.hops }).length > 0
  }

  /** Resolves once a circuit of this length is ready; rejects when `signal` aborts. */
  whenReady(signal: AbortSignal): Promise<void> {
    if (this.ready) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const off = this.#community.tunnelEvents.on('circuit-ready', ({ circuit }) => {
        if (circuit.goalHops !== this.hops) return
        cleanup()
        resolve()
      })
      const onAbort = (): void => {
        cleanup()
        reject(signal.reason)
      }
      const cleanup = (): void => {
        off()
        signal.removeEventListener('abort', onAbort)
      }
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Dials a peer over uTP through a circuit; the only way these downloads reach a peer. */
  readonly connector: PeerConnector = async (peer, { signal }) => {
    const conn = await this.utp.connect(peer, { signal })
    return { stream: this.#deps.wrap(conn), transport: 'utp' } satisfies PeerConnection
  }

  /**
   * The DHT node, started and bootstrapped through a ready circuit on first use (again after a failed
   * bootstrap); undefined when the DHT is off.
   */
  async startedDht(): Promise<DhtNode | undefined> {
    const dht = this.dht
    if (dht === undefined) return undefined
    this.#dhtStarted ??= (async () => {
      await dht.start()
      await dht.bootstrap()
      if (dht.nodes().length === 0) throw new Error('no DHT node answered')
    })().catch((err: unknown) => {
      this.#dhtStarted = undefined
      throw err
    })
    await this.#dhtStarted
    return dht
  }

  async close(): Promise<void> {
    this.#offIncoming()
    await this.dht?.stop()
    this.udpTracker.close()
    await this.utp.close()
    await this.socket.close()
  }

  /** A circuit closed: connections through it now leave from another exit, which the peer does not know. */
  #onRouteLost(lost: readonly SocketAddress[]): void {
    const keys = new Set(lost.map(formatAddress))
    let closed = 0
    for (const conn of this.utp.connections) {
      if (!keys.has(formatAddress(conn.remote))) continue
      conn.destroy()
      closed++
    }
    if (closed > 0)
      this.#deps.logger.debug('circuit lost, peers will be redialled', { hops: this.hops, closed })
  }
}

/** What the swarms of one hop count know us by, for the engine's run. */
export interface AnonymousIdentity {
  readonly peerId: Buffer
  readonly announcePort: number
}

/**
 * The anonymous transports of an engine, one per hop count, made when the first download of that hop count
 * starts and closed with the engine.
 */
export class AnonymousTransports {
  readonly #deps: AnonymousDeps
  readonly #byHops = new Map<number, { community: TunnelCommunity; transport: AnonymousTransport }>()
  readonly #identities = new Map<number, AnonymousIdentity>()

  constructor(deps: AnonymousDeps) {
    this.#deps = deps
  }

  /** Throws an `EngineError` when downloads of `hops` hops cannot run. */
  check(hops: number): void {
    if (!Number.isInteger(hops) || hops < 0 || hops > 3) {
      throw new EngineError('ANON_NOT_SUPPORTED', { hops }, `Anonymity hops must be 0 to 3, not ${hops}`)
    }
    if (hops > 0 && this.#deps.tunnels() === undefined) {
      throw new EngineError(
        'ANON_NOT_SUPPORTED',
        { hops },
        'Anonymous downloads need the tunnel community (ipv8.enabled and tunnel_community.enabled); add it with 0 hops or turn them on',
      )
    }
  }

  /** Our peer id and announced port in swarms of `hops` hops: random, different per hop count. */
  identity(hops: number): AnonymousIdentity {
    let identity = this.#identities.get(hops)
    if (identity === undefined) {
      identity = {
        peerId: Buffer.concat([Buffer.from(PEER_ID_PREFIX, 'latin1'), randomBytes(12)]),
        announcePort: randomInt(1024, 65536),
      }
      this.#identities.set(hops, identity)
    }
    return identity
  }

  /** The transport of `hops` hops (1–3), made on first use. */
  get(hops: number): AnonymousTransport {
    this.check(hops)
    const community = this.#deps.tunnels()!
    const known = this.#byHops.get(hops)
    if (known !== undefined && known.community === community) return known.transport
    if (known !== undefined) void known.transport.close()
    const transport = new AnonymousTransport(community, hops, this.identity(hops), this.#deps)
    this.#byHops.set(hops, { community, transport })
    return transport
  }

  /** The transports made so far. */
  get all(): readonly AnonymousTransport[] {
    return [...this.#byHops.values()].map((e) => e.transport)
  }

  async close(): Promise<void> {
    const all = this.all
    this.#byHops.clear()
    await Promise.allSettled(all.map((t) => t.close()))
  }
}

/**
 * The resolver the anonymous UDP tracker client holds: it resolves names at the exit (`hostNames: 'remote'`), so
 * this is never called; if it were, the lookup is refused rather than leaked outside the circuits.
 */
async function refuseLocalLookup(host: string): Promise<string[]> {
  throw new TrackerError('INVALID_REQUEST', {
    host,
    reason: 'anonymous downloads never resolve host names locally',
  })
}
