import { formatIpv6, ipToBytes, type SocketAddress } from '../../net/index.js'

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
  const ip = ipToBytes(address.host)
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
