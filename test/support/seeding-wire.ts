/**
 * A minimal seeder on one connection, for interop tests that prove the wire (or what carries it) rather than the
 * engine: it answers the handshake of `torrent`, says it has every piece, unchokes whoever is interested and
 * serves requested blocks from `storage`.
 *
 * @example
 * ```ts
 * net.createServer((socket) => wires.push(seedingWire(socket, torrent, storage))).listen(0, '127.0.0.1')
 * ```
 */
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { PeerWire, type PeerWireOptions } from '../../src/bittorrent/peer-wire/index.js'
import type { Storage } from '../../src/bittorrent/storage/index.js'
import type { TorrentInfo } from '../../src/metainfo/index.js'

export function seedingWire(
  stream: Duplex,
  torrent: TorrentInfo,
  storage: Storage,
  options: Partial<PeerWireOptions> = {},
): PeerWire {
  const wire = new PeerWire(stream, {
    peerId: Buffer.concat([Buffer.from('-TS0001-'), randomBytes(12)]),
    metadata: Buffer.from(torrent.infoBytes),
    numPieces: torrent.pieceCount,
    ...options,
  })
  wire.on('handshake', (h) => {
    if (!h.infoHash.equals(torrent.infoHash)) return
    wire.handshake(h.infoHash)
    wire.haveAll()
  })
  wire.on('interested', () => wire.unchoke())
  wire.on('request', (req) => {
    storage.readBlock(req.index, req.begin, req.length).then(
      (block) => wire.piece(req.index, req.begin, block),
      () => wire.reject(req.index, req.begin, req.length),
    )
  })
  return wire
}
