import { createHash } from 'node:crypto'
import { ipToBytes } from '../../net/index.js'

/**
 * The allowed-fast set of BEP 6 for a peer at `ip`: `k` piece indices derived from the peer's /24 and the info
 * hash, so both ends compute the same set. IPv6 peers use the whole address (BEP 6 defines only IPv4; this is
 * what libtorrent does).
 *
 * @example
 * ```ts
 * allowedFastSet('80.4.4.200', Buffer.alloc(20, 0xaa), 1313, 7) // [1059, 431, 808, 1217, 287, 376, 1188]
 * ```
 */
export function allowedFastSet(ip: string, infoHash: Uint8Array, numPieces: number, k: number): number[] {
  const count = Math.min(k, numPieces)
  if (count <= 0) return []
  const address = ipToBytes(ip)
  if (address === undefined) return []
  // BEP 6: IPv4 peers are grouped by /24.
  if (address.length === 4) address[3] = 0
  let x = Buffer.concat([address, infoHash])
  const set: number[] = []
  while (set.length < count) {
    x = createHash('sha1').update(x).digest()
    for (let i = 0; i < 5 && set.length < count; i++) {
      const index = x.readUInt32BE(i * 4) % numPieces
      if (!set.includes(index)) set.push(index)
    }
  }
  return set
}
