import { connect, type Socket } from 'node:net'
import { type DatagramSocket, type SocketAddress, udpTransport } from '../../src/net/index.js'
import {
  Command,
  decodeReply,
  decodeUdpDatagram,
  encodeCredentials,
  encodeRequest,
  encodeUdpDatagram,
} from '../../src/socks5/index.js'

/** A UDP association made through a SOCKS5 proxy by {@link socks5Associate}. */
export interface Socks5UdpClient {
  /** The proxy's UDP relay address. */
  readonly relay: SocketAddress
  /** The client's own UDP socket. */
  readonly socket: DatagramSocket
  readonly control: Socket
  send(payload: Uint8Array, to: SocketAddress): void
  /** Unwrapped replies: payload and the origin the proxy reported. */
  onMessage(handler: (payload: Buffer, from: SocketAddress) => void): void
  close(): Promise<void>
}

/** Reads exactly what `parse` needs from the control connection. */
function readMessage<T>(socket: Socket, parse: (data: Buffer) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0)
    const onData = (data: Buffer): void => {
      buffer = Buffer.concat([buffer, data])
      try {
        const value = parse(buffer)
        if (value === undefined) return
        cleanup()
        resolve(value)
      } catch (err) {
        cleanup()
        reject(err)
      }
    }
    const onClose = (): void => {
      cleanup()
      reject(new Error('control connection closed'))
    }
    const cleanup = (): void => {
      socket.off('data', onData)
      socket.off('close', onClose)
    }
    socket.on('data', onData)
    socket.on('close', onClose)
  })
}

/**
 * A minimal SOCKS5 UDP client (RFC 1928 §7, RFC 1929): negotiates, asks for UDP ASSOCIATE from a fresh
 * loopback UDP socket and wraps/unwraps the relay header.
 */
export async function socks5Associate(
  proxy: SocketAddress,
  opts: { credentials?: { username: string; password: string }; bindHost?: string } = {},
): Promise<Socks5UdpClient> {
  const socket = await udpTransport.bind({ host: opts.bindHost ?? '127.0.0.1', port: 0 })
  const control = connect({ host: proxy.host, port: proxy.port })
  control.on('error', () => undefined)
  await new Promise<void>((resolve, reject) => {
    control.once('connect', resolve)
    control.once('error', reject)
  })
  const method = opts.credentials === undefined ? 0x00 : 0x02
  control.write(Buffer.of(5, 1, method))
  const chosen = await readMessage(control, (d) => (d.length >= 2 ? d.subarray(0, 2) : undefined))
  if (chosen[1] !== method) throw new Error(`proxy chose method ${chosen[1]}`)
  if (opts.credentials !== undefined) {
    control.write(encodeCredentials(opts.credentials.username, opts.credentials.password))
    const status = await readMessage(control, (d) => (d.length >= 2 ? d.subarray(0, 2) : undefined))
    if (status[1] !== 0) throw new Error('authentication refused')
  }
  control.write(encodeRequest(Command.UDP_ASSOCIATE, socket.local))
  const reply = await readMessage(control, (d) => decodeReply(d)?.value)
  if (reply.reply !== 0) throw new Error(`UDP ASSOCIATE refused with ${reply.reply}`)
  const relay = reply.bound
  return {
    relay,
    socket,
    control,
    send: (payload, to) => socket.send(encodeUdpDatagram(to, payload), relay),
    onMessage: (handler) => {
      socket.onMessage((data) => {
        const datagram = decodeUdpDatagram(data)
        handler(datagram.payload, datagram.address)
      })
    },
    close: async () => {
      control.destroy()
      await socket.close()
    },
  }
}
