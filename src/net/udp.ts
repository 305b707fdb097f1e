import { createSocket, type Socket } from 'node:dgram'
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns'
import { isIPv6 } from 'node:net'
import { logger } from '../common/logger.js'
import { ipFamily } from './ip.js'
import {
  type BindOptions,
  type DatagramHandler,
  type DatagramSocket,
  type DatagramStats,
  type DatagramTransport,
  emptyDatagramStats,
  type SocketAddress,
} from './types.js'

const log = logger('net:udp')

/** Socket buffer size asked of the kernel: large enough that bursts at hundreds of MB/s are not dropped. */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void

/**
 * dgram resolves every destination, an IP literal too, through dns.lookup, which answers a literal on the next
 * tick after two regular expressions: once per datagram. A literal is answered at once here, with the family
 * dns.lookup would give; names still go to dns.lookup.
 */
function lookup(host: string, options: number | LookupOneOptions, callback: LookupCallback): void {
  const family = ipFamily(host)
  if (family !== 0) callback(null, host, family)
  else dnsLookup(host, options as LookupOneOptions, callback)
}

class UdpSocket implements DatagramSocket {
  readonly stats: DatagramStats = emptyDatagramStats()
  readonly #socket: Socket
  readonly #handlers = new Set<DatagramHandler>()
  readonly local: SocketAddress
  #closed = false
  // One callback for every send: dgram drops asynchronous send errors (EMSGSIZE, ...) when no callback is given,
  // and a closure per datagram would cost an allocation on the hottest path.
  readonly #afterSend = (err: Error | null): void => {
    if (err === null) return
    this.stats.sendErrors += 1
    log.debug('send failed', { err })
  }

  constructor(socket: Socket) {
    this.#socket = socket
    const address = socket.address()
    this.local = { host: address.address, port: address.port }
    socket.on('message', (data, rinfo) => {
      this.stats.bytesReceived += data.length
      this.stats.packetsReceived += 1
      const from = { host: rinfo.address, port: rinfo.port }
      for (const handler of this.#handlers) {
        try {
          handler(data, from)
        } catch (err) {
          log.debug('datagram handler threw', { err })
        }
      }
    })
    socket.on('error', (err) => log.debug('socket error', { err }))
  }

  send(data: Uint8Array, to: SocketAddress): void {
    if (this.#closed) {
      this.stats.sendErrors += 1
      return
    }
    this.stats.bytesSent += data.length
    this.stats.packetsSent += 1
    try {
      this.#socket.send(data, to.port, to.host, this.#afterSend)
    } catch (err) {
      // Synchronous failures: an invalid port or address.
      this.stats.sendErrors += 1
      log.debug('send failed', { err })
    }
  }

  onMessage(handler: DatagramHandler): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    this.#closed = true
    return new Promise((resolve) => this.#socket.close(() => resolve()))
  }
}

/**
 * Real UDP sockets. An IPv6 bind address gives a dual-stack socket.
 *
 * @example
 * ```ts
 * const socket = await udpTransport.bind({ host: '127.0.0.1', port: 0 })
 * socket.onMessage((data, from) => ...)
 * ```
 */
export const udpTransport: DatagramTransport = {
  bind(opts: BindOptions = {}): Promise<DatagramSocket> {
    const host = opts.host ?? '0.0.0.0'
    const socket = createSocket({
      type: isIPv6(host) ? 'udp6' : 'udp4',
      reuseAddr: false,
      recvBufferSize: SOCKET_BUFFER_BYTES,
      sendBufferSize: SOCKET_BUFFER_BYTES,
      lookup,
    })
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close()
        reject(err)
      }
      socket.once('error', onError)
      socket.bind({ address: host, port: opts.port ?? 0 }, () => {
        socket.off('error', onError)
        if (opts.broadcast === true) socket.setBroadcast(true)
        resolve(new UdpSocket(socket))
      })
    })
  },
}
