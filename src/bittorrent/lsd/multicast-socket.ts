import { createSocket, type Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { logger } from '../../common/index.js'
import type { DatagramHandler, DatagramSocket, SocketAddress } from '../../net/index.js'
import { LSD_GROUP_V4, LSD_GROUP_V6, LsdError } from './types.js'

const log = logger('bittorrent:lsd:socket')

/** Options of {@link bindLsdSocket}. */
export interface LsdSocketOptions {
  /** The group to join (default BEP 14's IPv4 group; use `LSD_GROUP_V6` for IPv6). */
  group?: SocketAddress
  /** The local interface address to join on and send from (default: the system's choice). */
  interfaceAddress?: string
}

/**
 * Binds a real UDP socket to the LSD port with address reuse, joins the multicast group, keeps multicast on the
 * local link (TTL 1) and returns it as an {@link LsdSocket}. The only place LSD touches real sockets.
 *
 * @example
 * ```ts
 * const socket = await bindLsdSocket({ group: LSD_GROUP_V4 })
 * ```
 */
export function bindLsdSocket(options: LsdSocketOptions = {}): Promise<LsdSocket> {
  const group = options.group ?? LSD_GROUP_V4
  const v6 = isIPv6(group.host)
  const socket = createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: true })
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close()
      reject(new LsdError('SOCKET', { cause: err }))
    }
    socket.once('error', onError)
    socket.bind({ port: group.port, address: v6 ? '::' : '0.0.0.0' }, () => {
      try {
        socket.addMembership(group.host, options.interfaceAddress)
        socket.setMulticastTTL(1)
        socket.setMulticastLoopback(true)
        if (options.interfaceAddress !== undefined) socket.setMulticastInterface(options.interfaceAddress)
      } catch (err) {
        onError(err as Error)
        return
      }
      socket.off('error', onError)
      socket.on('error', (err) => log.debug('socket error', { err }))
      resolve(wrap(socket))
    })
  })
}

/** The group address of the default groups, for callers choosing by family. */
export function lsdGroup(family: 4 | 6): SocketAddress {
  return family === 6 ? LSD_GROUP_V6 : LSD_GROUP_V4
}

/** A socket joined to an LSD multicast group: all LSD needs, plus close. */
export type LsdSocket = Pick<DatagramSocket, 'send' | 'onMessage' | 'close'>

function wrap(socket: Socket): LsdSocket {
  const handlers = new Set<DatagramHandler>()
  socket.on('message', (data, rinfo) => {
    for (const handler of handlers) handler(data, { host: rinfo.address, port: rinfo.port })
  })
  let closed = false
  return {
    send: (data, to) => {
      if (!closed) socket.send(data, to.port, to.host, (err) => err && log.debug('send failed', { err }))
    },
    onMessage: (handler) => {
      handlers.add(handler)
      return () => handlers.delete(handler)
    },
    close: () => {
      if (closed) return Promise.resolve()
      closed = true
      return new Promise((resolve) => socket.close(() => resolve()))
    },
  }
}
