import { seededRandom } from '../../net/index.js'
import { Bitfield } from './bitfield.js'
import { PiecePicker } from './piece-picker.js'
import type { Priority } from './types.js'
import { BLOCK_SIZE } from './types.js'

/** Blocks per piece in fixtures, as in libtorrent's picker tests. */
export const BLOCKS_PER_PIECE = 4

/**
 * A picker described by strings with one character per piece, like libtorrent's
 * `setup_picker("1111111", "       ", "7110000", "")`:
 * - `availability`: digit = how many peers have the piece (made from peers `a1`..`a9`),
 * - `have`: `*` = we have the piece,
 * - `priority`: digit 0..7 (empty: default priority),
 * - `partial`: digit = how many leading blocks were already received.
 */
export function setupPicker(
  availability: string,
  have = '',
  priority = '',
  partial = '',
  options: { seed?: number; lastPieceBytes?: number } = {},
): PiecePicker {
  const pieceCount = availability.length
  const pieceLength = BLOCKS_PER_PIECE * BLOCK_SIZE
  const totalLength = (pieceCount - 1) * pieceLength + (options.lastPieceBytes ?? pieceLength)
  const picker = new PiecePicker({
    pieceCount,
    pieceLength,
    totalLength,
    random: seededRandom(options.seed ?? 1),
  })
  if (priority !== '') picker.setPiecePriorities([...priority].map((c) => Number(c) as Priority))
  for (let level = 1; level <= 9; level++) {
    const field = new Bitfield(pieceCount)
    ;[...availability].forEach((c, piece) => {
      if (Number(c) >= level) field.set(piece)
    })
    if (field.count > 0) picker.peerBitfield(`a${level}`, field)
  }
  ;[...have].forEach((c, piece) => {
    if (c === '*') picker.setHave(piece)
  })
  ;[...partial].forEach((c, piece) => {
    for (let block = 0; block < Number(c || 0); block++)
      picker.blockReceived('partial', piece, block * BLOCK_SIZE)
  })
  return picker
}

/** The pieces of requests, in order, without repeats. */
export function piecesOf(requests: readonly { piece: number }[]): number[] {
  return [...new Set(requests.map((r) => r.piece))]
}
