import { createServer, type Server, type Socket } from 'node:net'
import { logger } from '../common/index.js'
import {
  batchedUdpTransport,
  canonicalHost,
  type DatagramSocket,
  type DatagramTransport,
  formatAddress,
  type SocketAddress,
} from '../net/index.js'
import { decodeUdpDatagram, encodeUdpDatagram } from './codec.js'
import { type ControlStep, Socks5Control } from './control.js'
import { type AssociationInfo, Socks5Error, type Socks5ServerOptions, type Socks5Stats } from './types.js'

const log = logger('socks5')

/** Largest UDP payload over IPv4, less the longest SOCKS5 UDP header (domain of 255 bytes). */
const DEFAULT_MAX_PAYLOAD_BYTES = 65507 - 262
const DEFAULT_MAX_ASSOCIATIONS = 64
const EMPTY = Buffer.alloc(0)
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000
/** Destinations remembered per association to route replies; beyond this the oldest are forgotten. */
const MAX_DESTINATIONS = 4096
/** A destination an association has not sent to for this long no longer gets its replies. */
const DESTINATION_TTL_MS = 10 * 60_000
/** A destination's last-send time is moved to the back of the eviction order at most this often. */
const DESTINATION_REFRESH_MS = 1_000

function emptyStats(): Socks5Stats {
  return {
    connections: 0,
    associationsOpened: 0,
    refused: { command: 0, auth: 0, method: 0, limit: 0, malformed: 0, timeout: 0 },
    datagramsUp: 0,
    bytesUp: 0,
    datagramsDown: 0,
    bytesDown: 0,
    dropped: {
      malformed: 0,
      fragmented: 0,
      foreignSource: 0,
      oversize: 0,
      upstreamFailed: 0,
      noClient: 0,
      unsolicited: 0,
    },
  }
}

/** Reply headers kept per origin; a uTP swarm has few origins per proxy, so the cache rarely refills. */
const HEADER_CACHE_SIZE = 1024

/** `canonicalHost`, skipping the IPv6 parse for the common IPv4 and domain cases. */
const canonical = (host: string): string => (host.includes(':') ? canonicalHost(host) : host)

const isUnspecified = (host: string): boolean => host === '0.0.0.0' || host === '::' || host === ''

/** An IPv4 or IPv6 literal, as opposed to a domain name the exit resolves. */
const isIpLiteral = (host: string): boolean => host.includes(':') || /^[0-9.]+$/.test(host)

/**
 * Where one association has sent, with the time it last did, oldest first; bounded in size and age. A domain
 * destination is also remembered by its port alone: the exit resolves the name, so its replies come from an
 * address the association never named, and the first one of them is learnt as a destination of its own.
 */
class Destinations {
  readonly #sent = new Map<string, number>()
  readonly #domainPorts = new Map<number, number>()

  get size(): number {
    return this.#sent.size
  }

  /** Records a datagram sent to `key` (a formatted address) at `now`. */
  sent(key: string, now: number, domainPort?: number): void {
    remember(this.#sent, key, now)
    if (domainPort !== undefined) remember(this.#domainPorts, domainPort, now)
  }

  /** Whether a datagram from `key` (a formatted address with that port) answers one sent by this association. */
  answers(key: string, port: number, now: number): boolean {
    if (fresh(this.#sent, key, now)) return true
    if (!fresh(this.#domainPorts, port, now)) return false
    remember(this.#sent, key, now)
    return true
  }
}

function remember<K>(map: Map<K, number>, key: K, now: number): void {
  const last = map.get(key)
  if (last !== undefined) {
    if (now - last < DESTINATION_REFRESH_MS) return
    map.delete(key)
  } else if (map.size >= MAX_DESTINATIONS) {
    const oldest = map.keys().next()
    if (oldest.done !== true) map.delete(oldest.value)
  }
  map.set(key, now)
}

function fresh<K>(map: Map<K, number>, key: K, now: number): boolean {
  const last = map.get(key)
  if (last === undefined) return false
  if (now - last <= DESTINATION_TTL_MS) return true
  map.delete(key)
  return false
}

/** A UDP association: the client-side relay socket and where its datagrams go. */
class Association {
  readonly control: SocketAddress
  readonly relay: DatagramSocket
  /** Only datagrams from this host (and port, once known) are relayed. */
  readonly clientHost: string
  clientPort: number
  readonly destinations = new Destinations()
  datagramsUp = 0
  datagramsDown = 0

  constructor(control: SocketAddress, relay: DatagramSocket, declared: SocketAddress) {
    this.control = control
    this.relay = relay
    // RFC 1928 §7: the request carries the address the client will send from; zeros mean "not known yet".
    this.clientHost = canonicalHost(isUnspecified(declared.host) ? control.host : declared.host)
    this.clientPort = declared.port
  }

  get client(): SocketAddress | undefined {
    return this.clientPort === 0 ? undefined : { host: this.clientHost, port: this.clientPort }
  }

  info(): AssociationInfo {
    return {
      control: this.control,
      relay: this.relay.local,
      client: this.client,
      destinations: this.destinations.size,
      datagramsUp: this.datagramsUp,
      datagramsDown: this.datagramsDown,
    }
  }
}

/**
 * A SOCKS5 server (RFC 1928) that relays UDP only, as Tribler's anonymous proxy does: a client (libtorrent)
 * opens a TCP control connection, asks for UDP ASSOCIATE and gets a UDP relay port on the same host. Each
 * datagram it sends there carries the SOCKS5 UDP header with the real destination; the server strips it and
 * sends the payload through the upstream socket (a plain UDP socket in tests, the circuits of one hop count in
 * the core). Replies come back wrapped in a header with their origin. Destination host names are passed on
 * unresolved, so a circuit's exit resolves them and the client's resolver never sees them. An association
 * lives as long as its control connection. Fragmented datagrams (FRAG ≠ 0) are dropped (§7 allows it).
 *
 * @example
 * ```ts
 * const server = new Socks5Server({ port: 0, upstream: () => circuitDatagramSocket(tunnels, 1) })
 * await server.start()
 * // libtorrent: proxy_type socks5, proxy_hostname 127.0.0.1, proxy_port server.address.port
 * ```
 */
export class Socks5Server {
  readonly stats: Socks5Stats = emptyStats()
  readonly #opts: Socks5ServerOptions
  readonly #relayTransport: DatagramTransport
  readonly #associations = new Set<Association>()
  readonly #connections = new Set<Socket>()
  #server: Server | undefined
  #address: SocketAddress | undefined
  #upstream: Promise<DatagramSocket> | undefined
  /** Associations granted but still binding their relay; they count against the limit. */
  #pending = 0
  readonly #headers = new Map<string, Buffer>()
  #stopping = false

  constructor(opts: Socks5ServerOptions) {
    this.#opts = opts
    this.#relayTransport = opts.relayTransport ?? batchedUdpTransport
  }

  /** The TCP address it listens on, once started. */
  get address(): SocketAddress | undefined {
    return this.#address
  }

  /** The live UDP associations. */
  associations(): AssociationInfo[] {
    return [...this.#associations].map((a) => a.info())
  }

  /** The upstream socket's counters, once the first association made it. */
  async upstreamStats(): Promise<DatagramSocket['stats'] | undefined> {
    return (await this.#upstream)?.stats
  }

  /** Listens; rejects with `LISTEN_FAILED` when the port is taken. */
  async start(): Promise<void> {
    if (this.#server !== undefined) throw new Socks5Error('LISTEN_FAILED', { reason: 'already started' })
    const host = this.#opts.host ?? '127.0.0.1'
    const server = createServer({ noDelay: true }, (socket) => this.#onConnection(socket))
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new Socks5Error('LISTEN_FAILED', { host, port: this.#opts.port, cause: err })),
      )
      server.listen({ host, port: this.#opts.port, exclusive: true }, () => resolve())
    })
    server.on('error', (err) => log.debug('server error', { err }))
    const bound = server.address()
    if (bound === null || typeof bound === 'string') throw new Socks5Error('LISTEN_FAILED', { host })
    this.#server = server
    this.#address = { host: bound.address, port: bound.port }
    log.debug('listening', { label: this.#opts.label, port: bound.port })
  }

  /** Closes every connection and association, the upstream socket, then the listener. */
  async stop(): Promise<void> {
    this.#stopping = true
    for (const socket of this.#connections) socket.destroy()
    this.#connections.clear()
    await Promise.all([...this.#associations].map((a) => this.#closeAssociation(a)))
    const upstream = this.#upstream
    this.#upstream = undefined
    if (upstream !== undefined) await upstream.then((u) => u.close()).catch(() => undefined)
    const server = this.#server
    this.#server = undefined
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  #onConnection(socket: Socket): void {
    if (this.#stopping) {
      socket.destroy()
      return
    }
    this.stats.connections += 1
    this.#connections.add(socket)
    const control = new Socks5Control(this.#opts.credentials)
    const peer: SocketAddress = {
      host: canonicalHost(socket.remoteAddress ?? '127.0.0.1'),
      port: socket.remotePort ?? 0,
    }
    let association: Association | undefined
    const timer = setTimeout(() => {
      this.stats.refused.timeout += 1
      socket.destroy()
    }, this.#opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS)
    timer.unref()

    const run = (steps: ControlStep[]): void => {
      for (const step of steps) {
        if (step.kind === 'write') socket.write(step.data)
        else if (step.kind === 'close') {
          this.stats.refused[step.reason] += 1
          clearTimeout(timer)
          socket.end()
          socket.destroySoon()
        } else {
          clearTimeout(timer)
          this.#associate(peer, step.client, socket).then(
            (made) => {
              association = made
              if (socket.destroyed) {
                if (made !== undefined) void this.#closeAssociation(made)
                return
              }
              run(control.associated(made?.relay.local))
            },
            (err) => {
              log.debug('association failed', { err })
              run(control.associated(undefined))
            },
          )
        }
      }
    }

    socket.on('data', (data) => run(control.push(data)))
    socket.on('error', (err) => log.debug('control connection error', { err }))
    socket.on('close', () => {
      clearTimeout(timer)
      this.#connections.delete(socket)
      if (association !== undefined) void this.#closeAssociation(association)
    })
  }

  async #associate(
    control: SocketAddress,
    declared: SocketAddress,
    socket: Socket,
  ): Promise<Association | undefined> {
    // The slot is taken before the first await, so requests arriving together cannot pass the limit.
    if (this.#associations.size + this.#pending >= (this.#opts.maxAssociations ?? DEFAULT_MAX_ASSOCIATIONS)) {
      this.stats.refused.limit += 1
      return undefined
    }
    this.#pending += 1
    let upstream: DatagramSocket
    let relay: DatagramSocket
    try {
      upstream = await this.#ensureUpstream()
      // The relay binds where the control connection arrived, so the client reaches it the same way (loopback).
      relay = await this.#relayTransport.bind({ host: socket.localAddress ?? '127.0.0.1', port: 0 })
    } finally {
      this.#pending -= 1
    }
    if (this.#stopping) {
      await relay.close()
      return undefined
    }
    const association = new Association(control, relay, declared)
    this.#associations.add(association)
    this.stats.associationsOpened += 1
    relay.onMessage((data, from) => this.#fromClient(association, upstream, data, from))
    log.debug('associated', { label: this.#opts.label, relay: relay.local.port })
    return association
  }

  #ensureUpstream(): Promise<DatagramSocket> {
    if (this.#upstream === undefined) {
      const made = Promise.resolve().then(() => this.#opts.upstream())
      this.#upstream = made
      made.then(
        (upstream) => upstream.onMessage((data, from) => this.#fromUpstream(data, from)),
        () => {
          if (this.#upstream === made) this.#upstream = undefined
        },
      )
    }
    return this.#upstream
  }

  #fromClient(association: Association, upstream: DatagramSocket, data: Buffer, from: SocketAddress): void {
    if (
      canonical(from.host) !== association.clientHost ||
      (association.clientPort !== 0 && from.port !== association.clientPort)
    ) {
      this.stats.dropped.foreignSource += 1
      return
    }
    let datagram: ReturnType<typeof decodeUdpDatagram>
    try {
      datagram = decodeUdpDatagram(data)
    } catch {
      this.stats.dropped.malformed += 1
      return
    }
    if (datagram.frag !== 0) {
      this.stats.dropped.fragmented += 1
      return
    }
    if (datagram.payload.length > (this.#opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES)) {
      this.stats.dropped.oversize += 1
      return
    }
    if (datagram.address.port === 0) {
      this.stats.dropped.malformed += 1
      return
    }
    if (association.clientPort === 0) association.clientPort = from.port
    const host = canonical(datagram.address.host)
    const key = formatAddress({ host, port: datagram.address.port })
    const domainPort = isIpLiteral(host) ? undefined : datagram.address.port
    association.destinations.sent(key, Date.now(), domainPort)
    const errorsBefore = upstream.stats.sendErrors
    upstream.send(datagram.payload, datagram.address)
    if (upstream.stats.sendErrors !== errorsBefore) {
      this.stats.dropped.upstreamFailed += 1
      return
    }
    association.datagramsUp += 1
    this.stats.datagramsUp += 1
    this.stats.bytesUp += datagram.payload.length
  }

  #fromUpstream(data: Buffer, from: SocketAddress): void {
    const key = formatAddress({ host: canonical(from.host), port: from.port })
    let header = this.#headers.get(key)
    if (header === undefined) {
      try {
        header = encodeUdpDatagram(from, EMPTY)
      } catch {
        this.stats.dropped.malformed += 1
        return
      }
      if (this.#headers.size >= HEADER_CACHE_SIZE) this.#headers.clear()
      this.#headers.set(key, header)
    }
    const wrapped = Buffer.concat([header, data], header.length + data.length)
    // Only associations that sent to this origin get its datagrams; the others may be other local clients.
    const now = Date.now()
    let solicited = false
    let delivered = false
    for (const association of this.#associations)
      if (association.destinations.answers(key, from.port, now)) {
        solicited = true
        delivered = this.#toClient(association, wrapped, data.length) || delivered
      }
    if (!solicited) this.stats.dropped.unsolicited += 1
    else if (!delivered) this.stats.dropped.noClient += 1
  }

  #toClient(association: Association, wrapped: Buffer, payloadBytes: number): boolean {
    const client = association.client
    if (client === undefined) return false
    association.relay.send(wrapped, client)
    association.datagramsDown += 1
    this.stats.datagramsDown += 1
    this.stats.bytesDown += payloadBytes
    return true
  }

  async #closeAssociation(association: Association): Promise<void> {
    if (!this.#associations.delete(association)) return
    await association.relay.close()
  }
}
