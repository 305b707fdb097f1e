import { isIPv4, isIPv6 } from 'node:net'
import type { SocketAddress } from '../../net/index.js'
import { Ipv8Error } from '../errors.js'
import type { Reader, Writer } from './buffer.js'

/** `0.0.0.0:0`: py-ipv8's "no address". */
export const NO_ADDRESS: SocketAddress = Object.freeze({ host: '0.0.0.0', port: 0 })

/** Writes the 4 bytes of a dotted-quad IPv4 address. */
export function writeIpv4(w: Writer, host: string): void {
  if (!isIPv4(host)) throw new Ipv8Error('BAD_ADDRESS', { host, family: 4 })
  const at = w.reserve(4)
  const parts = host.split('.')
  for (let i = 0; i < 4; i++) w.buffer[at + i] = Number(parts[i])
}

/** Reads 4 bytes as a dotted-quad IPv4 address. */
export function readIpv4(r: Reader): string {
  const at = r.take(4)
  const d = r.data
  return `${d[at]}.${d[at + 1]}.${d[at + 2]}.${d[at + 3]}`
}

/** Writes the 16 bytes of an IPv6 address (any textual form, including embedded IPv4). */
export function writeIpv6(w: Writer, host: string): void {
  if (!isIPv6(host)) throw new Ipv8Error('BAD_ADDRESS', { host, family: 6 })
  let text = host.split('%')[0] ?? host
  const lastColon = text.lastIndexOf(':')
  const tail = text.slice(lastColon + 1)
  if (tail.includes('.')) {
    const q = tail.split('.').map(Number)
    const hi = (((q[0] ?? 0) << 8) | (q[1] ?? 0)).toString(16)
    const lo = (((q[2] ?? 0) << 8) | (q[3] ?? 0)).toString(16)
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`
  }
  const [head = '', rest] = text.split('::')
  const parse = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((x) => Number.parseInt(x, 16))
  const headWords = parse(head)
  const restWords = rest === undefined ? [] : parse(rest)
  const missing = 8 - headWords.length - restWords.length
  const words: number[] = []
  words.push(...headWords)
  if (rest !== undefined) for (let i = 0; i < missing; i++) words.push(0)
  words.push(...restWords)
  if (words.length !== 8) throw new Ipv8Error('BAD_ADDRESS', { host, family: 6 })
  const at = w.reserve(16)
  for (let i = 0; i < 8; i++) w.buffer.writeUInt16BE(words[i] ?? 0, at + i * 2)
}

/** Reads 16 bytes as an IPv6 address in RFC 5952 form (longest zero run compressed), as inet_ntop does. */
export function readIpv6(r: Reader): string {
  const at = r.take(16)
  const words: number[] = []
  for (let i = 0; i < 8; i++) words.push(r.data.readUInt16BE(at + i * 2))
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = words.map((word) => word.toString(16))
  if (bestLength < 2) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
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
  if (isIPv4(address.host)) {
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
