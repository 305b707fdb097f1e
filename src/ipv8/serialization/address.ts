import { isIPv6 } from 'node:net'
import { formatIpv6, ipv6Bytes, type SocketAddress } from '../../net/index.js'
import { Ipv8Error } from '../errors.js'
import type { Reader, Writer } from './buffer.js'

/** `0.0.0.0:0`: py-ipv8's "no address". */
export const NO_ADDRESS: SocketAddress = Object.freeze({ host: '0.0.0.0', port: 0 })

/**
 * The address of a dotted-quad IPv4 host as an unsigned 32-bit number, or -1 when `host` is not one (the same
 * strict form as `net.isIPv4`: four decimal octets without leading zeros). A hand parser: this runs for every
 * address of every introduction, where a regular expression costs more than the rest of the encoding.
 */
export function ipv4Number(host: string): number {
  const length = host.length
  if (length < 7 || length > 15) return -1
  let value = 0
  let octet = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < length; i++) {
    const c = host.charCodeAt(i)
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1
      value = value * 256 + octet
      octet = 0
      digits = 0
      dots += 1
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && octet === 0) return -1
      octet = octet * 10 + (c - 0x30)
      digits += 1
      if (octet > 255) return -1
    } else {
      return -1
    }
  }
  if (digits === 0 || dots !== 3) return -1
  return value * 256 + octet
}

/** Writes the 4 bytes of a dotted-quad IPv4 address. */
export function writeIpv4(w: Writer, host: string): void {
  const value = ipv4Number(host)
  if (value < 0) throw new Ipv8Error('BAD_ADDRESS', { host, family: 4 })
  const at = w.reserve(4)
  w.buffer.writeUInt32BE(value, at)
}

/** Reads 4 bytes as a dotted-quad IPv4 address. */
export function readIpv4(r: Reader): string {
  const at = r.take(4)
  const d = r.data
  return `${d[at]}.${d[at + 1]}.${d[at + 2]}.${d[at + 3]}`
}

/** Writes the 16 bytes of an IPv6 address (any textual form, including embedded IPv4). */
export function writeIpv6(w: Writer, host: string): void {
  const bytes = ipv6Bytes(host)
  if (bytes === undefined) throw new Ipv8Error('BAD_ADDRESS', { host, family: 6 })
  w.bytes(bytes)
}

/** Reads 16 bytes as an IPv6 address in RFC 5952 form, as inet_ntop writes it (IPv4-mapped with a dotted tail). */
export function readIpv6(r: Reader): string {
  const at = r.take(16)
  return formatIpv6(r.data.subarray(at, at + 16))
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new Ipv8Error('BAD_ADDRESS', { port })
  return port
}

/** Type bytes of py-ipv8's `ip_address` and `address` formats. */
const IPV4_TYPE = 0x01
const DOMAIN_TYPE = 0x02
const IPV6_TYPE = 0x03

/** Writes `address` as py-ipv8's `ip_address` (or `address` when `domains` is set). */
export function writeTypedAddress(w: Writer, address: SocketAddress, domains: boolean): void {
  const port = checkPort(address.port)
  if (ipv4Number(address.host) >= 0) {
    w.u8(IPV4_TYPE)
    writeIpv4(w, address.host)
  } else if (isIPv6(address.host)) {
    w.u8(IPV6_TYPE)
    writeIpv6(w, address.host)
  } else if (domains && address.host.length > 0) {
    const name = Buffer.from(address.host, 'utf8')
    if (name.length > 0xffff) throw new Ipv8Error('BAD_ADDRESS', { reason: 'domain too long' })
    w.u8(DOMAIN_TYPE)
    w.u16(name.length)
    w.bytes(name)
  } else {
    throw new Ipv8Error('BAD_ADDRESS', { host: address.host })
  }
  w.u16(port)
}

/** Reads py-ipv8's `ip_address` (or `address` when `domains` is set). */
export function readTypedAddress(r: Reader, domains: boolean): SocketAddress {
  const type = r.u8()
  let host: string
  if (type === IPV4_TYPE) host = readIpv4(r)
  else if (type === IPV6_TYPE) host = readIpv6(r)
  else if (type === DOMAIN_TYPE && domains) host = decodeUtf8(r.bytes(r.u16()))
  else throw new Ipv8Error('BAD_ADDRESS', { type, offset: r.offset - 1 })
  return { host, port: r.u16() }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Strict UTF-8 decoding: invalid sequences throw `BAD_UTF8`. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes)
  } catch {
    throw new Ipv8Error('BAD_UTF8', { length: bytes.length })
  }
}

/** Writes `ipv4` (4 bytes + port). */
export function writeIpv4Address(w: Writer, address: SocketAddress): void {
  writeIpv4(w, address.host)
  w.u16(checkPort(address.port))
}

/** Reads `ipv4` (4 bytes + port). */
export function readIpv4Address(r: Reader): SocketAddress {
  return { host: readIpv4(r), port: r.u16() }
}
