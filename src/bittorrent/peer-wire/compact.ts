import { bytesToIp, ipToBytes } from '../../net/index.js'
import type { PeerAddress } from './types.js'

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
