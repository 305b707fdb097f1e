import { isIPv4, isIPv6 } from 'node:net'
import type { PeerAddress } from './types.js'

/**
 * The bytes of an IP address: 4 for IPv4, 16 for IPv6 (an IPv4-mapped IPv6 address stays 16 bytes), or undefined
 * when `ip` is not an address.
 */
export function ipToBytes(ip: string): Buffer | undefined {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number))
  if (!isIPv6(ip)) return undefined
  let text = ip
  const zone = text.indexOf('%')
  if (zone !== -1) text = text.slice(0, zone)
  const words: number[] = []
  const dotted = text.lastIndexOf(':')
  const tail = text.slice(dotted + 1)
  if (isIPv4(tail)) {
    const v4 = tail.split('.').map(Number)
    text = `${text.slice(0, dotted + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`
  }
  const [head = '', rest] = text.split('::')
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)))
  const h = parse(head)
  if (rest === undefined) words.push(...h)
  else {
    const t = parse(rest)
    words.push(...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t)
  }
  const buf = Buffer.alloc(16)
  words.forEach((w, i) => {
    buf.writeUInt16BE(w, i * 2)
  })
  return buf
}

/** The text form of 4 or 16 address bytes (IPv6 in its shortest form). */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`
  const words: string[] = []
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16))
  // Longest run of zero words becomes '::' (RFC 5952).
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === '0') j++
    if (j - i > bestLength && j - i > 1) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  if (bestStart === -1) return words.join(':')
  return `${words.slice(0, bestStart).join(':')}::${words.slice(bestStart + bestLength).join(':')}`
}

/** Compact peers (BEP 23 / BEP 11): 6 bytes per IPv4 peer or 18 per IPv6 peer, address then big-endian port. */
export function encodeCompactPeers(peers: readonly PeerAddress[], family: 4 | 6): Buffer {
  const size = family === 4 ? 6 : 18
  const out: Buffer[] = []
  for (const peer of peers) {
    const ip = ipToBytes(peer.host)
    if (ip === undefined || ip.length !== size - 2) continue
    const entry = Buffer.alloc(size)
    entry.set(ip, 0)
    entry.writeUInt16BE(peer.port, size - 2)
    out.push(entry)
  }
  return Buffer.concat(out)
}

/** Decodes compact peers; trailing bytes that do not make a whole entry are ignored, like libtorrent does. */
export function decodeCompactPeers(bytes: Uint8Array, family: 4 | 6): PeerAddress[] {
  const size = family === 4 ? 6 : 18
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const peers: PeerAddress[] = []
  for (let offset = 0; offset + size <= view.length; offset += size) {
    peers.push({
      host: bytesToIp(view.subarray(offset, offset + size - 2)),
      port: view.readUInt16BE(offset + size - 2),
    })
  }
  return peers
}
