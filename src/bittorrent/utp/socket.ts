import {
  type AbortOptions,
  type Clock,
  logger,
  systemClock,
  TaskScope,
  TypedEmitter,
} from '../../common/index.js'
import type { DatagramHandler, DatagramSocket, SocketAddress } from '../../net/index.js'
import { type ConnectionConfig, type ConnectionHost, UtpConnection } from './connection.js'
import { decodePacket, emptyPacket, encodePacket, PacketType, SEQ_MASK, type UtpPacket } from './packet.js'
import { type UtpDeps, UtpError, type UtpOptions, type UtpSocketStats } from './types.js'

const log = logger('bittorrent:utp')

/** How often connection timers are checked; BEP 29's smallest timeout is 500 ms. */
const TICK_MS = 50
/** How long a cleanly closed connection still answers repeats of the remote's FIN. */
const LINGER_MS = 30_000

const DEFAULTS: ConnectionConfig = {
  packetBytes: 1400,
  recvBufferBytes: 1024 * 1024,
  sendBufferBytes: 1024 * 1024,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 180_000,
  keepaliveMs: 29_000,
  maxTimeouts: 6,
  nagle: true,
  allowHalfOpen: false,
}

/** Events of a {@link UtpSocket}. */
export interface UtpSocketEvents {
  /** A remote connected to us (only while listening). */
  connection: UtpConnection
}

interface Lingering {
  remote: SocketAddress
  recvId: number
  sendId: number
  expiresMs: number
}

/**
 * A uTP (BEP 29) endpoint multiplexing many connections over one injected datagram socket. Datagrams that are not
 * uTP go to the fallback handlers, so the DHT and UDP trackers can share the port as they do in libtorrent.
 * The datagram socket stays owned by the caller: {@link UtpSocket.close} does not close it.
 *
 * @example
 * ```ts
 * const utp = new UtpSocket({ socket: await udpTransport.bind({ host: '127.0.0.1' }) })
 * utp.onFallback((data, from) => dht.receive(data, from))
 * utp.listen()
 * utp.events.on('connection', (conn) => conn.pipe(conn))
 * const conn = await utp.connect({ host: '127.0.0.2', port: 6881 }, { signal })
 * conn.write(handshake)
 * ```
 */
export class UtpSocket {
  /** `connection` events of incoming connections. */
  readonly events = new TypedEmitter<UtpSocketEvents>()
  readonly #socket: DatagramSocket
  readonly #clock: Clock
  readonly #config: ConnectionConfig
  readonly #maxConnections: number
  readonly #byRecvId = new Map<number, UtpConnection[]>()
  readonly #connections = new Set<UtpConnection>()
  readonly #lingering = new Map<string, Lingering>()
  readonly #fallback = new Set<DatagramHandler>()
  readonly #ackQueue = new Set<UtpConnection>()
  #ackScheduled = false
  readonly #stopped = new AbortController()
  readonly #tasks: TaskScope
  readonly #offMessage: () => void
  readonly #packet: UtpPacket = emptyPacket()
  readonly #host: ConnectionHost
  #listening = false
  #closed = false
  readonly #stats: Omit<UtpSocketStats, 'connections'> = {
    connectionsOpened: 0,
    bytesSent: 0,
    bytesReceived: 0,
    packetsSent: 0,
    packetsReceived: 0,
    retransmits: 0,
    malformed: 0,
    fallback: 0,
    resetsSent: 0,
  }

  constructor(deps: UtpDeps, opts: UtpOptions = {}) {
    this.#socket = deps.socket
    this.#clock = deps.clock ?? systemClock
    const { maxConnections, ...rest } = opts
    this.#config = { ...DEFAULTS }
    for (const [key, value] of Object.entries(rest)) {
      if (value !== undefined) (this.#config as unknown as Record<string, unknown>)[key] = value
    }
    if (this.#config.packetBytes < 64) throw new RangeError('packetBytes must be at least 64')
    this.#maxConnections = maxConnections ?? 1000
    this.#tasks = new TaskScope(this.#stopped.signal, this.#clock)
    const clock = this.#clock
    this.#host = {
      config: this.#config,
      nowMs: () => clock.monotonic(),
      send: (data, to) => {
        this.#stats.packetsSent += 1
        this.#socket.send(data, to)
      },
      deferAck: (conn) => this.#deferAck(conn),
      detach: (conn, clean) => this.#detach(conn, clean),
      countRetransmit: () => {
        this.#stats.retransmits += 1
      },
      countPayload: (sent, received) => {
        this.#stats.bytesSent += sent
        this.#stats.bytesReceived += received
      },
    }
    this.#offMessage = this.#socket.onMessage((data, from) => this.#onDatagram(data, from))
    this.#tasks.every('tick', TICK_MS, () => this.#tick())
  }

  /** The local address of the underlying datagram socket. */
  get local(): SocketAddress {
    return this.#socket.local
  }

  /** Open connections. */
  get connections(): ReadonlySet<UtpConnection> {
    return this.#connections
  }

  /** Totals over every connection this socket carried, plus demultiplexing counters. */
  get stats(): UtpSocketStats {
    return { ...this.#stats, connections: this.#connections.size }
  }

  /** Accepts incoming connections from now on (emitted as `connection` events). Without it, SYNs are reset. */
  listen(): void {
    this.#listening = true
  }

  /** Hands datagrams that are not uTP to `handler` (DHT, UDP trackers on the same port); returns its remover. */
  onFallback(handler: DatagramHandler): () => void {
    this.#fallback.add(handler)
    return () => this.#fallback.delete(handler)
  }

  /**
   * Opens a connection. Resolves once the remote answered our SYN.
   * @throws UtpError `CONNECT_TIMEOUT`, `CONNECTION_RESET`, `TOO_MANY_CONNECTIONS`, `SOCKET_CLOSED`; or the
   * signal's reason when it aborts first.
   */
  connect(address: SocketAddress, opts: AbortOptions = {}): Promise<UtpConnection> {
    if (this.#closed) return Promise.reject(new UtpError('SOCKET_CLOSED'))
    if (this.#connections.size >= this.#maxConnections) {
      return Promise.reject(new UtpError('TOO_MANY_CONNECTIONS', { limit: this.#maxConnections }))
    }
    const { signal } = opts
    if (signal?.aborted) return Promise.reject(signal.reason)
    let recvId: number
    do recvId = (Math.random() * 0x10000) & SEQ_MASK
    while (this.#byRecvId.has(recvId))
    const conn = new UtpConnection(this.#host, {
      remote: { host: address.host, port: address.port },
      recvId,
      sendId: (recvId + 1) & SEQ_MASK,
    })
    this.#attach(conn)
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        reject(signal?.reason)
        conn.destroy()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      // Until connected, failures reject the promise instead of surfacing as 'error' events nobody listens to.
      const swallow = (): void => {}
      conn.on('error', swallow)
      conn.start((err) => {
        signal?.removeEventListener('abort', onAbort)
        if (err === undefined) {
          conn.off('error', swallow)
          resolve(conn)
        } else {
          reject(err)
        }
      })
    })
  }

  /** Closes every connection (with ST_RESET) and stops; the datagram socket itself stays open. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const conn of [...this.#connections]) conn.destroy()
    this.#stopped.abort()
    this.#offMessage()
  }

  #attach(conn: UtpConnection): void {
    let list = this.#byRecvId.get(conn.recvId)
    if (list === undefined) {
      list = []
      this.#byRecvId.set(conn.recvId, list)
    }
    list.push(conn)
    this.#connections.add(conn)
    this.#stats.connectionsOpened += 1
  }

  #detach(conn: UtpConnection, clean: boolean): void {
    if (!this.#connections.delete(conn)) return
    const list = this.#byRecvId.get(conn.recvId)
    if (list !== undefined) {
      const index = list.indexOf(conn)
      if (index >= 0) list.splice(index, 1)
      if (list.length === 0) this.#byRecvId.delete(conn.recvId)
    }
    this.#ackQueue.delete(conn)
    if (clean) {
      this.#lingering.set(lingerKey(conn.remote, conn.recvId), {
        remote: conn.remote,
        recvId: conn.recvId,
        sendId: conn.sendId,
        expiresMs: this.#clock.monotonic() + LINGER_MS,
      })
    }
  }

  #find(from: SocketAddress, id: number): UtpConnection | undefined {
    const list = this.#byRecvId.get(id)
    if (list === undefined) return undefined
    for (const conn of list) {
      if (conn.remote.port === from.port && conn.remote.host === from.host) return conn
    }
    return undefined
  }

  #onDatagram(data: Buffer, from: SocketAddress): void {
    const p = this.#packet
    const failure = decodePacket(data, p)
    if (failure === 'NOT_UTP') {
      this.#stats.fallback += 1
      for (const handler of this.#fallback) handler(data, from)
      return
    }
    if (failure === 'MALFORMED') {
      this.#stats.malformed += 1
      log.debug('malformed packet dropped', { from })
      return
    }
    this.#stats.packetsReceived += 1
    const nowMs = this.#clock.monotonic()
    if (p.type === PacketType.SYN) {
      this.#onSyn(p, from)
      return
    }
    let conn = this.#find(from, p.connectionId)
    if (conn === undefined && p.type === PacketType.RESET) {
      // A reset may carry either of our ids (BEP 29 leaves it open; libutp checks both).
      for (const c of this.#connections) {
        if (c.sendId === p.connectionId && c.remote.port === from.port && c.remote.host === from.host)
          conn = c
      }
    }
    if (conn !== undefined) {
      conn.receive(p, nowMs)
      return
    }
    if (p.type === PacketType.RESET) return
    const lingering = this.#lingering.get(lingerKey(from, p.connectionId))
    if (lingering !== undefined) {
      // Our last ACK was lost: the remote repeats its FIN. Ack it again.
      if (p.type === PacketType.FIN) this.#sendBare(PacketType.STATE, from, lingering.sendId, p, p.seqNr)
      return
    }
    this.#stats.resetsSent += 1
    this.#sendBare(PacketType.RESET, from, p.connectionId, p, p.seqNr)
  }

  #onSyn(p: UtpPacket, from: SocketAddress): void {
    const recvId = (p.connectionId + 1) & SEQ_MASK
    const existing = this.#find(from, recvId)
    if (existing !== undefined) {
      existing.acceptSyn()
      return
    }
    if (!this.#listening || this.#closed || this.#connections.size >= this.#maxConnections) {
      this.#stats.resetsSent += 1
      this.#sendBare(PacketType.RESET, from, p.connectionId, p, p.seqNr)
      return
    }
    const conn = new UtpConnection(this.#host, {
      remote: { host: from.host, port: from.port },
      recvId,
      sendId: p.connectionId,
      synSeqNr: p.seqNr,
      peerWindowBytes: p.wndSize,
    })
    this.#attach(conn)
    conn.acceptSyn()
    this.events.emit('connection', conn)
  }

  /** A packet outside any connection: a reset, or the re-ack of a lingering connection's FIN. */
  #sendBare(type: PacketType, to: SocketAddress, connectionId: number, p: UtpPacket, ackNr: number): void {
    const nowUs = Math.floor(this.#clock.monotonic() * 1000) >>> 0
    this.#host.send(
      encodePacket({
        type,
        connectionId,
        timestampUs: nowUs,
        timestampDiffUs: (nowUs - p.timestampUs) >>> 0,
        wndSize: 0,
        seqNr: (p.ackNr + 1) & SEQ_MASK,
        ackNr,
      }),
      to,
    )
  }

  #deferAck(conn: UtpConnection): void {
    this.#ackQueue.add(conn)
    if (this.#ackScheduled) return
    this.#ackScheduled = true
    // One ACK per batch of datagrams read together, like libtorrent's deferred ACKs.
    setImmediate(() => {
      this.#ackScheduled = false
      for (const c of this.#ackQueue) c.flushAck()
      this.#ackQueue.clear()
    })
  }

  #tick(): void {
    const nowMs = this.#clock.monotonic()
    for (const conn of [...this.#connections]) conn.tick(nowMs)
    if (this.#lingering.size > 0) {
      for (const [key, entry] of this.#lingering) if (entry.expiresMs <= nowMs) this.#lingering.delete(key)
    }
  }
}

function lingerKey(remote: SocketAddress, recvId: number): string {
  return `${remote.host}|${remote.port}|${recvId}`
}
