import { isIP, isIPv4, isIPv6 } from 'node:net'

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

/** The bytes of an IP address: 4 for IPv4, 16 for IPv6; undefined when `host` is not an address. */
export function ipToBytes(host: string): Buffer | undefined {
  return ipv4Bytes(host) ?? ipv6Bytes(host)
}

/** The text of 4 (IPv4) or 16 (IPv6, canonical as {@link formatIpv6}) address bytes. */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`
  if (bytes.length === 16) return formatIpv6(bytes)
  throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`)
}

const FAMILY_CACHE_LIMIT = 4096
const families = new Map<string, 0 | 4 | 6>()

/**
 * `net.isIP(host)` for hosts seen over and over: the datagram paths ask it for every packet, and node's regular
 * expressions cost more than a map lookup. The cache is bounded (cleared when full).
 */
export function ipFamily(host: string): 0 | 4 | 6 {
  let family = families.get(host)
  if (family === undefined) {
    family = isIP(host) as 0 | 4 | 6
    if (families.size >= FAMILY_CACHE_LIMIT) families.clear()
    families.set(host, family)
  }
  return family
}
