import { bytesToIp, ipv4Bytes, ipv6Bytes, type SocketAddress } from '../net/index.js'
import { AddressType, AUTH_VERSION, SOCKS_VERSION, Socks5Error, type UdpDatagram } from './types.js'

/** The result of a decoder that may need more bytes: the value and where it ended, or `undefined`. */
export type Decoded<T> = { readonly value: T; readonly end: number } | undefined

/**
 * Reads ATYP, DST.ADDR and DST.PORT at `offset`. Undefined when the bytes end first; `MALFORMED` for an unknown
 * address type or an empty domain.
 */
export function decodeAddress(data: Buffer, offset: number): Decoded<SocketAddress> {
  if (data.length < offset + 1) return undefined
  const type = data[offset] as number
  let host: string
  let at = offset + 1
  if (type === AddressType.IPV4) {
    if (data.length < at + 4) return undefined
    host = bytesToIp(data.subarray(at, at + 4))
    at += 4
  } else if (type === AddressType.IPV6) {
    if (data.length < at + 16) return undefined
    host = bytesToIp(data.subarray(at, at + 16))
    at += 16
  } else if (type === AddressType.DOMAIN) {
    if (data.length < at + 1) return undefined
    const length = data[at] as number
    at += 1
    if (length === 0) throw new Socks5Error('MALFORMED', { reason: 'empty domain' })
    if (data.length < at + length) return undefined
    host = data.toString('latin1', at, at + length)
    at += length
  } else {
    throw new Socks5Error('MALFORMED', { reason: 'address type', type })
  }
  if (data.length < at + 2) return undefined
  return { value: { host, port: data.readUInt16BE(at) }, end: at + 2 }
}

/** ATYP, DST.ADDR and DST.PORT of `address`: IPv4, IPv6, or a domain name for anything else. */
export function encodeAddress(address: SocketAddress): Buffer {
  if (!Number.isInteger(address.port) || address.port < 0 || address.port > 0xffff)
    throw new Socks5Error('BAD_ADDRESS', { reason: 'port', port: address.port })
  const v4 = ipv4Bytes(address.host)
  const v6 = v4 === undefined ? ipv6Bytes(address.host) : undefined
  let head: Buffer
  if (v4 !== undefined) head = Buffer.concat([Buffer.of(AddressType.IPV4), v4])
  else if (v6 !== undefined) head = Buffer.concat([Buffer.of(AddressType.IPV6), v6])
  else {
    const name = Buffer.from(address.host, 'latin1')
    if (name.length === 0 || name.length > 255)
      throw new Socks5Error('BAD_ADDRESS', { reason: 'domain length', length: name.length })
    head = Buffer.concat([Buffer.of(AddressType.DOMAIN, name.length), name])
  }
  const port = Buffer.alloc(2)
  port.writeUInt16BE(address.port)
  return Buffer.concat([head, port])
}

/** Decodes the method selection request (VER, NMETHODS, METHODS); undefined until complete. */
export function decodeMethods(data: Buffer): Decoded<{ version: number; methods: number[] }> {
  if (data.length < 2) return undefined
  const count = data[1] as number
  if (data.length < 2 + count) return undefined
  return { value: { version: data[0] as number, methods: [...data.subarray(2, 2 + count)] }, end: 2 + count }
}

/** Decodes an RFC 1929 username/password request; undefined until complete. */
export function decodeCredentials(
  data: Buffer,
): Decoded<{ version: number; username: string; password: string }> {
  if (data.length < 2) return undefined
  const userLength = data[1] as number
  if (data.length < 2 + userLength + 1) return undefined
  const passLength = data[2 + userLength] as number
  const end = 3 + userLength + passLength
  if (data.length < end) return undefined
  return {
    value: {
      version: data[0] as number,
      username: data.toString('utf8', 2, 2 + userLength),
      password: data.toString('utf8', 3 + userLength, end),
    },
    end,
  }
}

/** Encodes an RFC 1929 username/password request (the client side). */
export function encodeCredentials(username: string, password: string): Buffer {
  const user = Buffer.from(username)
  const pass = Buffer.from(password)
  if (user.length > 255 || pass.length > 255) throw new Socks5Error('BAD_ADDRESS', { reason: 'credentials' })
  return Buffer.concat([Buffer.of(AUTH_VERSION, user.length), user, Buffer.of(pass.length), pass])
}

/**
 * Decodes a request (VER, CMD, RSV, ATYP, DST.ADDR, DST.PORT); undefined until complete, `MALFORMED` for a wrong
 * version or address type.
 */
export function decodeRequest(data: Buffer): Decoded<{ command: number; address: SocketAddress }> {
  if (data.length < 4) return undefined
  if (data[0] !== SOCKS_VERSION) throw new Socks5Error('MALFORMED', { reason: 'version', version: data[0] })
  const address = decodeAddress(data, 3)
  if (address === undefined) return undefined
  return { value: { command: data[1] as number, address: address.value }, end: address.end }
}

/** Encodes a request (the client side). */
export function encodeRequest(command: number, address: SocketAddress): Buffer {
  return Buffer.concat([Buffer.of(SOCKS_VERSION, command, 0), encodeAddress(address)])
}

/** Encodes a reply (VER, REP, RSV, ATYP, BND.ADDR, BND.PORT). */
export function encodeReply(reply: number, bound: SocketAddress = { host: '0.0.0.0', port: 0 }): Buffer {
  return Buffer.concat([Buffer.of(SOCKS_VERSION, reply, 0), encodeAddress(bound)])
}

/** Decodes a reply (the client side); undefined until complete. */
export function decodeReply(data: Buffer): Decoded<{ reply: number; bound: SocketAddress }> {
  if (data.length < 4) return undefined
  if (data[0] !== SOCKS_VERSION) throw new Socks5Error('MALFORMED', { reason: 'version', version: data[0] })
  const address = decodeAddress(data, 3)
  if (address === undefined) return undefined
  return { value: { reply: data[1] as number, bound: address.value }, end: address.end }
}

/**
 * Decodes a relayed datagram (RSV, FRAG, ATYP, DST.ADDR, DST.PORT, DATA). `MALFORMED` when it is truncated or the
 * reserved bytes are not zero.
 */
export function decodeUdpDatagram(data: Buffer): UdpDatagram {
  if (data.length < 4) throw new Socks5Error('MALFORMED', { reason: 'short datagram', length: data.length })
  if (data[0] !== 0 || data[1] !== 0) throw new Socks5Error('MALFORMED', { reason: 'reserved bytes' })
  const address = decodeAddress(data, 3)
  if (address === undefined) throw new Socks5Error('MALFORMED', { reason: 'truncated header' })
  return { frag: data[2] as number, address: address.value, payload: data.subarray(address.end) }
}

/** Encodes a relayed datagram with FRAG 0. */
export function encodeUdpDatagram(address: SocketAddress, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(0, 0, 0), encodeAddress(address), payload])
}
