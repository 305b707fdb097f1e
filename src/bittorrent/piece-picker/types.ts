import { TriblerError } from '../../common/index.js'

/** The standard request size (BEP 3): 16 KiB. */
export const BLOCK_SIZE = 16 * 1024

/** Piece priorities, libtorrent's scale: 0 skips the piece, 1 is lowest, 4 the default, 7 the highest. */
export type Priority = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7
export const DEFAULT_PRIORITY: Priority = 4
export const MAX_PRIORITY: Priority = 7

/** A block to request from a peer (a `request` message). */
export interface BlockRequest {
  readonly piece: number
  /** Byte offset inside the piece; a multiple of `BLOCK_SIZE`. */
  readonly offset: number
  readonly length: number
}

/** What a received block changed. */
export interface BlockReceived<Peer> {
  /** False for a block we already have or do not want: drop its data. */
  readonly accepted: boolean
  /** Every block of the piece has arrived: hash it, then call `pieceVerified` or `pieceFailed`. */
  readonly pieceComplete: boolean
  /** Other peers that were asked for the same block (endgame): send them a `cancel`. */
  readonly cancel: readonly Peer[]
}

/** Options of `PiecePicker`. */
export interface PiecePickerOptions {
  readonly pieceCount: number
  readonly pieceLength: number
  readonly totalLength: number
  /** Random numbers in [0, 1) for tie-breaking; inject a seeded one in tests. Default `Math.random`. */
  readonly random?: () => number
  /** How many peers may be asked for the same block in endgame mode (default 2). */
  readonly maxEndgameRequesters?: number
}

/** Options of `pickBlocks`. */
export interface PickOptions {
  /**
   * Pick only from these pieces: the peer's allowed-fast set while it chokes us (BEP 6). Without it the peer is
   * assumed to unchoke us.
   */
  readonly onlyPieces?: Iterable<number>
}

/** A byte range of the torrent with a priority: a file. */
export interface PriorityRange {
  readonly offset: number
  readonly length: number
  /** BEP 47 padding files do not count toward the priority of the pieces they share. */
  readonly padding?: boolean
}

export type PiecePickerErrorCode = 'INVALID_PIECE' | 'INVALID_BLOCK' | 'INVALID_PRIORITY' | 'INVALID_LAYOUT'

/** A caller passed a piece, block or priority that does not exist. */
export class PiecePickerError extends TriblerError<PiecePickerErrorCode> {}
