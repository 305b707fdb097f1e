import { Bitfield } from './bitfield.js'
import type {
  BlockReceived,
  BlockRequest,
  PickOptions,
  PiecePickerOptions,
  Priority,
  PriorityRange,
} from './types.js'
import { BLOCK_SIZE, DEFAULT_PRIORITY, MAX_PRIORITY, PiecePickerError } from './types.js'

// Availability beyond this many peers no longer separates pieces: it keeps the number of buckets small.
const AVAILABILITY_LEVELS = 64
const BUCKETS = MAX_PRIORITY * AVAILABILITY_LEVELS
const MAX_BLOCKS_PER_PIECE = 65536
// A peer cannot make us remember more suggestions than this (the oldest are forgotten).
const MAX_SUGGESTED = 64

const FREE = 0
const REQUESTED = 1
const RECEIVED = 2

interface PeerState<Peer> {
  readonly peer: Peer
  /** Undefined for a seed (`have all`). */
  have: Bitfield | undefined
  readonly requests: Set<number>
  suggested: number[]
}

/** A piece with at least one block requested or received. */
interface Partial<Peer> {
  readonly piece: number
  readonly state: Uint8Array
  /** Who was asked for each block; who sent it once received. */
  readonly peers: (Peer[] | undefined)[]
  free: number
  received: number
  /** Lowest block index that may be free. */
  firstFree: number
}

/**
 * Decides which blocks to request from which peer: rarest first with random tie-breaking, partially downloaded
 * pieces first, priorities (per piece or per file, 0 = skip), a sequential mode, urgent pieces for streaming,
 * endgame, and BEP 6 suggest / allowed-fast.
 *
 * Pieces not yet started are kept in one array ordered by (priority, availability) in buckets, as libtorrent's
 * picker does: a change of availability moves a piece to the neighbouring bucket in O(1), so `have` messages
 * are cheap, and picking for a peer that has the rarest pieces stops at the first ones.
 *
 * @example
 * ```ts
 * const picker = PiecePicker.forTorrent(torrent)
 * picker.addPeer(peer); picker.peerBitfield(peer, bitfield)
 * for (const block of picker.pickBlocks(peer, 16)) wire.request(block)
 * const { pieceComplete, cancel } = picker.blockReceived(peer, piece, offset)
 * if (pieceComplete) (await verify(piece)) ? picker.pieceVerified(piece) : picker.pieceFailed(piece)
 * ```
 */
export class PiecePicker<Peer = string> {
  readonly pieceCount: number
  readonly pieceLength: number
  readonly totalLength: number
  readonly #random: () => number
  readonly #maxEndgameRequesters: number

  readonly #have: Bitfield
  readonly #priority: Uint8Array
  /** Peers having each piece, seeds not counted. */
  readonly #availability: Uint32Array
  #seeds = 0
  readonly #peers = new Map<Peer, PeerState<Peer>>()
  readonly #partials = new Map<number, Partial<Peer>>()

  /** Unstarted wanted pieces, ordered by bucket. */
  readonly #order: Int32Array
  /** Position of each piece in `#order`, or -1 when it is not there. */
  readonly #position: Int32Array
  /** End (exclusive) of each bucket in `#order`; bucket k starts where k - 1 ends. */
  readonly #bucketEnd = new Int32Array(BUCKETS)
  #sequential = false
  #sequentialCursor = 0
  #urgent: number[] = []

  constructor(options: PiecePickerOptions) {
    const { pieceCount, pieceLength, totalLength } = options
    if (
      !Number.isSafeInteger(pieceCount) ||
      pieceCount < 0 ||
      pieceLength <= 0 ||
      pieceLength > BLOCK_SIZE * MAX_BLOCKS_PER_PIECE ||
      Math.ceil(totalLength / pieceLength) !== pieceCount
    ) {
      throw new PiecePickerError('INVALID_LAYOUT', { pieceCount, pieceLength, totalLength })
    }
    this.pieceCount = pieceCount
    this.pieceLength = pieceLength
    this.totalLength = totalLength
    this.#random = options.random ?? Math.random
    this.#maxEndgameRequesters = options.maxEndgameRequesters ?? 2
    this.#have = new Bitfield(pieceCount)
    this.#priority = new Uint8Array(pieceCount).fill(DEFAULT_PRIORITY)
    this.#availability = new Uint32Array(pieceCount)
    this.#order = new Int32Array(pieceCount)
    this.#position = new Int32Array(pieceCount)
    this.#rebuild()
  }

  /** A picker for a torrent's piece layout. */
  static forTorrent<Peer = string>(
    torrent: { pieceCount: number; pieceLength: number; totalLength: number },
    options: Omit<PiecePickerOptions, 'pieceCount' | 'pieceLength' | 'totalLength'> = {},
  ): PiecePicker<Peer> {
    return new PiecePicker<Peer>({ ...options, ...torrent })
  }

  // ---- layout --------------------------------------------------------------------------------------------

  /** Length in bytes of `piece` (the last one may be shorter). */
  pieceSize(piece: number): number {
    this.#checkPiece(piece)
    return piece === this.pieceCount - 1 ? this.totalLength - piece * this.pieceLength : this.pieceLength
  }

  /** Number of 16 KiB blocks in `piece`. */
  blockCount(piece: number): number {
    return Math.ceil(this.pieceSize(piece) / BLOCK_SIZE)
  }

  // ---- our pieces ----------------------------------------------------------------------------------------

  /** Pieces we have, verified. */
  get have(): Bitfield {
    return this.#have
  }

  /** Whether we have `piece`, verified. */
  hasPiece(piece: number): boolean {
    return this.#have.has(piece)
  }

  /** Marks `piece` as had without downloading it (resume data, or a check of existing files). */
  setHave(piece: number): void {
    this.pieceVerified(piece)
  }

  /** Pieces still wanted: not had, priority above 0. */
  get piecesLeft(): number {
    let left = 0
    for (let i = 0; i < this.pieceCount; i++) if (this.#wanted(i)) left++
    return left
  }

  /** Every wanted piece is had. */
  get isFinished(): boolean {
    return this.#size() === 0 && this.#partials.size === 0 && this.#urgentLeft() === 0
  }

  /** Every unstarted wanted piece has been started, so idle peers may duplicate outstanding requests. */
  get inEndgame(): boolean {
    return this.#size() === 0 && this.#partials.size > 0
  }

  // ---- priorities ----------------------------------------------------------------------------------------

  /** Priority of `piece` (0 = skipped). */
  piecePriority(piece: number): Priority {
    this.#checkPiece(piece)
    return this.#priority[piece] as Priority
  }

  /** Sets one piece's priority. */
  setPiecePriority(piece: number, priority: Priority): void {
    this.#checkPiece(piece)
    this.#checkPriority(priority)
    if (this.#priority[piece] === priority) return
    this.#removeFromOrder(piece)
    this.#priority[piece] = priority
    if (this.#unstartedWanted(piece)) this.#insert(piece)
    if (piece < this.#sequentialCursor) this.#sequentialCursor = piece
  }

  /** Sets every piece's priority at once. */
  setPiecePriorities(priorities: ArrayLike<number>): void {
    if (priorities.length !== this.pieceCount) {
      throw new PiecePickerError('INVALID_PRIORITY', {
        length: priorities.length,
        pieceCount: this.pieceCount,
      })
    }
    for (let i = 0; i < priorities.length; i++) this.#checkPriority(priorities[i]!)
    this.#priority.set(priorities)
    this.#rebuild()
  }

  /**
   * Sets piece priorities from file priorities: a piece gets the highest priority of the files it overlaps, as
   * in libtorrent, so a skipped file's pieces shared with a wanted file are still downloaded. Padding files do
   * not count.
   */
  setFilePriorities(files: readonly PriorityRange[], priorities: readonly number[]): void {
    if (files.length !== priorities.length) {
      throw new PiecePickerError('INVALID_PRIORITY', { files: files.length, priorities: priorities.length })
    }
    const pieces = new Uint8Array(this.pieceCount)
    files.forEach((file, index) => {
      const priority = priorities[index]!
      this.#checkPriority(priority)
      if (file.padding || file.length === 0 || priority === 0) return
      const first = Math.floor(file.offset / this.pieceLength)
      const last = Math.min(
        Math.floor((file.offset + file.length - 1) / this.pieceLength),
        this.pieceCount - 1,
      )
      for (let piece = first; piece <= last; piece++) if (pieces[piece]! < priority) pieces[piece] = priority
    })
    this.setPiecePriorities(pieces)
  }

  /** Download in piece order instead of rarest first (still after urgent and partial pieces). */
  setSequential(sequential: boolean): void {
    this.#sequential = sequential
    this.#sequentialCursor = 0
  }

  /**
   * Pieces to download before anything else, in this order (streaming: the pieces under the play position).
   * Replaces the previous list; pieces already had or skipped are ignored.
   */
  setUrgentPieces(pieces: readonly number[]): void {
    for (const piece of pieces) this.#checkPiece(piece)
    this.#urgent = [...pieces]
  }

  // ---- peers ---------------------------------------------------------------------------------------------

  /** Starts tracking a peer with no pieces. */
  addPeer(peer: Peer): void {
    if (this.#peers.has(peer)) return
    this.#peers.set(peer, { peer, have: new Bitfield(this.pieceCount), requests: new Set(), suggested: [] })
  }

  /** Forgets a peer: its pieces no longer count and its outstanding requests become pickable again. */
  removePeer(peer: Peer): void {
    const state = this.#peers.get(peer)
    if (state === undefined) return
    this.releasePeer(peer)
    if (state.have === undefined) this.#seeds--
    else for (const piece of state.have) this.#changeAvailability(piece, -1)
    this.#peers.delete(peer)
  }

  /** A `have` message. */
  peerHave(peer: Peer, piece: number): void {
    this.#checkPiece(piece)
    const state = this.#peerState(peer)
    if (state.have?.set(piece)) this.#changeAvailability(piece, +1)
  }

  /** A `bitfield` message (replaces what the peer had). */
  peerBitfield(peer: Peer, bitfield: Bitfield): void {
    if (bitfield.length !== this.pieceCount)
      throw new PiecePickerError('INVALID_PIECE', { length: bitfield.length })
    this.peerHaveNone(peer)
    const state = this.#peerState(peer)
    for (const piece of bitfield) {
      state.have!.set(piece)
      this.#changeAvailability(piece, +1)
    }
  }

  /** A `have all` message (BEP 6): the peer is a seed. Seeds are counted apart, in O(1). */
  peerHaveAll(peer: Peer): void {
    const state = this.#peerState(peer)
    if (state.have === undefined) return
    for (const piece of state.have) this.#changeAvailability(piece, -1)
    state.have = undefined
    this.#seeds++
  }

  /** A `have none` message (BEP 6): the peer has nothing. */
  peerHaveNone(peer: Peer): void {
    const state = this.#peerState(peer)
    if (state.have === undefined) this.#seeds--
    else for (const piece of state.have) this.#changeAvailability(piece, -1)
    state.have = new Bitfield(this.pieceCount)
  }

  /** A `suggest piece` message (BEP 6): picked from this peer before rarer pieces. */
  peerSuggest(peer: Peer, piece: number): void {
    this.#checkPiece(piece)
    const state = this.#peerState(peer)
    if (state.suggested.includes(piece)) return
    state.suggested.push(piece)
    if (state.suggested.length > MAX_SUGGESTED) state.suggested.shift()
  }

  /** Whether `peer` has `piece`. */
  peerHasPiece(peer: Peer, piece: number): boolean {
    const state = this.#peerState(peer)
    return state.have === undefined || state.have.has(piece)
  }

  /** How many connected peers have `piece`. */
  availability(piece: number): number {
    this.#checkPiece(piece)
    return this.#availability[piece]! + this.#seeds
  }

  /** Whether `peer` has a piece we want and do not have (send `interested`). Stops at the first one. */
  isInteresting(peer: Peer): boolean {
    const state = this.#peerState(peer)
    if (state.have === undefined) return this.#size() > 0 || this.#partials.size > 0
    for (const piece of state.have) if (this.#wanted(piece)) return true
    return false
  }

  /** Blocks requested from `peer` and not yet received nor released. */
  outstandingRequests(peer: Peer): BlockRequest[] {
    return [...this.#peerState(peer).requests].map((key) =>
      this.#request(Math.floor(key / MAX_BLOCKS_PER_PIECE), key % MAX_BLOCKS_PER_PIECE),
    )
  }

  // ---- picking -------------------------------------------------------------------------------------------

  /**
   * Chooses up to `count` blocks to request from `peer` and records them as requested by it. Order: urgent
   * pieces, pieces the peer suggested, partially downloaded pieces, then unstarted pieces rarest first (or in
   * order when sequential); in endgame, blocks already requested from other peers.
   */
  pickBlocks(peer: Peer, count: number, options: PickOptions = {}): BlockRequest[] {
    const state = this.#peerState(peer)
    const picked: BlockRequest[] = []
    if (count <= 0) return picked
    if (options.onlyPieces !== undefined) {
      for (const piece of options.onlyPieces) {
        if (this.#takeFrom(state, piece, count, picked)) return picked
      }
      return this.#endgame(state, count, picked, new Set(options.onlyPieces))
    }
    for (const piece of this.#urgent) if (this.#takeFrom(state, piece, count, picked)) return picked
    if (state.suggested.length > 0) {
      state.suggested = state.suggested.filter((piece) => this.#wanted(piece))
      for (const piece of state.suggested) if (this.#takeFrom(state, piece, count, picked)) return picked
    }
    for (const partial of this.#partials.values()) {
      if (partial.free > 0 && this.#takeFrom(state, partial.piece, count, picked)) return picked
    }
    if (this.#sequential) {
      for (let piece = this.#sequentialCursor; piece < this.pieceCount; piece++) {
        if (this.#position[piece]! < 0) {
          if (piece === this.#sequentialCursor) this.#sequentialCursor++
          continue
        }
        if (this.#takeFrom(state, piece, count, picked)) return picked
      }
    } else {
      // Starting a piece takes it out of the order, so the scan position stays put when that happens.
      for (let at = 0; at < this.#size(); ) {
        const piece = this.#order[at]!
        if (this.#takeFrom(state, piece, count, picked)) return picked
        if (this.#order[at] === piece) at++
      }
    }
    return this.#endgame(state, count, picked)
  }

  // ---- block and piece events ----------------------------------------------------------------------------

  /** A `piece` message arrived from `peer`. */
  blockReceived(peer: Peer, piece: number, offset: number): BlockReceived<Peer> {
    const block = this.#blockIndex(piece, offset)
    const state = this.#peers.get(peer)
    if (!this.#wanted(piece) && !this.#partials.has(piece))
      return { accepted: false, pieceComplete: false, cancel: [] }
    const partial = this.#partials.get(piece) ?? this.#start(piece)
    state?.requests.delete(this.#key(piece, block))
    if (partial.state[block] === RECEIVED) return { accepted: false, pieceComplete: false, cancel: [] }
    const requesters = partial.peers[block] ?? []
    for (const other of requesters)
      if (other !== peer) this.#peers.get(other)?.requests.delete(this.#key(piece, block))
    if (partial.state[block] === FREE) partial.free--
    partial.state[block] = RECEIVED
    partial.peers[block] = [peer]
    partial.received++
    return {
      accepted: true,
      pieceComplete: partial.received === partial.state.length,
      cancel: requesters.filter((other) => other !== peer),
    }
  }

  /**
   * A request to `peer` is void: rejected (BEP 6), timed out or cancelled. The block becomes pickable again
   * unless another peer was also asked for it.
   */
  releaseRequest(peer: Peer, piece: number, offset: number): void {
    const block = this.#blockIndex(piece, offset)
    const state = this.#peers.get(peer)
    if (state === undefined || !state.requests.delete(this.#key(piece, block))) return
    this.#unrequest(peer, piece, block)
  }

  /** Releases every outstanding request to `peer` (it choked us without the fast extension, or left). */
  releasePeer(peer: Peer): void {
    const state = this.#peers.get(peer)
    if (state === undefined) return
    const keys = [...state.requests]
    state.requests.clear()
    for (const key of keys)
      this.#unrequest(peer, Math.floor(key / MAX_BLOCKS_PER_PIECE), key % MAX_BLOCKS_PER_PIECE)
  }

  /** `piece` passed its hash check: we have it. */
  pieceVerified(piece: number): void {
    this.#checkPiece(piece)
    this.#dropPartial(piece)
    this.#removeFromOrder(piece)
    this.#have.set(piece)
  }

  /**
   * `piece` failed its hash check: all its blocks become pickable again. Returns the peers that sent its
   * blocks, so the caller can hold them to account.
   */
  pieceFailed(piece: number): Peer[] {
    this.#checkPiece(piece)
    const partial = this.#partials.get(piece)
    const senders = new Set<Peer>()
    if (partial !== undefined) {
      partial.state.forEach((s, block) => {
        if (s === RECEIVED) for (const peer of partial.peers[block] ?? []) senders.add(peer)
      })
    }
    this.#dropPartial(piece)
    if (this.#have.clear(piece) || partial !== undefined) {
      if (this.#unstartedWanted(piece)) this.#insert(piece)
      if (piece < this.#sequentialCursor) this.#sequentialCursor = piece
    }
    return [...senders]
  }

  // ---- internals -----------------------------------------------------------------------------------------

  /** Takes free blocks of `piece` for `state`; true once `picked` holds `count` blocks. */
  #takeFrom(state: PeerState<Peer>, piece: number, count: number, picked: BlockRequest[]): boolean {
    if (piece < 0 || piece >= this.pieceCount) return false
    if (state.have !== undefined && !state.have.has(piece)) return false
    let partial = this.#partials.get(piece)
    if (partial === undefined) {
      if (!this.#wanted(piece)) return false
      partial = this.#start(piece)
    } else if (partial.free === 0) {
      return false
    }
    for (let block = partial.firstFree; block < partial.state.length && partial.free > 0; block++) {
      if (partial.state[block] !== FREE) {
        if (block === partial.firstFree) partial.firstFree++
        continue
      }
      partial.state[block] = REQUESTED
      partial.peers[block] = [state.peer]
      partial.free--
      state.requests.add(this.#key(piece, block))
      picked.push(this.#request(piece, block))
      if (picked.length >= count) return true
    }
    return false
  }

  /** Endgame: blocks already requested from others, fewest requesters first. */
  #endgame(
    state: PeerState<Peer>,
    count: number,
    picked: BlockRequest[],
    only?: ReadonlySet<number>,
  ): BlockRequest[] {
    if (picked.length >= count || !this.inEndgame) return picked
    for (let requesters = 1; requesters < this.#maxEndgameRequesters; requesters++) {
      for (const partial of this.#partials.values()) {
        if (only !== undefined && !only.has(partial.piece)) continue
        if (state.have !== undefined && !state.have.has(partial.piece)) continue
        for (let block = 0; block < partial.state.length; block++) {
          const peers = partial.peers[block]
          if (partial.state[block] !== REQUESTED || peers === undefined || peers.length !== requesters)
            continue
          if (peers.includes(state.peer)) continue
          peers.push(state.peer)
          state.requests.add(this.#key(partial.piece, block))
          picked.push(this.#request(partial.piece, block))
          if (picked.length >= count) return picked
        }
      }
    }
    return picked
  }

  #start(piece: number): Partial<Peer> {
    const blocks = this.blockCount(piece)
    const partial: Partial<Peer> = {
      piece,
      state: new Uint8Array(blocks),
      peers: new Array(blocks),
      free: blocks,
      received: 0,
      firstFree: 0,
    }
    this.#partials.set(piece, partial)
    this.#removeFromOrder(piece)
    return partial
  }

  #unrequest(peer: Peer, piece: number, block: number): void {
    const partial = this.#partials.get(piece)
    if (partial === undefined || partial.state[block] !== REQUESTED) return
    const peers = (partial.peers[block] ?? []).filter((p) => p !== peer)
    partial.peers[block] = peers.length > 0 ? peers : undefined
    if (peers.length > 0) return
    partial.state[block] = FREE
    partial.free++
    if (block < partial.firstFree) partial.firstFree = block
    // A piece nobody works on any more goes back to rarest-first ordering.
    if (partial.free === partial.state.length) {
      this.#partials.delete(piece)
      if (this.#unstartedWanted(piece)) this.#insert(piece)
      if (piece < this.#sequentialCursor) this.#sequentialCursor = piece
    }
  }

  #dropPartial(piece: number): void {
    const partial = this.#partials.get(piece)
    if (partial === undefined) return
    this.#partials.delete(piece)
    partial.peers.forEach((peers, block) => {
      if (partial.state[block] !== REQUESTED) return
      for (const peer of peers ?? []) this.#peers.get(peer)?.requests.delete(this.#key(piece, block))
    })
  }

  #wanted(piece: number): boolean {
    return this.#priority[piece]! > 0 && !this.#have.has(piece)
  }

  #unstartedWanted(piece: number): boolean {
    return this.#wanted(piece) && !this.#partials.has(piece)
  }

  #urgentLeft(): number {
    return this.#urgent.filter((piece) => this.#wanted(piece)).length
  }

  #request(piece: number, block: number): BlockRequest {
    const offset = block * BLOCK_SIZE
    return { piece, offset, length: Math.min(BLOCK_SIZE, this.pieceSize(piece) - offset) }
  }

  #key(piece: number, block: number): number {
    return piece * MAX_BLOCKS_PER_PIECE + block
  }

  #blockIndex(piece: number, offset: number): number {
    this.#checkPiece(piece)
    if (
      !Number.isInteger(offset) ||
      offset < 0 ||
      offset % BLOCK_SIZE !== 0 ||
      offset >= this.pieceSize(piece)
    ) {
      throw new PiecePickerError('INVALID_BLOCK', { piece, offset })
    }
    return offset / BLOCK_SIZE
  }

  #peerState(peer: Peer): PeerState<Peer> {
    let state = this.#peers.get(peer)
    if (state === undefined) {
      this.addPeer(peer)
      state = this.#peers.get(peer)!
    }
    return state
  }

  #checkPiece(piece: number): void {
    if (!Number.isInteger(piece) || piece < 0 || piece >= this.pieceCount) {
      throw new PiecePickerError('INVALID_PIECE', { piece, pieceCount: this.pieceCount })
    }
  }

  #checkPriority(priority: number): void {
    if (!Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
      throw new PiecePickerError('INVALID_PRIORITY', { priority })
    }
  }

  // ---- the bucketed order --------------------------------------------------------------------------------

  #size(): number {
    return this.#bucketEnd[BUCKETS - 1]!
  }

  #bucketOf(piece: number): number {
    const availability = Math.min(this.#availability[piece]!, AVAILABILITY_LEVELS - 1)
    return (MAX_PRIORITY - this.#priority[piece]!) * AVAILABILITY_LEVELS + availability
  }

  #bucketStart(bucket: number): number {
    return bucket === 0 ? 0 : this.#bucketEnd[bucket - 1]!
  }

  #place(piece: number, at: number): void {
    this.#order[at] = piece
    this.#position[piece] = at
  }

  #swap(a: number, b: number): void {
    if (a === b) return
    const pa = this.#order[a]!
    const pb = this.#order[b]!
    this.#place(pa, b)
    this.#place(pb, a)
  }

  /** Swaps the piece at `at` with a random member of `bucket`, so equally good pieces come in random order. */
  #shuffleInto(at: number, bucket: number): void {
    const start = this.#bucketStart(bucket)
    const size = this.#bucketEnd[bucket]! - start
    if (size > 1) this.#swap(at, start + Math.floor(this.#random() * size))
  }

  /** Moves the piece at `at` from `bucket` to `bucket + 1`: it swaps with the bucket's last member. */
  #moveUp(at: number, bucket: number): number {
    const last = this.#bucketEnd[bucket]! - 1
    this.#swap(at, last)
    this.#bucketEnd[bucket] = last
    return last
  }

  /** Moves the piece at `at` from `bucket` to `bucket - 1`: it swaps with the bucket's first member. */
  #moveDown(at: number, bucket: number): number {
    const first = this.#bucketStart(bucket)
    this.#swap(at, first)
    this.#bucketEnd[bucket - 1] = first + 1
    return first
  }

  #changeAvailability(piece: number, delta: 1 | -1): void {
    const at = this.#position[piece]!
    if (at < 0) {
      this.#availability[piece] = this.#availability[piece]! + delta
      return
    }
    const before = this.#bucketOf(piece)
    this.#availability[piece] = this.#availability[piece]! + delta
    const after = this.#bucketOf(piece)
    if (after === before) return
    const moved = after > before ? this.#moveUp(at, before) : this.#moveDown(at, before)
    this.#shuffleInto(moved, after)
  }

  #removeFromOrder(piece: number): void {
    let at = this.#position[piece]!
    if (at < 0) return
    for (let bucket = this.#bucketOf(piece); bucket < BUCKETS; bucket++) at = this.#moveUp(at, bucket)
    this.#position[piece] = -1
  }

  #insert(piece: number): void {
    const size = this.#size()
    this.#place(piece, size)
    this.#bucketEnd[BUCKETS - 1] = size + 1
    let at = size
    const target = this.#bucketOf(piece)
    for (let bucket = BUCKETS - 1; bucket > target; bucket--) at = this.#moveDown(at, bucket)
    this.#shuffleInto(at, target)
  }

  /** Rebuilds the order from scratch: a counting sort over a shuffled piece list. */
  #rebuild(): void {
    const pieces: number[] = []
    for (let piece = 0; piece < this.pieceCount; piece++) {
      this.#position[piece] = -1
      if (this.#unstartedWanted(piece)) pieces.push(piece)
    }
    for (let i = pieces.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1))
      const t = pieces[i]!
      pieces[i] = pieces[j]!
      pieces[j] = t
    }
    const counts = new Int32Array(BUCKETS)
    for (const piece of pieces) counts[this.#bucketOf(piece)]!++
    let end = 0
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      end += counts[bucket]!
      this.#bucketEnd[bucket] = end
    }
    const next = new Int32Array(BUCKETS)
    for (let bucket = 1; bucket < BUCKETS; bucket++) next[bucket] = this.#bucketEnd[bucket - 1]!
    for (const piece of pieces) this.#place(piece, next[this.#bucketOf(piece)]!++)
    this.#sequentialCursor = 0
  }
}
