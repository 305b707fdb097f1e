import type { Duplex } from 'node:stream'
import {
  type AbortOptions,
  type Clock,
  type Logger,
  logger,
  systemClock,
  TaskScope,
  TypedEmitter,
} from '../../common/index.js'
import { ipToBytes } from '../../net/index.js'
import { allowedFastSet } from './allowed-fast.js'
import {
  decodeExtendedHandshake,
  decodeMetadataMessage,
  decodePex,
  encodeExtendedHandshake,
  encodeMetadataMessage,
  encodePex,
  LOCAL_EXTENSION_IDS,
  METADATA_PIECE_BYTES,
  type MetadataMessage,
} from './extensions.js'
import { Framer } from './framer.js'
import { decodeHandshake, encodeHandshake } from './handshake.js'
import {
  AllowedFast,
  Bitfield,
  Cancel,
  Choke,
  Extended,
  HANDSHAKE_BYTES,
  Have,
  HaveAll,
  HaveNone,
  Interested,
  KEEPALIVE,
  MESSAGE_BY_ID,
  NotInterested,
  Piece,
  Port,
  PROTOCOL,
  Reject,
  Request,
  Suggest,
  Unchoke,
} from './messages.js'
import { DEFAULT_MAX_METADATA_BYTES, MetadataAssembler } from './metadata.js'
import { RateMeter } from './stats.js'
import {
  type BlockRequest,
  type ExtendedHandshake,
  type Handshake,
  type HandshakeExtensions,
  type Id20,
  type PeerAddress,
  PeerWireError,
  type PeerWireStats,
  type PexMessage,
} from './types.js'

/** Block size every client uses (BEP 3 recommends 2^14; larger requests are commonly refused). */
export const BLOCK_BYTES = 16_384
/** Largest request we serve; above it we reject. */
export const DEFAULT_MAX_REQUEST_BYTES = 128 * 1024
/** Largest message accepted: enough for the bitfield of 8M pieces and any block we would request. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024 + 13
/** Requests from the peer we queue (our `reqq`), and our own outstanding requests at most. */
export const DEFAULT_REQQ = 500
export const DEFAULT_MAX_OUTSTANDING_REQUESTS = 500
/** libtorrent's default when a peer announces no `reqq`. */
const DEFAULT_PEER_REQQ = 250
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 60_000
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 20_000
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000
const TICK_MS = 1000

/** Options of a {@link PeerWire}. */
export interface PeerWireOptions {
  /** Our 20-byte peer id. */
  peerId: Id20
  /**
   * The torrent, when we dial: our handshake is sent at once and the peer must answer with the same info hash.
   * Leave it out when accepting: call {@link PeerWire.handshake} from the `handshake` listener.
   */
  infoHash?: Id20
  /** Extensions to announce (default: extension protocol and fast extension on, DHT off). */
  extensions?: Partial<HandshakeExtensions>
  /** `v` of the extended handshake. */
  clientName?: string
  /** `p` of the extended handshake: our listen port. */
  listenPort?: number
  /** The peer's address: sent as `yourip`, and the input of the allowed-fast set. */
  remoteAddress?: PeerAddress
  /** The info dictionary, to serve ut_metadata and announce `metadata_size`. */
  metadata?: Buffer
  /** Number of pieces, to validate bitfields and indices (set later with {@link PeerWire.setNumPieces}). */
  numPieces?: number
  /** Requests from the peer we keep queued (announced as `reqq`). Default 500. */
  reqq?: number
  /** Our outstanding requests at most (also capped by the peer's `reqq`). Default 500. */
  maxOutstandingRequests?: number
  maxMessageBytes?: number
  maxRequestBytes?: number
  maxMetadataBytes?: number
  keepaliveIntervalMs?: number
  idleTimeoutMs?: number
  handshakeTimeoutMs?: number
  requestTimeoutMs?: number
  clock?: Clock
  logger?: Logger
}

/** A received block. `block` is a view of the receive buffer: copy it if it must outlive the listener. */
export interface BlockMessage {
  index: number
  begin: number
  block: Buffer
}

/** Events of a {@link PeerWire}. Listeners run synchronously while the message is parsed. */
export interface PeerWireEvents {
  /** The peer's handshake. When accepting, answer with {@link PeerWire.handshake} here. */
  handshake: Handshake
  extendedHandshake: ExtendedHandshake
  choke: undefined
  unchoke: undefined
  interested: undefined
  notInterested: undefined
  have: number
  /** The raw bitfield (high bit first), a copy. */
  bitfield: Uint8Array
  haveAll: undefined
  haveNone: undefined
  /** A request we accepted into the peer's queue: answer with {@link PeerWire.piece} or {@link PeerWire.reject}. */
  request: BlockRequest
  /** The peer withdrew a queued request. */
  cancel: BlockRequest
  /**
   * A block we requested arrived (after its `request()` promise resolved). `block` is valid only while the
   * listeners run (its memory then takes later socket reads): copy what you keep.
   */
  piece: BlockMessage
  /** The peer rejected one of our requests (BEP 6). */
  reject: BlockRequest
  /**
   * A request sent with {@link PeerWire.requestBlock} will not be answered: rejected, dropped by a choke, timed out,
   * cancelled or the connection closed.
   */
  requestFailed: BlockRequest & { error: PeerWireError }
  suggest: number
  /** The peer lets us request this piece while choked. */
  allowedFast: number
  /** The peer's DHT port (BEP 5). */
  port: number
  pex: PexMessage
  /** The send buffer drained after {@link PeerWire.writable} was false. */
  drain: undefined
  /** A protocol violation or transport error; `close` follows. */
  error: PeerWireError
  /** The connection closed; the error when it closed because of one. */
  close: PeerWireError | undefined
}

interface PendingRequest extends BlockRequest {
  resolve: (block: Buffer) => void
  reject: (err: PeerWireError) => void
  sentAt: number
}

interface MetadataFetch {
  assembler: MetadataAssembler
  resolve: (info: Buffer) => void
  reject: (err: PeerWireError) => void
}

/**
 * The map key of a block: a small integer for a block on a 16 KiB boundary of one of the first 2^17 pieces (every
 * block we ask for in such torrents, and nearly every one asked of us), built and hashed without a string per
 * message; a string otherwise. The two kinds never collide.
 */
const blockKey = (index: number, begin: number): BlockKey => {
  const block = begin >>> 14
  return index >>> 0 === index && index < 0x20000 && block << 14 === begin && block < 0x2000
    ? index * 0x2000 + block
    : `${index}:${begin}`
}
type BlockKey = number | string

/**
 * The BitTorrent peer wire protocol (BEP 3) over any Duplex: a TCP socket, a uTP stream or an in-process pair.
 * Speaks the fast extension (BEP 6), the extension protocol (BEP 10) with ut_metadata (BEP 9) and ut_pex (BEP 11),
 * and the DHT port message (BEP 5). Tracks choke and interest both ways, pipelines requests up to the peer's
 * `reqq`, queues the peer's requests up to ours, sends keep-alives and drops idle or misbehaving peers with a
 * coded {@link PeerWireError}. Never throws out of a socket callback.
 *
 * @example
 * ```ts
 * const socket = net.connect(port, host)
 * const wire = new PeerWire(socket, { peerId, infoHash })
 * wire.on('handshake', () => wire.interested())
 * wire.on('unchoke', async () => {
 *   const block = await wire.request(0, 0, 16384)
 * })
 * ```
 */
export class PeerWire extends TypedEmitter<PeerWireEvents> {
  /** The peer's handshake, once received. */
  remoteHandshake: Handshake | undefined
  /** The peer's extended handshake, once received. */
  remoteExtended: ExtendedHandshake | undefined
  /** We refuse the peer's requests. */
  amChoking = true
  amInterested = false
  /** The peer refuses our requests. */
  peerChoking = true
  peerInterested = false
  /** Pieces the peer allowed us to request while choked (BEP 6). */
  readonly allowedFastFromPeer = new Set<number>()
  /** Pieces we allowed the peer to request while choked. */
  readonly allowedFastToPeer = new Set<number>()
  /** Pieces the peer suggested. */
  readonly suggestedByPeer = new Set<number>()

  readonly #stream: Duplex
  readonly #opts: PeerWireOptions
  readonly #extensions: HandshakeExtensions
  readonly #clock: Clock
  readonly #log: Logger
  readonly #stopped = new AbortController()
  readonly #tasks: TaskScope
  readonly #framer = new Framer()
  #infoHash: Buffer | undefined
  #handshakeSent = false
  #extendedSent = false
  #numPieces: number | undefined
  #metadata: Buffer | undefined
  /** Peer pieces, high bit first, grown as needed until the piece count is known. */
  #peerBits: Uint8Array = new Uint8Array(0)
  #peerHaveAll = false
  #peerHaveCount = 0
  #rawBitfield: Uint8Array | undefined
  readonly #outgoing = new Map<BlockKey, PendingRequest>()
  readonly #incoming = new Map<BlockKey, BlockRequest>()
  #metadataFetch: MetadataFetch | undefined
  #extendedWaiters: Array<() => void> = []
  #writable = true
  /** Whether the stream is corked until the end of this tick (see {@link #write}). */
  #corked = false
  /** Small messages of this tick, written as one buffer (see {@link #write}). */
  #small: Uint8Array[] = []
  #smallBytes = 0
  #parsing = false
  #closed = false
  #closeError: PeerWireError | undefined
  readonly #closedPromise: Promise<PeerWireError | undefined>
  #resolveClosed!: (err: PeerWireError | undefined) => void
  readonly #startedAt: number
  #lastReceivedAt: number
  #lastSentAt: number
  readonly #payloadDown: RateMeter
  readonly #payloadUp: RateMeter
  #protocolDown = 0
  #protocolUp = 0
  #messagesDown = 0
  #messagesUp = 0
  #unexpectedPieces = 0

  constructor(stream: Duplex, options: PeerWireOptions) {
    super()
    this.#stream = stream
    this.#opts = options
    this.#extensions = { extended: true, fast: true, dht: false, ...options.extensions }
    this.#clock = options.clock ?? systemClock
    this.#log = options.logger ?? logger('bittorrent:peer-wire')
    this.#tasks = new TaskScope(this.#stopped.signal, this.#clock)
    this.#numPieces = options.numPieces
    this.#metadata = options.metadata
    this.#payloadDown = new RateMeter(this.#clock)
    this.#payloadUp = new RateMeter(this.#clock)
    this.#startedAt = this.#clock.monotonic()
    this.#lastReceivedAt = this.#startedAt
    this.#lastSentAt = this.#startedAt
    this.#closedPromise = new Promise((resolve) => {
      this.#resolveClosed = resolve
    })

    stream.on('data', (chunk: Buffer) => this.#onData(chunk))
    stream.on('drain', () => {
      this.#writable = true
      this.emit('drain', undefined)
    })
    stream.on('error', (err: Error) => this.#close(new PeerWireError('CLOSED', { cause: err })))
    stream.on('end', () => this.#close(undefined))
    stream.on('close', () => this.#close(undefined))
    this.#tasks.every('tick', TICK_MS, () => this.#tick())
    if (options.infoHash !== undefined) this.handshake(options.infoHash)
  }

  /** Resolves when the connection closed, with the error that closed it if any. Never rejects. */
  get closed(): Promise<PeerWireError | undefined> {
    return this.#closedPromise
  }

  get isClosed(): boolean {
    return this.#closed
  }

  /** The info hash of this connection, once known. */
  get infoHash(): Buffer | undefined {
    return this.#infoHash
  }

  /** Whether both sides announced the fast extension. */
  get fastExtension(): boolean {
    return this.#extensions.fast && this.remoteHandshake?.extensions.fast === true
  }

  /** Whether both sides announced the extension protocol. */
  get extensionProtocol(): boolean {
    return this.#extensions.extended && this.remoteHandshake?.extensions.extended === true
  }

  /** False while the transport's send buffer is full: wait for `drain` before sending more blocks. */
  get writable(): boolean {
    return this.#writable
  }

  /** How many more requests we may send now (our limit and the peer's `reqq`). */
  get requestSlots(): number {
    const peerLimit = this.remoteExtended?.reqq ?? DEFAULT_PEER_REQQ
    const limit = Math.min(this.#opts.maxOutstandingRequests ?? DEFAULT_MAX_OUTSTANDING_REQUESTS, peerLimit)
    return Math.max(0, limit - this.#outgoing.size)
  }

  /** Our requests waiting for a block, oldest first. */
  get outstandingRequests(): BlockRequest[] {
    return [...this.#outgoing.values()].map(({ index, begin, length }) => ({ index, begin, length }))
  }

  /** The peer's requests we have not answered, oldest first. */
  get peerRequests(): BlockRequest[] {
    return [...this.#incoming.values()]
  }

  /** Whether the peer has piece `index` (from its bitfield, have-all and have messages). */
  peerHas(index: number): boolean {
    if (this.#peerHaveAll) return true
    const byte = this.#peerBits[index >> 3]
    return byte !== undefined && (byte & (0x80 >> (index & 7))) !== 0
  }

  /** Whether the peer has every piece (needs the piece count, or a have-all). */
  get peerIsSeed(): boolean {
    return this.#peerHaveAll || (this.#numPieces !== undefined && this.#peerHaveCount === this.#numPieces)
  }

  /** Pieces the peer has, as far as known. */
  get peerPieceCount(): number {
    return this.#peerHaveAll ? (this.#numPieces ?? 0) : this.#peerHaveCount
  }

  /** Byte counts and rates of this connection. */
  get stats(): PeerWireStats {
    return {
      payloadBytesDown: this.#payloadDown.total,
      payloadBytesUp: this.#payloadUp.total,
      protocolBytesDown: this.#protocolDown,
      protocolBytesUp: this.#protocolUp,
      payloadRateDown: this.#payloadDown.ratePerSec,
      payloadRateUp: this.#payloadUp.ratePerSec,
      messagesDown: this.#messagesDown,
      messagesUp: this.#messagesUp,
      requestsOut: this.#outgoing.size,
      requestsIn: this.#incoming.size,
      unexpectedBlocks: this.#unexpectedPieces,
    }
  }

  /**
   * Sets the piece count once known (after ut_metadata): validates a bitfield received before, and indices from now.
   */
  setNumPieces(numPieces: number): void {
    this.#numPieces = numPieces
    const raw = this.#rawBitfield
    if (raw !== undefined) {
      this.#rawBitfield = undefined
      this.#guard(() => this.#applyBitfield(raw))
    } else if (this.#peerBits.length * 8 > numPieces) {
      // haves received before the count: any bit past the end is a violation
      for (let i = numPieces; i < this.#peerBits.length * 8; i++) {
        if (this.peerHas(i)) {
          this.#fail(new PeerWireError('INVALID_MESSAGE', { message: 'have', index: i, numPieces }))
          return
        }
      }
    }
  }

  /** Sets the info dictionary to serve over ut_metadata. */
  setMetadata(info: Buffer): void {
    this.#metadata = info
  }

  /** Sends our handshake for `infoHash` (when accepting, from the `handshake` listener). Sent once. */
  handshake(infoHash: Id20): void {
    if (this.#handshakeSent || this.#closed) return
    if (this.remoteHandshake !== undefined && !this.remoteHandshake.infoHash.equals(infoHash)) {
      this.#fail(new PeerWireError('INFO_HASH_MISMATCH'))
      return
    }
    this.#infoHash = Buffer.from(infoHash)
    this.#handshakeSent = true
    this.#send(encodeHandshake(infoHash, this.#opts.peerId, this.#extensions))
  }

  choke(): void {
    if (this.amChoking) return
    this.amChoking = true
    // BEP 6: with the fast extension a choke rejects nothing implicitly; reject what we will not serve.
    for (const [key, req] of this.#incoming) {
      if (this.allowedFastToPeer.has(req.index)) continue
      this.#incoming.delete(key)
      if (this.fastExtension) this.#sendMessage(Reject.encode(req))
    }
    this.#sendMessage(Choke.encode({}))
  }

  unchoke(): void {
    if (!this.amChoking) return
    this.amChoking = false
    this.#sendMessage(Unchoke.encode({}))
  }

  interested(): void {
    if (this.amInterested) return
    this.amInterested = true
    this.#sendMessage(Interested.encode({}))
  }

  notInterested(): void {
    if (!this.amInterested) return
    this.amInterested = false
    this.#sendMessage(NotInterested.encode({}))
  }

  have(index: number): void {
    this.#sendMessage(Have.encode({ index }))
  }

  /** Sends our bitfield (high bit first). Send it first, from the `handshake` listener. */
  bitfield(bits: Uint8Array): void {
    this.#sendMessage(
      Bitfield.encode({ bitfield: Buffer.from(bits.buffer, bits.byteOffset, bits.byteLength) }),
    )
  }

  /** BEP 6 have-all (falls back to a full bitfield without the fast extension, which needs the piece count). */
  haveAll(): void {
    if (this.fastExtension) this.#sendMessage(HaveAll.encode({}))
    else this.bitfield(fullBitfield(this.#requireNumPieces()))
  }

  /** BEP 6 have-none (sends nothing without the fast extension: an empty bitfield may be omitted). */
  haveNone(): void {
    if (this.fastExtension) this.#sendMessage(HaveNone.encode({}))
  }

  suggest(index: number): void {
    if (this.fastExtension) this.#sendMessage(Suggest.encode({ index }))
  }

  /** Lets the peer request `index` while we choke it (BEP 6). */
  allowedFast(index: number): void {
    if (!this.fastExtension || this.allowedFastToPeer.has(index)) return
    this.allowedFastToPeer.add(index)
    this.#sendMessage(AllowedFast.encode({ index }))
  }

  /** Sends the BEP 6 allowed-fast set of size `k` for the peer's address; returns it. */
  sendAllowedFastSet(k: number): number[] {
    const host = this.#opts.remoteAddress?.host
    if (host === undefined || this.#infoHash === undefined || !this.fastExtension) return []
    const set = allowedFastSet(host, this.#infoHash, this.#requireNumPieces(), k)
    for (const index of set) this.allowedFast(index)
    return set
  }

  /** Sends our DHT port (BEP 5). */
  port(port: number): void {
    this.#sendMessage(Port.encode({ port }))
  }

  keepAlive(): void {
    this.#sendMessage(KEEPALIVE)
  }

  /**
   * Requests a block; resolves with it. Rejects with `REQUEST_REJECTED`, `CHOKED` (choked without the fast
   * extension), `REQUEST_TIMEOUT`, `REQUEST_CANCELLED`, `CLOSED`, or at once with `REQUEST_QUEUE_FULL` when
   * {@link requestSlots} is 0 or `INVALID_STATE` when choked and the piece is not allowed fast.
   */
  request(index: number, begin: number, length: number): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new PeerWireError('CLOSED'))
    if (this.peerChoking && !this.allowedFastFromPeer.has(index)) {
      return Promise.reject(new PeerWireError('INVALID_STATE', { reason: 'choked', index }))
    }
    if (this.requestSlots === 0) return Promise.reject(new PeerWireError('REQUEST_QUEUE_FULL'))
    const key = blockKey(index, begin)
    if (this.#outgoing.has(key)) {
      return Promise.reject(new PeerWireError('INVALID_STATE', { reason: 'already requested', index, begin }))
    }
    return new Promise((resolve, reject) => {
      this.#outgoing.set(key, { index, begin, length, resolve, reject, sentAt: this.#clock.monotonic() })
      this.#sendMessage(Request.encode({ index, begin, length }))
    })
  }

  /**
   * Sends a request without a promise, for pipelines of hundreds of blocks: the block arrives as a `piece` event,
   * a failure as a `requestFailed` event. Returns false (and sends nothing) when it cannot be sent now: closed,
   * choked and not allowed fast, no {@link requestSlots} left, or already requested.
   */
  requestBlock(index: number, begin: number, length: number): boolean {
    if (this.#closed || this.requestSlots === 0) return false
    if (this.peerChoking && !this.allowedFastFromPeer.has(index)) return false
    const key = blockKey(index, begin)
    if (this.#outgoing.has(key)) return false
    this.#outgoing.set(key, new EventRequest(this, index, begin, length, this.#clock.monotonic()))
    this.#sendMessage(Request.encode({ index, begin, length }))
    return true
  }

  /** Withdraws a request of ours; its promise rejects with `REQUEST_CANCELLED`. */
  cancel(index: number, begin: number, length: number): void {
    const key = blockKey(index, begin)
    const pending = this.#outgoing.get(key)
    if (pending === undefined) return
    this.#outgoing.delete(key)
    this.#sendMessage(Cancel.encode({ index, begin, length }))
    pending.reject(new PeerWireError('REQUEST_CANCELLED', { index, begin }))
  }

  /**
   * Answers a queued request of the peer with its block. Returns false (and sends nothing) when the request is no
   * longer queued (cancelled, or dropped by a choke). The block is written without a copy.
   */
  piece(index: number, begin: number, block: Uint8Array): boolean {
    const key = blockKey(index, begin)
    const req = this.#incoming.get(key)
    if (req === undefined || req.length !== block.length || this.#closed) return false
    this.#incoming.delete(key)
    const header = Piece.encodeHeader({ index, begin, block: EMPTY }, block.length)
    this.#write(header)
    this.#write(block)
    this.#protocolUp += header.length
    this.#payloadUp.add(block.length)
    this.#messagesUp++
    return true
  }

  /** Refuses a queued request of the peer (a BEP 6 reject; without the fast extension it is just dropped). */
  reject(index: number, begin: number, length: number): void {
    this.#incoming.delete(blockKey(index, begin))
    if (this.fastExtension) this.#sendMessage(Reject.encode({ index, begin, length }))
  }

  /** Resolves once the peer's extended handshake arrived (rejects if the connection closes first). */
  async waitForExtendedHandshake(opts: AbortOptions = {}): Promise<ExtendedHandshake> {
    if (this.remoteExtended !== undefined) return this.remoteExtended
    if (this.#closed) throw new PeerWireError('CLOSED')
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(opts.signal?.reason)
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      this.#extendedWaiters.push(() => {
        opts.signal?.removeEventListener('abort', onAbort)
        if (this.remoteExtended === undefined) reject(new PeerWireError('CLOSED'))
        else resolve()
      })
    })
    return this.remoteExtended!
  }

  /**
   * Downloads the info dictionary from this peer with ut_metadata (BEP 9) and checks it against the info hash.
   * Rejects with `UNSUPPORTED_BY_PEER`, `METADATA_REJECTED`, `METADATA_HASH_MISMATCH`, `METADATA_TOO_LARGE` or
   * `CLOSED`; the connection stays open so the caller decides.
   */
  async fetchMetadata(opts: AbortOptions = {}): Promise<Buffer> {
    const ext = await this.waitForExtendedHandshake(opts)
    const remoteId = ext.m.ut_metadata
    if (remoteId === undefined || remoteId === 0 || ext.metadataSize === undefined) {
      throw new PeerWireError('UNSUPPORTED_BY_PEER', { extension: 'ut_metadata' })
    }
    if (this.#metadataFetch !== undefined)
      throw new PeerWireError('INVALID_STATE', { reason: 'already fetching' })
    const assembler = new MetadataAssembler(
      this.#infoHash ?? Buffer.alloc(20),
      ext.metadataSize,
      this.#opts.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES,
    )
    const result = new Promise<Buffer>((resolve, reject) => {
      this.#metadataFetch = { assembler, resolve, reject }
    })
    const onAbort = (): void => this.#finishMetadata(opts.signal?.reason)
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      for (const piece of assembler.missing()) this.#sendMetadataMessage({ type: 'request', piece })
      return await result
    } finally {
      opts.signal?.removeEventListener('abort', onAbort)
    }
  }

  /** Sends a ut_pex message, if the peer speaks ut_pex. Returns whether it was sent. */
  sendPex(msg: PexMessage): boolean {
    const id = this.remoteExtended?.m.ut_pex
    if (id === undefined || id === 0) return false
    this.#sendMessage(Extended.encode({ extId: id, payload: encodePex(msg) }))
    return true
  }

  /** Pauses reading from the transport (inbound backpressure); the peer's sends queue up in its buffers. */
  pause(): void {
    this.#stream.pause()
  }

  resume(): void {
    this.#stream.resume()
  }

  /** Closes the connection; with an error, `error` is emitted first. */
  destroy(err?: PeerWireError): void {
    this.#close(err)
  }

  // ---- receiving

  #onData(chunk: Buffer): void {
    if (this.#closed) return
    this.#lastReceivedAt = this.#clock.monotonic()
    this.#framer.push(chunk)
    // A listener may cause more data to arrive synchronously; the running parse loop picks it up in order.
    if (this.#parsing) return
    this.#parsing = true
    try {
      this.#guard(() => this.#parse())
    } finally {
      this.#parsing = false
      this.#framer.recycle()
    }
  }

  #guard(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      if (err instanceof PeerWireError) this.#fail(err)
      else {
        this.#log.warn('peer wire failed', { err })
        this.#fail(new PeerWireError('INVALID_MESSAGE', { cause: err }))
      }
    }
  }

  #parse(): void {
    const framer = this.#framer
    if (this.remoteHandshake === undefined) {
      if (!this.#parseHandshake()) return
    }
    const maxBytes = this.#opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    while (!this.#closed) {
      const length = framer.peekUInt32()
      if (length < 0) return
      if (length > maxBytes) throw new PeerWireError('MESSAGE_TOO_LONG', { length, maxBytes })
      if (framer.buffered < 4 + length) return
      framer.skip(4)
      if (length === 0) {
        this.#messagesDown++
        this.#protocolDown += 4
        continue
      }
      if (length > 9 && framer.peekUInt8() === Piece.id) {
        // Hot path: header and block taken apart without copies where they lie in one chunk; the block is a
        // transient view, used by the listeners at once, so the chunk's buffer can serve the next socket read.
        const header = framer.takeTransient(9)!
        const index = header.readUInt32BE(1)
        const begin = header.readUInt32BE(5)
        this.#messagesDown++
        this.#onPiece(index, begin, framer.takeTransient(length - 9)!)
        continue
      }
      const frame = framer.take(length)!
      this.#onMessage(frame)
    }
  }

  #parseHandshake(): boolean {
    const framer = this.#framer
    const first = framer.peekUInt8()
    if (first !== -1 && first !== PROTOCOL[0])
      throw new PeerWireError('INVALID_HANDSHAKE', { pstrlen: first })
    if (framer.buffered < HANDSHAKE_BYTES) return false
    const handshake = decodeHandshake(framer.take(HANDSHAKE_BYTES)!)
    this.#protocolDown += HANDSHAKE_BYTES
    if (this.#infoHash !== undefined && !handshake.infoHash.equals(this.#infoHash)) {
      throw new PeerWireError('INFO_HASH_MISMATCH')
    }
    this.remoteHandshake = handshake
    this.emit('handshake', handshake)
    if (this.#closed) return false
    if (!this.#handshakeSent) {
      // Accepting side that did not answer from the listener: nothing else can be parsed meaningfully.
      throw new PeerWireError('INFO_HASH_MISMATCH', { reason: 'no torrent for this info hash' })
    }
    if (this.extensionProtocol) this.#sendExtendedHandshake()
    return true
  }

  #onMessage(frame: Buffer): void {
    const id = frame[0]!
    const spec = MESSAGE_BY_ID[id]
    if (spec === undefined) {
      // Unknown ids are ignored, as libtorrent does: clients add messages (e.g. BEP 52 hash messages).
      this.#protocolDown += 4 + frame.length
      this.#log.debug('unknown message', { id, length: frame.length })
      return
    }
    const payload = frame.subarray(1)
    this.#messagesDown++
    switch (id) {
      case Piece.id: {
        const { index, begin, block } = Piece.decode(payload)
        this.#onPiece(index, begin, block)
        return
      }
      case Request.id:
        this.#protocolDown += 4 + frame.length
        this.#onRequest(Request.decode(payload))
        return
      case Have.id: {
        this.#protocolDown += 4 + frame.length
        this.#onHave(Have.decode(payload).index)
        return
      }
      default:
        this.#protocolDown += 4 + frame.length
    }
    switch (id) {
      case Choke.id:
        Choke.decode(payload)
        this.#onChoke()
        return
      case Unchoke.id:
        Unchoke.decode(payload)
        this.peerChoking = false
        this.emit('unchoke', undefined)
        return
      case Interested.id:
        Interested.decode(payload)
        this.peerInterested = true
        this.emit('interested', undefined)
        return
      case NotInterested.id:
        NotInterested.decode(payload)
        this.peerInterested = false
        this.emit('notInterested', undefined)
        return
      case Bitfield.id:
        this.#onBitfield(Bitfield.decode(payload).bitfield)
        return
      case Cancel.id:
        this.#onCancel(Cancel.decode(payload))
        return
      case Port.id:
        this.emit('port', Port.decode(payload).port)
        return
      case Extended.id:
        this.#requireNegotiated('extended')
        this.#onExtended(Extended.decode(payload))
        return
    }
    this.#requireNegotiated('fast')
    switch (id) {
      case Suggest.id: {
        const { index } = Suggest.decode(payload)
        this.#checkIndex(index, 'suggest')
        this.suggestedByPeer.add(index)
        this.emit('suggest', index)
        return
      }
      case HaveAll.id:
        HaveAll.decode(payload)
        this.#markBitfieldReceived()
        this.#peerHaveAll = true
        this.emit('haveAll', undefined)
        return
      case HaveNone.id:
        HaveNone.decode(payload)
        this.#markBitfieldReceived()
        this.emit('haveNone', undefined)
        return
      case Reject.id:
        this.#onReject(Reject.decode(payload))
        return
      case AllowedFast.id: {
        const { index } = AllowedFast.decode(payload)
        this.#checkIndex(index, 'allowedFast')
        this.allowedFastFromPeer.add(index)
        this.emit('allowedFast', index)
        return
      }
    }
  }

  #requireNegotiated(extension: 'fast' | 'extended'): void {
    const ok = extension === 'fast' ? this.fastExtension : this.extensionProtocol
    if (!ok) throw new PeerWireError('NOT_NEGOTIATED', { extension })
  }

  #checkIndex(index: number, message: string): void {
    if (this.#numPieces !== undefined && index >= this.#numPieces) {
      throw new PeerWireError('INVALID_MESSAGE', { message, index, numPieces: this.#numPieces })
    }
  }

  #onChoke(): void {
    this.peerChoking = true
    // Without the fast extension a choke discards every request we sent (libtorrent's on_choke); with it, the peer
    // rejects each one explicitly and may still serve allowed-fast pieces.
    if (!this.fastExtension) {
      const pending = [...this.#outgoing.values()]
      this.#outgoing.clear()
      for (const req of pending)
        req.reject(new PeerWireError('CHOKED', { index: req.index, begin: req.begin }))
    }
    this.emit('choke', undefined)
  }

  #onPiece(index: number, begin: number, block: Buffer): void {
    const key = blockKey(index, begin)
    const pending = this.#outgoing.get(key)
    if (pending === undefined || pending.length !== block.length) {
      // Usually a block that crossed our cancel; counted, not fatal.
      this.#unexpectedPieces++
      this.#protocolDown += 13 + block.length
      return
    }
    this.#outgoing.delete(key)
    this.#protocolDown += 13
    this.#payloadDown.add(block.length)
    // The block is a transient view: a promise keeps its own copy, `piece` listeners use it at once.
    if (!(pending instanceof EventRequest)) pending.resolve(Buffer.from(block))
    if (this.listenerCount('piece') > 0) this.emit('piece', { index, begin, block })
  }

  #onRequest(req: BlockRequest): void {
    this.#checkIndex(req.index, 'request')
    const maxBytes = this.#opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES
    const key = blockKey(req.index, req.begin)
    if (this.#incoming.has(key)) return
    const refused =
      req.length === 0 ||
      req.length > maxBytes ||
      (this.amChoking && !this.allowedFastToPeer.has(req.index)) ||
      this.#incoming.size >= (this.#opts.reqq ?? DEFAULT_REQQ)
    if (refused) {
      if (this.fastExtension) this.#sendMessage(Reject.encode(req))
      return
    }
    this.#incoming.set(key, req)
    this.emit('request', req)
  }

  #onCancel(req: BlockRequest): void {
    const key = blockKey(req.index, req.begin)
    if (!this.#incoming.delete(key)) return
    this.emit('cancel', req)
  }

  #onReject(req: BlockRequest): void {
    const key = blockKey(req.index, req.begin)
    const pending = this.#outgoing.get(key)
    if (pending === undefined) return
    this.#outgoing.delete(key)
    pending.reject(new PeerWireError('REQUEST_REJECTED', { index: req.index, begin: req.begin }))
    this.emit('reject', req)
  }

  #onHave(index: number): void {
    this.#checkIndex(index, 'have')
    if (this.peerHas(index)) return
    const byte = index >> 3
    if (byte >= this.#peerBits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.#peerBits.length * 2))
      grown.set(this.#peerBits)
      this.#peerBits = grown
    }
    this.#peerBits[byte]! |= 0x80 >> (index & 7)
    this.#peerHaveCount++
    this.emit('have', index)
  }

  /**
   * A bitfield, have-all or have-none replaces what we knew of the peer's pieces. BEP 3 wants it first, but aria2
   * sends a have-none and then a bitfield; libtorrent accepts that, and so do we.
   */
  #markBitfieldReceived(): void {
    this.#peerHaveAll = false
    this.#rawBitfield = undefined
    this.#peerBits = new Uint8Array(0)
    this.#peerHaveCount = 0
  }

  #onBitfield(bits: Buffer): void {
    this.#markBitfieldReceived()
    const copy = new Uint8Array(bits)
    if (this.#numPieces === undefined) this.#rawBitfield = copy
    else this.#applyBitfield(copy)
    this.emit('bitfield', copy)
  }

  #applyBitfield(bits: Uint8Array): void {
    const numPieces = this.#numPieces!
    if (bits.length !== Math.ceil(numPieces / 8)) {
      throw new PeerWireError('INVALID_BITFIELD', { length: bits.length, numPieces })
    }
    const spare = numPieces & 7
    if (spare !== 0 && (bits[bits.length - 1]! & (0xff >> spare)) !== 0) {
      throw new PeerWireError('INVALID_BITFIELD', { reason: 'spare bits set' })
    }
    // A have received before the bitfield could only come before a bitfield we then refused, so this replaces all.
    this.#peerBits = bits
    let count = 0
    for (const byte of bits) count += popcount(byte)
    this.#peerHaveCount = count
  }

  #onExtended(msg: { extId: number; payload: Buffer }): void {
    if (msg.extId === 0) {
      const handshake = decodeExtendedHandshake(msg.payload)
      this.remoteExtended = handshake
      this.emit('extendedHandshake', handshake)
      const waiters = this.#extendedWaiters
      this.#extendedWaiters = []
      for (const waiter of waiters) waiter()
      return
    }
    if (msg.extId === LOCAL_EXTENSION_IDS.ut_metadata) {
      this.#onMetadataMessage(msg.payload)
      return
    }
    if (msg.extId === LOCAL_EXTENSION_IDS.ut_pex) {
      this.emit('pex', decodePex(msg.payload))
      return
    }
    this.#log.debug('extended message with an id we did not announce', { extId: msg.extId })
  }

  #onMetadataMessage(payload: Buffer): void {
    const msg = decodeMetadataMessage(payload)
    if (msg.type === 'request') {
      const info = this.#metadata
      const start = msg.piece * METADATA_PIECE_BYTES
      if (info === undefined || start >= info.length) {
        this.#sendMetadataMessage({ type: 'reject', piece: msg.piece })
        return
      }
      const data = info.subarray(start, Math.min(start + METADATA_PIECE_BYTES, info.length))
      this.#sendMetadataMessage({ type: 'data', piece: msg.piece, totalSize: info.length, data })
      return
    }
    const fetch = this.#metadataFetch
    if (fetch === undefined) return
    if (msg.type === 'reject') {
      this.#finishMetadata(new PeerWireError('METADATA_REJECTED', { piece: msg.piece }))
      return
    }
    if (msg.totalSize !== fetch.assembler.size) {
      this.#finishMetadata(new PeerWireError('INVALID_EXTENSION_MESSAGE', { reason: 'total_size changed' }))
      return
    }
    try {
      const info = fetch.assembler.add(msg.piece, msg.data)
      if (info !== undefined) {
        this.#metadataFetch = undefined
        fetch.resolve(info)
      }
    } catch (err) {
      this.#finishMetadata(err)
    }
  }

  #finishMetadata(err: unknown): void {
    const fetch = this.#metadataFetch
    if (fetch === undefined) return
    this.#metadataFetch = undefined
    fetch.reject(err as PeerWireError)
  }

  // ---- sending

  #sendExtendedHandshake(): void {
    if (this.#extendedSent) return
    this.#extendedSent = true
    const remote = this.#opts.remoteAddress
    const yourip = remote === undefined ? undefined : ipToBytes(remote.host)
    const handshake: ExtendedHandshake = {
      m: { ...LOCAL_EXTENSION_IDS },
      v: this.#opts.clientName ?? 'Tribler.ts',
      reqq: this.#opts.reqq ?? DEFAULT_REQQ,
    }
    if (this.#opts.listenPort !== undefined) handshake.p = this.#opts.listenPort
    if (yourip !== undefined) handshake.yourip = yourip
    if (this.#metadata !== undefined) handshake.metadataSize = this.#metadata.length
    this.#sendMessage(Extended.encode({ extId: 0, payload: encodeExtendedHandshake(handshake) }))
  }

  #sendMetadataMessage(msg: MetadataMessage): void {
    const id = this.remoteExtended?.m.ut_metadata
    if (id === undefined || id === 0) return
    this.#sendMessage(Extended.encode({ extId: id, payload: encodeMetadataMessage(msg) }))
  }

  #sendMessage(buf: Buffer): void {
    if (this.#closed) return
    if (!this.#handshakeSent) throw new PeerWireError('INVALID_STATE', { reason: 'handshake not sent' })
    this.#messagesUp++
    this.#protocolUp += buf.length
    this.#write(buf)
  }

  #send(buf: Buffer): void {
    this.#protocolUp += buf.length
    this.#write(buf)
  }

  /**
   * Messages written in one tick leave together: the stream stays corked until the tick ends, so a pipeline refill
   * of hundreds of requests costs one socket write rather than one per message. Small messages are also joined
   * into one buffer before they reach the stream, so the refill costs one stream write, not one per request.
   */
  #write(buf: Uint8Array): void {
    this.#lastSentAt = this.#clock.monotonic()
    if (!this.#corked) {
      this.#corked = true
      this.#stream.cork()
      process.nextTick(this.#uncork)
    }
    if (buf.length <= SMALL_MESSAGE_BYTES) {
      this.#small.push(buf)
      this.#smallBytes += buf.length
      // A long run of small messages still meets the stream's backpressure.
      if (this.#smallBytes >= SMALL_BATCH_BYTES) this.#flushSmall()
      return
    }
    this.#flushSmall()
    if (!this.#stream.write(buf)) this.#writable = false
  }

  #flushSmall(): void {
    const small = this.#small
    if (small.length === 0) return
    const joined = small.length === 1 ? small[0]! : Buffer.concat(small, this.#smallBytes)
    this.#small = []
    this.#smallBytes = 0
    if (!this.#stream.write(joined)) this.#writable = false
  }

  readonly #uncork = (): void => {
    if (!this.#corked) return
    this.#corked = false
    this.#flushSmall()
    this.#stream.uncork()
  }

  #requireNumPieces(): number {
    if (this.#numPieces === undefined)
      throw new PeerWireError('INVALID_STATE', { reason: 'piece count unknown' })
    return this.#numPieces
  }

  // ---- timers and closing

  #tick(): void {
    const now = this.#clock.monotonic()
    if (this.remoteHandshake === undefined) {
      if (now - this.#startedAt >= (this.#opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS)) {
        this.#fail(new PeerWireError('HANDSHAKE_TIMEOUT'))
      }
      return
    }
    if (now - this.#lastReceivedAt >= (this.#opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS)) {
      this.#fail(new PeerWireError('IDLE_TIMEOUT'))
      return
    }
    if (now - this.#lastSentAt >= (this.#opts.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS)) {
      this.keepAlive()
    }
    const timeoutMs = this.#opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    for (const [key, req] of this.#outgoing) {
      if (now - req.sentAt < timeoutMs) break
      this.#outgoing.delete(key)
      this.#sendMessage(Cancel.encode(req))
      req.reject(new PeerWireError('REQUEST_TIMEOUT', { index: req.index, begin: req.begin }))
    }
  }

  #fail(err: PeerWireError): void {
    if (this.#closed) return
    this.#log.debug('dropping peer', { code: err.code, details: err.details })
    this.#close(err)
  }

  #close(err: PeerWireError | undefined): void {
    if (this.#closed) return
    this.#closed = true
    this.#closeError = err
    this.#stopped.abort()
    this.#framer.clear()
    const closedError = err ?? new PeerWireError('CLOSED')
    const pending = [...this.#outgoing.values()]
    this.#outgoing.clear()
    this.#incoming.clear()
    for (const req of pending) req.reject(closedError)
    this.#finishMetadata(closedError)
    for (const waiter of this.#extendedWaiters.splice(0)) waiter()
    this.#uncork()
    this.#stream.destroy()
    if (err !== undefined) this.emit('error', err)
    this.emit('close', this.#closeError)
    this.#resolveClosed(this.#closeError)
  }
}

const EMPTY = Buffer.alloc(0)
/** Messages up to this size are joined with the others of their tick before they reach the stream. */
const SMALL_MESSAGE_BYTES = 512
/** Joined small messages go to the stream once they reach this size, without waiting for the end of the tick. */
const SMALL_BATCH_BYTES = 16 * 1024
/**
 * A request sent by {@link PeerWire.requestBlock}: its block comes as a `piece` event, its failure as a
 * `requestFailed` event. A class rather than closures, as hundreds are made per second.
 */
class EventRequest implements PendingRequest {
  constructor(
    readonly wire: PeerWire,
    readonly index: number,
    readonly begin: number,
    readonly length: number,
    readonly sentAt: number,
  ) {}

  resolve(): void {}

  reject(error: PeerWireError): void {
    this.wire.emit('requestFailed', { index: this.index, begin: this.begin, length: this.length, error })
  }
}

function popcount(byte: number): number {
  let n = byte - ((byte >> 1) & 0x55)
  n = (n & 0x33) + ((n >> 2) & 0x33)
  return (n + (n >> 4)) & 0x0f
}

/** A bitfield with the first `numPieces` bits set. */
export function fullBitfield(numPieces: number): Uint8Array {
  const bits = new Uint8Array(Math.ceil(numPieces / 8)).fill(0xff)
  const spare = numPieces & 7
  if (spare !== 0) bits[bits.length - 1] = (0xff << (8 - spare)) & 0xff
  return bits
}
