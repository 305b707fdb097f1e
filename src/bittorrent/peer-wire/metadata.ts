import { createHash } from 'node:crypto'
import { METADATA_PIECE_BYTES } from './extensions.js'
import { type Id20, PeerWireError } from './types.js'

/** Largest info dictionary accepted by default (libtorrent's default is 30 MiB; ours is smaller). */
export const DEFAULT_MAX_METADATA_BYTES = 16 * 1024 * 1024

/**
 * Collects the pieces of an info dictionary received with ut_metadata (BEP 9) and checks the whole against the
 * info hash. A mismatch throws `METADATA_HASH_MISMATCH` and starts over, so another peer can be asked.
 *
 * @example
 * ```ts
 * const assembler = new MetadataAssembler(infoHash, handshake.metadataSize)
 * for (const piece of assembler.missing()) wire.requestMetadataPiece(piece)
 * const info = assembler.add(piece, data) // the info dictionary once complete and verified
 * ```
 */
export class MetadataAssembler {
  readonly size: number
  readonly numPieces: number
  readonly #infoHash: Buffer
  readonly #buffer: Buffer
  readonly #have: boolean[]
  #count = 0

  constructor(infoHash: Id20, size: number, maxBytes = DEFAULT_MAX_METADATA_BYTES) {
    if (!Number.isSafeInteger(size) || size <= 0 || size > maxBytes) {
      throw new PeerWireError('METADATA_TOO_LARGE', { size, maxBytes })
    }
    this.#infoHash = Buffer.from(infoHash)
    this.size = size
    this.numPieces = Math.ceil(size / METADATA_PIECE_BYTES)
    this.#buffer = Buffer.alloc(size)
    this.#have = new Array<boolean>(this.numPieces).fill(false)
  }

  /** Pieces not received yet, in order. */
  missing(): number[] {
    const out: number[] = []
    for (let i = 0; i < this.numPieces; i++) if (!this.#have[i]) out.push(i)
    return out
  }

  /** Bytes piece `piece` must have. */
  pieceBytes(piece: number): number {
    return piece === this.numPieces - 1 ? this.size - piece * METADATA_PIECE_BYTES : METADATA_PIECE_BYTES
  }

  /**
   * Stores one piece; returns the verified info dictionary when it was the last one, else undefined.
   * @throws PeerWireError `INVALID_EXTENSION_MESSAGE` for a piece of the wrong index or size,
   *   `METADATA_HASH_MISMATCH` when the assembled bytes do not hash to the info hash (everything is dropped).
   */
  add(piece: number, data: Uint8Array): Buffer | undefined {
    if (
      !Number.isInteger(piece) ||
      piece < 0 ||
      piece >= this.numPieces ||
      data.length !== this.pieceBytes(piece)
    ) {
      throw new PeerWireError('INVALID_EXTENSION_MESSAGE', {
        reason: 'bad metadata piece',
        piece,
        length: data.length,
      })
    }
    if (!this.#have[piece]) {
      this.#buffer.set(data, piece * METADATA_PIECE_BYTES)
      this.#have[piece] = true
      this.#count++
    }
    if (this.#count < this.numPieces) return undefined
    const digest = createHash('sha1').update(this.#buffer).digest()
    if (!digest.equals(this.#infoHash)) {
      this.#have.fill(false)
      this.#count = 0
      throw new PeerWireError('METADATA_HASH_MISMATCH', { size: this.size })
    }
    return this.#buffer
  }
}
