import { isIPv4, isIPv6 } from 'node:net'
import type { SocketAddress } from '../../net/index.js'

/** Bytes of an IPv4 address, or undefined when `host` is not one. */
export function ipv4Bytes(host: string): Buffer | undefined {
  if (!isIPv4(host)) return undefined
  return Buffer.from(host.split('.').map(Number))
}

/** Bytes of an IPv6 address (an embedded IPv4 tail is accepted), or undefined when `host` is not one. */
export function ipv6Bytes(host: string): Buffer | undefined {
  if (!isIPv6(host)) return undefined
  let text = host
  const zone = text.indexOf('%')
  if (zone >= 0) text = text.slice(0, zone)
  const out = Buffer.alloc(16)
  const lastColon = text.lastIndexOf(':')
  const tail = text.slice(lastColon + 1)
  let tailBytes: Buffer | undefined
  if (tail.includes('.')) {
    tailBytes = ipv4Bytes(tail)
    if (tailBytes === undefined) return undefined
    text = `${text.slice(0, lastColon + 1)}0:0`
  }
  const [head = '', rest] = text.split('::')
  const headGroups = head === '' ? [] : head.split(':')
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':')
  const groups =
    rest === undefined
      ? headGroups
      : [
          ...headGroups,
          ...new Array<string>(8 - headGroups.length - restGroups.length).fill('0'),
          ...restGroups,
        ]
  if (groups.length !== 8) return undefined
  groups.forEach((group, i) => {
    out.writeUInt16BE(Number.parseInt(group, 16), i * 2)
  })
  if (tailBytes !== undefined) tailBytes.copy(out, 12)
  return out
}

/** The canonical (RFC 5952) text of 16 IPv6 address bytes; IPv4-mapped addresses keep their dotted tail. */
export function formatIpv6(bytes: Uint8Array): string {
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`
  }
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!)
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

/** The canonical text of an address, so the same peer from two sources compares equal. */
export function canonicalHost(host: string): string {
  const v6 = ipv6Bytes(host)
  return v6 === undefined ? host : formatIpv6(v6)
}

/**
 * Parses BEP 23 compact peers (6 bytes each) or BEP 7 compact IPv6 peers (18 bytes each). Returns undefined when
 * the length is not a multiple of the entry size. Port 0 entries are dropped: nobody can connect to them.
 */
export function parseCompactPeers(data: Uint8Array, family: 4 | 6): SocketAddress[] | undefined {
  const size = family === 4 ? 6 : 18
  if (data.length % size !== 0) return undefined
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const peers: SocketAddress[] = []
  for (let offset = 0; offset < buf.length; offset += size) {
    const host =
      family === 4
        ? `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`
        : formatIpv6(buf.subarray(offset, offset + 16))
    const port = buf.readUInt16BE(offset + size - 2)
    if (port !== 0) peers.push({ host, port })
  }
  return peers
}

/** The compact form of one address: 6 bytes for IPv4, 18 for IPv6; undefined for anything else. */
export function encodeCompactPeer(address: SocketAddress): Buffer | undefined {
  const ip = ipv4Bytes(address.host) ?? ipv6Bytes(address.host)
  if (ip === undefined || !Number.isInteger(address.port) || address.port < 0 || address.port > 0xffff) {
    return undefined
  }
  const out = Buffer.alloc(ip.length + 2)
  ip.copy(out)
  out.writeUInt16BE(address.port, ip.length)
  return out
}

/** Removes repeated addresses, keeping the first of each. */
export function uniquePeers<T extends SocketAddress>(peers: Iterable<T>): T[] {
  const seen = new Set<string>()
  const out: T[] = []
  for (const peer of peers) {
    const key = `${peer.host}|${peer.port}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push(peer)
  }
  return out
}
