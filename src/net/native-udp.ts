import { lookup as dnsLookup } from 'node:dns/promises'
import { createRequire } from 'node:module'
import { logger } from '../common/logger.js'
import { formatIpv6, ipFamily, ipv4Bytes, ipv6Bytes } from './ip.js'
import {
  type BindOptions,
  type DatagramHandler,
  type DatagramSocket,
  type DatagramStats,
  type DatagramTransport,
  emptyDatagramStats,
  type SocketAddress,
} from './types.js'
import { udpTransport } from './udp.js'

const log = logger('net:udp')

/** Messages read per recvmmsg (a message may carry a run of datagrams the kernel kept whole). */
const BATCH = 32
/** Datagrams queued at most before they are flushed early (the addon's limit). */
const SEND_BATCH = 256
/** Bytes of queued sends before they are flushed early; larger than the largest datagram. */
const SEND_AREA_BYTES = 128 * 1024
/** Socket buffer size asked of the kernel, as for dgram sockets. */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
const META_INTS = 8
const ADDRESS_CACHE_LIMIT = 4096
const MAX_DATAGRAM_BYTES = 65_535
// families in the metadata the addon shares: 5 is an IPv4 peer on a dual-stack IPv6 socket
const FAMILY_V4 = 4
const FAMILY_MAPPED = 5
const FAMILY_V6 = 6

// indices of the addon's counters
const C_SEND_ERRORS = 0
const C_SEND_DROPPED = 1
const C_SEND_QUEUED = 2
const C_SEND_BLOCKED = 3
const C_RECV_BATCHES = 4
const C_RECV_PACKETS = 5
const C_RECV_ERRORS = 6
const C_RECV_TRUNCATED = 7
const C_PENDING = 8
const C_SENDMMSG_CALLS = 9
const C_SEND_COALESCED = 10
const C_RECV_COALESCED = 11

type Handle = object

interface NativeUdpModule {
  open(
    host: string,
    port: number,
    rcvbufBytes: number,
    sndbufBytes: number,
    broadcast: boolean,
    batch: number,
    onBatch: (data: Buffer, count: number) => void,
    recvMeta: Int32Array,
    sendArea: Uint8Array,
    sendMeta: Int32Array,
    counters: Float64Array,
  ): [Handle, string, number, number, number]
  flush(handle: Handle, count: number): void
  close(handle: Handle, onClosed: () => void): void
  refuseSends(handle: Handle, count: number): void
  readonly COUNTERS: number
  readonly MAX_SEGMENTS: number
}

/** Whether the native batched UDP socket loaded, and why not when it did not. */
export type NativeUdpStatus = { readonly loaded: true } | { readonly loaded: false; readonly reason: string }

/** Where the addon is built: `build/Release` of the package root (two levels above `src/net` and `dist/net`). */
const ADDON_PATH = '../../build/Release/udp.node'

/**
 * Loads the native batched UDP addon from `path` (relative to this module). `TRIBLER_NO_NATIVE_UDP=1` turns it
 * off. Never throws: a missing or broken addon gives the reason.
 */
export function loadNativeUdp(path: string = ADDON_PATH): NativeUdpModule | string {
  if (process.env.TRIBLER_NO_NATIVE_UDP === '1') return 'turned off by TRIBLER_NO_NATIVE_UDP=1'
  try {
    const mod = createRequire(import.meta.url)(path) as Partial<NativeUdpModule>
    if (typeof mod.open !== 'function') return 'the addon has no batched socket on this platform'
    return mod as NativeUdpModule
  } catch (err) {
    return `the addon did not load: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`
  }
}

let loaded: NativeUdpModule | string | undefined

function nativeModule(): NativeUdpModule | string {
  if (loaded === undefined) {
    loaded = loadNativeUdp()
    if (typeof loaded === 'string')
      log.warn('native batched UDP socket unavailable, using node:dgram', { reason: loaded })
  }
  return loaded
}

/** Whether {@link batchedUdpTransport} uses the native socket in this process (loads it on first call). */
export function nativeUdpStatus(): NativeUdpStatus {
  const mod = nativeModule()
  return typeof mod === 'string' ? { loaded: false, reason: mod } : { loaded: true }
}

/** Counters of the native socket beyond {@link DatagramStats}. */
export interface BatchedUdpStats {
  /** recvmmsg calls that returned datagrams. */
  readonly receiveBatches: number
  /** Datagrams those calls returned. */
  readonly receivePackets: number
  /** sendmmsg calls (a call sends up to a batch). */
  readonly sendCalls: number
  /** Flushes the kernel pushed back (its send buffer was full): the rest waited for the socket to be writable. */
  readonly sendBlocked: number
  /** Datagrams that waited in the bounded queue for the socket to be writable. */
  readonly sendQueued: number
  /** Datagrams dropped because that queue was full, or the socket closed while they waited. */
  readonly sendDropped: number
  /** Datagrams waiting now. */
  readonly pending: number
  /** Datagrams sent as part of a run in one segmented (UDP_SEGMENT) message. */
  readonly sendCoalesced: number
  /** Datagrams received as part of a run the kernel kept whole (UDP_GRO). */
  readonly receiveCoalesced: number
  /** Datagrams too large for the receive slot (never on UDP), and receive errors. */
  readonly receiveErrors: number
}

interface Destination {
  family: number
  a0: number
  a1: number
  a2: number
  a3: number
}

/** The metadata words of an IP literal; undefined for a name. */
function destinationOf(host: string): Destination | undefined {
  const v4 = ipv4Bytes(host)
  if (v4 !== undefined) return { family: FAMILY_V4, a0: v4.readUInt32BE(0), a1: 0, a2: 0, a3: 0 }
  const v6 = ipv6Bytes(host)
  if (v6 === undefined) return undefined
  return {
    family: FAMILY_V6,
    a0: v6.readUInt32BE(0),
    a1: v6.readUInt32BE(4),
    a2: v6.readUInt32BE(8),
    a3: v6.readUInt32BE(12),
  }
}

const v4Text = (a: number): string => `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`

/**
 * A UDP socket whose datagrams cross into the kernel in batches: recvmmsg reads up to {@link BATCH} datagrams per
 * wake and the handlers run for all of them in one call from the loop; sends are copied into a shared area and
 * leave with one sendmmsg when the current task (and its microtasks) ends or the batch fills.
 *
 * Each received datagram is a view into one buffer per batch (up to {@link BATCH} messages of up to 64 KiB each):
 * the view stays valid as long as anyone holds it, and so does the whole batch buffer behind it. Whatever keeps a
 * received datagram, or a slice of one, beyond the handler (stores, caches, tables) keeps a copy
 * (`Buffer.from(view)`), so a few small kept bytes never pin a batch of large datagrams.
 */
export class BatchedUdpSocket implements DatagramSocket {
  readonly local: SocketAddress
  /** Receive and send buffer sizes the kernel granted. */
  readonly bufferBytes: { readonly receive: number; readonly send: number }
  readonly #mod: NativeUdpModule
  readonly #handle: Handle
  readonly #v6: boolean
  readonly #stats: DatagramStats = emptyDatagramStats()
  #localErrors = 0
  readonly #counters: Float64Array
  readonly #recvMeta: Int32Array
  readonly #sendArea = new Uint8Array(SEND_AREA_BYTES)
  readonly #sendMeta = new Int32Array(SEND_BATCH * META_INTS)
  #sendCount = 0
  #sendBytes = 0
  #flushQueued = false
  #handlers: DatagramHandler[] = []
  readonly #destinations = new Map<string, Destination>()
  readonly #v4From = new Map<number, SocketAddress>()
  readonly #mappedFrom = new Map<number, SocketAddress>()
  readonly #v6From = new Map<string, SocketAddress>()
  #closed: Promise<void> | undefined
  readonly #flushTask = (): void => {
    this.#flushQueued = false
    this.#flush()
  }

  /** Binds a socket; `host` must be an IP literal (an IPv6 one gives a dual-stack socket). */
  constructor(mod: NativeUdpModule, host: string, port: number, broadcast: boolean) {
    this.#mod = mod
    this.#counters = new Float64Array(Math.max(16, mod.COUNTERS))
    this.#recvMeta = new Int32Array(BATCH * mod.MAX_SEGMENTS * META_INTS)
    const [handle, boundHost, boundPort, receive, send] = mod.open(
      host,
      port,
      SOCKET_BUFFER_BYTES,
      SOCKET_BUFFER_BYTES,
      broadcast,
      BATCH,
      (data, count) => this.#receive(data, count),
      this.#recvMeta,
      this.#sendArea,
      this.#sendMeta,
      this.#counters,
    )
    this.#handle = handle
    this.#v6 = boundHost.includes(':')
    this.local = { host: boundHost, port: boundPort }
    this.bufferBytes = { receive, send }
  }

  get stats(): DatagramStats {
    const c = this.#counters
    this.#stats.sendErrors = this.#localErrors + (c[C_SEND_ERRORS] ?? 0) + (c[C_SEND_DROPPED] ?? 0)
    return this.#stats
  }

  /** The counters of batching and of the bounded send queue. */
  get batchStats(): BatchedUdpStats {
    const c = this.#counters
    return {
      receiveBatches: c[C_RECV_BATCHES] ?? 0,
      receivePackets: c[C_RECV_PACKETS] ?? 0,
      sendCalls: c[C_SENDMMSG_CALLS] ?? 0,
      sendBlocked: c[C_SEND_BLOCKED] ?? 0,
      sendQueued: c[C_SEND_QUEUED] ?? 0,
      sendDropped: c[C_SEND_DROPPED] ?? 0,
      pending: c[C_PENDING] ?? 0,
      sendCoalesced: c[C_SEND_COALESCED] ?? 0,
      receiveCoalesced: c[C_RECV_COALESCED] ?? 0,
      receiveErrors: (c[C_RECV_ERRORS] ?? 0) + (c[C_RECV_TRUNCATED] ?? 0),
    }
  }

  send(data: Uint8Array, to: SocketAddress): void {
    if (this.#closed !== undefined) {
      this.#localErrors += 1
      return
    }
    const port = to.port
    if (!Number.isInteger(port) || port <= 0 || port > 0xffff || data.length > MAX_DATAGRAM_BYTES) {
      this.#localErrors += 1
      log.debug('send refused', { port, bytes: data.length })
      return
    }
    let destination = this.#destinations.get(to.host)
    if (destination === undefined) {
      destination = destinationOf(to.host)
      if (destination === undefined) {
        this.#sendToName(data, to)
        return
      }
      if (this.#destinations.size >= ADDRESS_CACHE_LIMIT) this.#destinations.clear()
      this.#destinations.set(to.host, destination)
    }
    if (destination.family === FAMILY_V6 && !this.#v6) {
      this.#localErrors += 1
      log.debug('IPv6 destination on an IPv4 socket', { host: to.host })
      return
    }
    const length = data.length
    if (this.#sendBytes + length > SEND_AREA_BYTES) this.#flush()
    const offset = this.#sendBytes
    this.#sendArea.set(data, offset)
    const meta = this.#sendMeta
    const m = this.#sendCount * META_INTS
    meta[m] = offset
    meta[m + 1] = length
    meta[m + 2] = destination.family
    meta[m + 3] = port
    meta[m + 4] = destination.a0
    meta[m + 5] = destination.a1
    meta[m + 6] = destination.a2
    meta[m + 7] = destination.a3
    this.#sendBytes = offset + length
    this.#sendCount += 1
    this.#stats.bytesSent += length
    this.#stats.packetsSent += 1
    if (this.#sendCount === SEND_BATCH) this.#flush()
    else if (!this.#flushQueued) {
      this.#flushQueued = true
      queueMicrotask(this.#flushTask)
    }
  }

  onMessage(handler: DatagramHandler): () => void {
    this.#handlers = [...this.#handlers, handler]
    return () => {
      this.#handlers = this.#handlers.filter((h) => h !== handler)
    }
  }

  /**
   * Fault injection for tests: the next `count` sendmmsg calls fail as if the kernel's send buffer were full, so
   * the bounded queue and the wait for writability run on loopback, where the kernel never pushes back.
   */
  refuseSendsForTesting(count: number): void {
    this.#mod.refuseSends(this.#handle, count)
  }

  close(): Promise<void> {
    if (this.#closed === undefined) {
      this.#flush()
      this.#closed = new Promise((resolve) => this.#mod.close(this.#handle, resolve))
    }
    return this.#closed
  }

  #flush(): void {
    const count = this.#sendCount
    if (count === 0) return
    this.#sendCount = 0
    this.#sendBytes = 0
    this.#mod.flush(this.#handle, count)
  }

  #sendToName(data: Uint8Array, to: SocketAddress): void {
    if (ipFamily(to.host) !== 0) {
      this.#localErrors += 1
      log.debug('send to an unusable address', { host: to.host })
      return
    }
    const copy = Buffer.from(data)
    dnsLookup(to.host, { family: this.#v6 ? 0 : 4 })
      .then(({ address }) => this.send(copy, { host: address, port: to.port }))
      .catch((err: unknown) => {
        this.#localErrors += 1
        log.debug('send to a name that does not resolve', { host: to.host, err })
      })
  }

  #receive(data: Buffer, count: number): void {
    const meta = this.#recvMeta
    const stats = this.#stats
    for (let i = 0; i < count; i++) {
      // a handler closed the socket: the rest of the batch is not delivered, as no datagram is after close()
      if (this.#closed !== undefined) return
      const m = i * META_INTS
      const offset = meta[m] as number
      const length = meta[m + 1] as number
      // the whole buffer when it is exactly this datagram, a view of its bytes otherwise
      const datagram = data.length === length ? data : data.subarray(offset, offset + length)
      const from = this.#from(meta[m + 2] as number, meta[m + 3] as number, m)
      stats.bytesReceived += length
      stats.packetsReceived += 1
      const handlers = this.#handlers
      for (let h = 0; h < handlers.length; h++) {
        try {
          ;(handlers[h] as DatagramHandler)(datagram, from)
        } catch (err) {
          log.debug('datagram handler threw', { err })
        }
      }
    }
  }

  #from(family: number, port: number, m: number): SocketAddress {
    const meta = this.#recvMeta
    if (family === FAMILY_V4 || family === FAMILY_MAPPED) {
      const a = (meta[m + 4] as number) >>> 0
      const cache = family === FAMILY_V4 ? this.#v4From : this.#mappedFrom
      const key = a * 65536 + port
      let from = cache.get(key)
      if (from === undefined) {
        from = { host: family === FAMILY_V4 ? v4Text(a) : `::ffff:${v4Text(a)}`, port }
        if (cache.size >= ADDRESS_CACHE_LIMIT) cache.clear()
        cache.set(key, from)
      }
      return from
    }
    const key = `${meta[m + 4]},${meta[m + 5]},${meta[m + 6]},${meta[m + 7]},${port}`
    let from = this.#v6From.get(key)
    if (from === undefined) {
      const bytes = Buffer.alloc(16)
      for (let w = 0; w < 4; w++) bytes.writeInt32BE(meta[m + 4 + w] as number, w * 4)
      from = { host: formatIpv6(bytes), port }
      if (this.#v6From.size >= ADDRESS_CACHE_LIMIT) this.#v6From.clear()
      this.#v6From.set(key, from)
    }
    return from
  }
}

/**
 * UDP sockets for the hot datagram paths (the IPv8 endpoint, tunnel exits): the native batched socket when the
 * addon loads, node:dgram ({@link udpTransport}) otherwise, with one warning saying why. Same contract as
 * {@link udpTransport}: an IPv6 bind address gives a dual-stack socket.
 *
 * @example
 * ```ts
 * const socket = await batchedUdpTransport.bind({ host: '127.0.0.1', port: 0 })
 * socket.onMessage((data, from) => ...)
 * ```
 */
export const batchedUdpTransport: DatagramTransport = {
  async bind(opts: BindOptions = {}): Promise<DatagramSocket> {
    const mod = nativeModule()
    if (typeof mod === 'string') return udpTransport.bind(opts)
    let host = opts.host ?? '0.0.0.0'
    // a name binds the IPv4 address it resolves to, as node:dgram's udp4 sockets do
    if (ipFamily(host) === 0) host = (await dnsLookup(host, { family: 4 })).address
    opts.signal?.throwIfAborted()
    return new BatchedUdpSocket(mod, host, opts.port ?? 0, opts.broadcast === true)
  },
}
