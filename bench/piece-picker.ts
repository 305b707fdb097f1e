// Piece picker speed on 100,000 pieces and 50 peers holding random halves of the torrent: applying `have`
// messages, and a download loop (pick 16 blocks, receive them, verify finished pieces). The reference is a plain
// rarest-first picker that scans every piece on each pick, the approach of simple clients.
import { performance } from 'node:perf_hooks'
import { Bitfield, BLOCK_SIZE, PiecePicker } from '../src/bittorrent/piece-picker/index.js'
import { seededRandom } from '../src/net/index.js'

const PIECES = 100_000
const PEERS = 50
const BLOCKS_PER_PIECE = 4
const PICKS = 20_000
const REQUESTS_PER_PICK = 16

/** Rarest first by scanning all pieces: O(pieces) per pick. */
class ScanningPicker {
  readonly availability = new Uint32Array(PIECES)
  readonly have = new Uint8Array(PIECES)
  readonly nextBlock = new Uint8Array(PIECES)
  peerHave(piece: number): void {
    this.availability[piece]!++
  }
  pick(peer: Bitfield, count: number): number {
    let picked = 0
    while (picked < count) {
      let best = -1
      for (let piece = 0; piece < PIECES; piece++) {
        if (this.have[piece] || this.nextBlock[piece]! >= BLOCKS_PER_PIECE || !peer.has(piece)) continue
        if (best < 0 || this.availability[piece]! < this.availability[best]!) best = piece
      }
      if (best < 0) break
      this.nextBlock[best]!++
      picked++
      if (this.nextBlock[best] === BLOCKS_PER_PIECE) this.have[best] = 1
    }
    return picked
  }
}

const rand = seededRandom(7)
const fields = Array.from({ length: PEERS }, () => {
  const field = new Bitfield(PIECES)
  for (let piece = 0; piece < PIECES; piece++) if (rand() < 0.5) field.set(piece)
  return field
})

function ours(): { haveMs: number; pickUs: number } {
  const picker = new PiecePicker<number>({
    pieceCount: PIECES,
    pieceLength: BLOCKS_PER_PIECE * BLOCK_SIZE,
    totalLength: PIECES * BLOCKS_PER_PIECE * BLOCK_SIZE,
    random: seededRandom(1),
  })
  const start = performance.now()
  fields.forEach((field, peer) => {
    for (const piece of field) picker.peerHave(peer, piece)
  })
  const haveMs = performance.now() - start
  const pickStart = performance.now()
  for (let i = 0; i < PICKS; i++) {
    const peer = i % PEERS
    for (const block of picker.pickBlocks(peer, REQUESTS_PER_PICK)) {
      if (picker.blockReceived(peer, block.piece, block.offset).pieceComplete)
        picker.pieceVerified(block.piece)
    }
  }
  return { haveMs, pickUs: ((performance.now() - pickStart) / PICKS) * 1000 }
}

function reference(): { haveMs: number; pickUs: number } {
  const picker = new ScanningPicker()
  const start = performance.now()
  for (const field of fields) for (const piece of field) picker.peerHave(piece)
  const haveMs = performance.now() - start
  // The scan is slow: time a tenth as many picks.
  const picks = PICKS / 10
  const pickStart = performance.now()
  for (let i = 0; i < picks; i++) picker.pick(fields[i % PEERS]!, REQUESTS_PER_PICK)
  return { haveMs, pickUs: ((performance.now() - pickStart) / picks) * 1000 }
}

const us = ours()
const them = reference()
console.log(
  `piece picker: ${PIECES} pieces, ${PEERS} peers with half the pieces each, ${REQUESTS_PER_PICK} blocks per pick`,
)
console.log(
  `have messages   tribler-ts ${us.haveMs.toFixed(1)} ms   scanning picker ${them.haveMs.toFixed(1)} ms   ratio ${(them.haveMs / us.haveMs).toFixed(2)}x`,
)
console.log(
  `pick+receive    tribler-ts ${us.pickUs.toFixed(1)} µs   scanning picker ${them.pickUs.toFixed(1)} µs   ratio ${(them.pickUs / us.pickUs).toFixed(1)}x`,
)
