/**
 * The piece picker: which blocks to request from which peer (rarest first, priorities, streaming, endgame).
 *
 * @example
 * ```ts
 * import { PiecePicker } from '../piece-picker/index.js'
 * const picker = PiecePicker.forTorrent(torrent)
 * picker.peerHaveAll(peer)
 * const requests = picker.pickBlocks(peer, 32)
 * ```
 */
export { Bitfield } from './bitfield.js'
export { PiecePicker } from './piece-picker.js'
export {
  BLOCK_SIZE,
  type BlockReceived,
  type BlockRequest,
  DEFAULT_PRIORITY,
  MAX_PRIORITY,
  type PickOptions,
  PiecePickerError,
  type PiecePickerErrorCode,
  type PiecePickerOptions,
  type Priority,
  type PriorityRange,
} from './types.js'
