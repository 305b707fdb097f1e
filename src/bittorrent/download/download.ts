import { stat } from 'node:fs/promises'
import {
  type Clock,
  errorMessage,
  type Logger,
  logger,
  systemClock,
  TaskScope,
  TypedEmitter,
  toHex,
} from '../../common/index.js'
import { parseInfoDictionary, type TorrentInfo } from '../../metainfo/index.js'
import { formatAddress, type SocketAddress } from '../../net/index.js'
import type { DownloadState, DownloadStatus, FileStatus, PeerStatus } from '../engine/index.js'
import {
  type BlockRequest,
  PEX_FLAGS,
  PeerWire,
  type PeerWireError,
  type PeerWireOptions,
  RateMeter,
} from '../peer-wire/index.js'
import { Bitfield, PiecePicker, type Priority } from '../piece-picker/index.js'
import {
  allocPiece,
  decodeResumeData,
  type FilePriority,
  Storage,
  StorageError,
  sha1Pool,
} from '../storage/index.js'
import { decideUnchokes } from './choker.js'
import {
  type DownloadDeps,
  DownloadError,
  type DownloadTuning,
  type PeerConnection,
  type PeerEncryption,
  type PeerSource,
} from './types.js'

const BLOCK = 16_384
const TICK_MS = 1000
const DEFAULT_MAX_CONNECTIONS = 50
const DEFAULT_UPLOAD_SLOTS = 4
const MAX_RECONNECT_MS = 10 * 60_000
const MAX_DIAL_FAILURES = 8
/**
 * Peer addresses a download remembers at most (libtorrent's max_peerlist_size): ut_pex, trackers and the DHT
 * are told by others, so without a bound one peer could grow the list, and each tick's walk over it, forever.
 */
export const MAX_PEER_CANDIDATES = 3000
/**
 * Complete pieces being hashed or waiting for the disk before requests pause: bounds memory when the disk (or the
 * hash worker) is slower than the swarm.
 */
const DEFAULT_MAX_PENDING_WRITE_BYTES = 12 * 1024 * 1024
/**
 * Piece buffers kept for reuse once their piece is on disk, so a download does not allocate one per piece, beyond
 * as many as the pending writes may hold: a burst of writes that held more hands them all back, instead of leaving
 * them to the garbage collector, which frees them only at its next full collection.
 */
const SPARE_PIECE_BUFFERS = 8
/** Reads of the peer's requests in flight per peer. */
const MAX_READS_PER_PEER = 8
/** Pieces kept in memory for serving (bytes). */
const READ_CACHE_BYTES = 16 * 1024 * 1024
/** Client name sent in the extended handshake. */
export const CLIENT_NAME = 'Tribler.ts 0.1.0'

/** What a {@link Download} starts from. */
export interface DownloadOptions {
  readonly infoHash: Uint8Array
  /** The parsed torrent; absent for a magnet link until the metadata arrives from peers. */
  readonly torrent?: TorrentInfo
  /** Shown until the metadata is known (a magnet's `dn`). */
  readonly displayName?: string
  readonly downloadDir: string
  /** Torrent file indices to download; empty or absent means all. */
  readonly selectedFiles?: readonly number[]
  /** Resume data saved by an earlier run. */
  readonly resumeData?: Uint8Array
  /** Payload bytes received and sent by earlier runs, counted into the all-time totals and the seeding ratio. */
  readonly previousTotals?: { readonly down: number; readonly up: number }
  /** Fetch the metadata only (no storage, no pieces): `metadata` is emitted and nothing else is done. */
  readonly metadataOnly?: boolean
  readonly tuning?: DownloadTuning
}

/** Events of a {@link Download}. */
export interface DownloadEvents {
  state: DownloadState
  /** The metadata of a magnet arrived (the info dictionary, checked against the info hash). */
  metadata: TorrentInfo
  /** Every selected file is complete. */
  finished: undefined
  /** The download stopped because of a disk (or other) error; the text is in `status().error`. */
  error: string
  /** The seeding policy was met and the download stopped itself. */
  seedingDone: undefined
  /** A peer was banned for sending data that failed the hash check. */
  banned: { host: string }
}

interface Candidate {
  readonly address: SocketAddress
  readonly key: string
  source: PeerSource
  failures: number
  nextAttemptMs: number
  connecting: boolean
  connected: boolean
  /** It had every piece when last connected: a seed has nothing for it, so a complete download does not dial it. */
  seed?: boolean
}

/** How a peer connection came about. */
interface PeerMeta {
  address: SocketAddress
  transport: 'tcp' | 'utp'
  direction: 'L' | 'R'
  candidate?: Candidate
  encryption?: PeerEncryption
}

/** One connected peer. */
class Peer {
  readonly wire: PeerWire
  readonly address: SocketAddress
  readonly transport: 'tcp' | 'utp'
  readonly direction: 'L' | 'R'
  readonly encryption: PeerEncryption
  candidate: Candidate | undefined
  readonly connectedAtMs: number
  /** Requests of ours in flight. */
  inflight = 0
  reads = 0
  readonly uploadQueue: BlockRequest[] = []
  hashFailures = 0
  /** A request of ours timed out and no block has come since (libtorrent's snubbed). */
  snubbed = false
  /** Addresses we told this peer about with ut_pex (BEP 11). */
  readonly pexSent = new Set<string>()
  optimistic = false
  active = false
  readonly down: RateMeter
  readonly up: RateMeter

  constructor(wire: PeerWire, meta: PeerMeta, clock: Clock) {
    this.wire = wire
    this.encryption = meta.encryption ?? 'none'
    this.address = meta.address
    this.transport = meta.transport
    this.direction = meta.direction
    this.candidate = meta.candidate
    this.connectedAtMs = clock.monotonic()
    this.down = new RateMeter(clock)
    this.up = new RateMeter(clock)
  }
}

/**
 * One torrent's swarm and data: dials and accepts peers, requests blocks through the piece picker with a pipeline
 * sized by each peer's rate, verifies pieces and writes them, serves the peers' requests under a tit-for-tat
 * choker, bans peers that send corrupt data, fetches a magnet's metadata from peers (BEP 9), saves resume data
 * and stops seeding by the seeding policy. Transports come from the injected connector, so the same code runs over
 * TCP, uTP and in-process pairs.
 *
 * @example
 * ```ts
 * const dl = new Download({ connect, peerId }, { infoHash: torrent.infoHash, torrent, downloadDir })
 * dl.events.on('finished', () => console.log('done'))
 * await dl.start()
 * dl.addPeers([{ host: '127.0.0.2', port: 6881 }], 'manual')
 * ```
 */
export class Download {
  readonly events = new TypedEmitter<DownloadEvents>()
  readonly infoHash: Buffer
  readonly infoHashHex: string
  readonly #deps: DownloadDeps
  readonly #opts: DownloadOptions
  readonly #clock: Clock
  readonly #log: Logger
  readonly #random: () => number
  readonly #maxConnections: number
  readonly #uploadSlots: number
  #torrent: TorrentInfo | undefined
  #storage: Storage | undefined
  #picker: PiecePicker<Peer> | undefined
  /** Pieces verified and on disk. */
  #onDisk: Bitfield | undefined
  #priorities: FilePriority[] = []
  #state: DownloadState = 'DLSTATUS_STOPPED'
  #error = ''
  #checkProgress = 0
  #running: AbortController | undefined
  #tasks: TaskScope | undefined
  readonly #peers = new Set<Peer>()
  readonly #candidates = new Map<string, Candidate>()
  readonly #banned = new Set<string>()
  /** Blocks of pieces in progress, by piece. */
  readonly #partial = new Map<number, Buffer>()
  /** Full-size piece buffers free for reuse (see {@link SPARE_PIECE_BUFFERS}). */
  #spare: Buffer[] = []
  #pendingWrites = 0
  #pendingWriteBytes = 0
  #writesIdle: Array<() => void> = []
  readonly #readCache = new Map<number, Promise<Buffer>>()
  #optimistic: Peer | undefined
  #rechokes = 0
  #dirty = false
  #fetchingMetadata = new Set<Peer>()
  #finishedAtMs: number | undefined
  readonly #down: RateMeter
  readonly #up: RateMeter
  #totalDown = 0
  #totalUp = 0
  #wastedBytes = 0
  #hashFailures = 0
  #rechecked = false
  #ticks = 0
  readonly #connections = { tcp: 0, utp: 0 }
  #resume: Uint8Array | undefined
  /**
   * Bytes of the wanted pieces and of those of them on disk, for {@link status}: counted again only when the
   * selection or the pieces on disk are replaced, and kept up to date as pieces are written.
   */
  #wantedCount: { wanted: number; done: number } | undefined

  constructor(deps: DownloadDeps, opts: DownloadOptions) {
    if (opts.infoHash.length !== 20) throw new DownloadError('INVALID_STATE', { reason: 'info hash length' })
    this.#deps = deps
    this.#opts = opts
    this.#clock = deps.clock ?? systemClock
    this.#log = deps.logger ?? logger('bittorrent:download')
    this.#random = deps.random ?? Math.random
    this.infoHash = Buffer.from(opts.infoHash)
    this.infoHashHex = toHex(this.infoHash)
    this.#maxConnections = opts.tuning?.maxConnections ?? DEFAULT_MAX_CONNECTIONS
    this.#uploadSlots = opts.tuning?.uploadSlots ?? DEFAULT_UPLOAD_SLOTS
    this.#down = new RateMeter(this.#clock)
    this.#up = new RateMeter(this.#clock)
    this.#resume = opts.resumeData
    if (opts.torrent !== undefined) this.#setTorrent(opts.torrent)
  }

  // ---- public state

  get state(): DownloadState {
    return this.#state
  }

  get torrent(): TorrentInfo | undefined {
    return this.#torrent
  }

  get error(): string {
    return this.#error
  }

  get isRunning(): boolean {
    return this.#running !== undefined
  }

  /** Whether the last start had to hash the data (no usable resume data). */
  get rechecked(): boolean {
    return this.#rechecked
  }

  /** Whether incoming connections for this torrent are accepted now. */
  get acceptsPeers(): boolean {
    return this.#running !== undefined && this.#state !== 'DLSTATUS_HASHCHECKING'
  }

  /** Payload bytes received and sent since this object was made, and bytes dropped (hash failures, duplicates). */
  get totals(): { down: number; up: number; wasted: number; hashFailures: number } {
    return {
      down: this.#totalDown,
      up: this.#totalUp,
      wasted: this.#wastedBytes,
      hashFailures: this.#hashFailures,
    }
  }

  /**
   * Payload bytes received and sent over the download's lifetime: earlier runs (`previousTotals`) and this one, as
   * libtorrent's `all_time_download`/`all_time_upload`.
   */
  get allTimeTotals(): { down: number; up: number } {
    const previous = this.#opts.previousTotals
    return { down: (previous?.down ?? 0) + this.#totalDown, up: (previous?.up ?? 0) + this.#totalUp }
  }

  /** Peers that completed a handshake since this object was made, by transport. */
  get connections(): { readonly tcp: number; readonly utp: number } {
    return { ...this.#connections }
  }

  /** Hosts banned for corrupt data. */
  get bannedHosts(): readonly string[] {
    return [...this.#banned]
  }

  /** The selected file indices (all files when everything is selected). */
  get selectedFiles(): number[] {
    return this.#priorities.flatMap((p, i) => (p > 0 ? [i] : []))
  }

  /** Whether every selected piece is verified and on disk. */
  get isComplete(): boolean {
    return this.#picker?.isFinished === true && this.#pendingWrites === 0
  }

  // ---- lifecycle

  /**
   * Starts: checks the data (trusting valid resume data), then downloads or seeds; a magnet first fetches its
   * metadata from peers (state `DLSTATUS_METADATA`).
   */
  async start(): Promise<void> {
    await this.#begin(false)
  }

  async #begin(forceRecheck: boolean): Promise<void> {
    if (this.#running !== undefined) return
    const running = new AbortController()
    this.#running = running
    this.#error = ''
    this.#tasks = new TaskScope(running.signal, this.#clock)
    this.#tasks.every('tick', TICK_MS, () => this.#tick())
    this.#tasks.every('rechoke', this.#opts.tuning?.rechokeIntervalMs ?? 10_000, () => this.#rechoke())
    this.#tasks.every('resume', this.#opts.tuning?.resumeSaveIntervalMs ?? 30_000, () => {
      if (this.#dirty) void this.saveResumeData()
    })
    if (this.#torrent === undefined) {
      this.#setState('DLSTATUS_METADATA')
      this.#connectMore()
      return
    }
    await this.#prepare(this.#resume, forceRecheck)
  }

  /** Disconnects every peer, saves resume data and goes to `DLSTATUS_STOPPED` (or keeps the error state). */
  async stop(): Promise<void> {
    const running = this.#running
    if (running === undefined) return
    this.#running = undefined
    running.abort()
    this.#tasks = undefined
    for (const peer of [...this.#peers]) peer.wire.destroy()
    for (const c of this.#candidates.values()) {
      c.connecting = false
      c.connected = false
    }
    await this.#writesDone()
    if (this.#storage !== undefined && this.#state !== 'DLSTATUS_HASHCHECKING') {
      this.#resume = (await this.resumeData().catch(() => undefined)) ?? this.#resume
      if (this.#state !== 'DLSTATUS_STOPPED_ON_ERROR') await this.saveResumeData()
    }
    if (this.#state !== 'DLSTATUS_STOPPED_ON_ERROR') this.#setState('DLSTATUS_STOPPED')
    this.#readCache.clear()
    this.#partial.clear()
    this.#spare = []
    this.#rebuildPicker()
    await this.#storage?.close()
    this.#storage = undefined
  }

  /** Hashes every piece on disk again, then continues as before (running, or stopped once checked). */
  async recheck(): Promise<void> {
    if (this.#torrent === undefined) return
    const wasRunning = this.#running !== undefined
    await this.stop()
    await this.#begin(true)
    if (!wasRunning) await this.stop()
  }

  /** Adds peer addresses to dial (deduplicated; banned hosts are ignored). */
  addPeers(peers: readonly SocketAddress[], source: PeerSource): void {
    for (const address of peers) {
      if (!Number.isInteger(address.port) || address.port <= 0 || address.port > 0xffff) continue
      if (this.#banned.has(address.host)) continue
      const key = formatAddress(address)
      const known = this.#candidates.get(key)
      if (known !== undefined) {
        if (!known.connected && !known.connecting && known.failures > 0 && source !== 'incoming') {
          known.nextAttemptMs = Math.min(known.nextAttemptMs, this.#clock.monotonic())
        }
        continue
      }
      if (this.#candidates.size >= MAX_PEER_CANDIDATES && !this.#evictCandidate(source === 'manual')) continue
      this.#candidates.set(key, {
        address: { host: address.host, port: address.port },
        key,
        source,
        failures: 0,
        nextAttemptMs: 0,
        connecting: false,
        connected: false,
      })
    }
    this.#connectMore()
  }

  /**
   * Makes room in a full candidate list: forgets one address we are not connected to that has failed to answer
   * (any idle one when `anyIdle`). Returns false when there is nothing to forget.
   */
  #evictCandidate(anyIdle: boolean): boolean {
    let idle: string | undefined
    for (const [key, c] of this.#candidates) {
      if (c.connected || c.connecting) continue
      if (c.failures > 0) {
        this.#candidates.delete(key)
        return true
      }
      idle ??= key
    }
    if (!anyIdle || idle === undefined) return false
    this.#candidates.delete(idle)
    return true
  }

  /** The options an incoming {@link PeerWire} for this torrent is built with by the listener. */
  wireOptions(remoteAddress?: SocketAddress): PeerWireOptions {
    const opts: PeerWireOptions = {
      peerId: this.#deps.peerId,
      clientName: CLIENT_NAME,
      clock: this.#clock,
      maxOutstandingRequests: this.#opts.tuning?.maxRequests ?? 500,
      reqq: 500,
    }
    if (this.#deps.listenPort !== undefined) opts.listenPort = this.#deps.listenPort
    if (remoteAddress !== undefined) opts.remoteAddress = remoteAddress
    if (this.#torrent !== undefined) {
      opts.numPieces = this.#torrent.pieceCount
      opts.metadata = Buffer.from(this.#torrent.infoBytes)
    }
    return opts
  }

  /**
   * Takes an incoming connection whose handshake named this torrent. Call it from the wire's `handshake` listener:
   * our handshake is sent at once. Returns false (and closes it) when the download does not accept peers now.
   */
  acceptIncoming(wire: PeerWire, meta: Omit<PeerMeta, 'direction' | 'candidate'>): boolean {
    if (
      !this.acceptsPeers ||
      this.#peers.size >= this.#maxConnections ||
      this.#banned.has(meta.address.host)
    ) {
      wire.destroy()
      return false
    }
    if (this.#torrent !== undefined) {
      wire.setNumPieces(this.#torrent.pieceCount)
      wire.setMetadata(Buffer.from(this.#torrent.infoBytes))
    }
    wire.handshake(this.infoHash)
    const peer = this.#track(wire, { ...meta, direction: 'R' })
    this.#onHandshake(peer)
    return true
  }

  /** Closes every peer connection whose address `keep` rejects; returns how many were closed. */
  disconnectPeers(keep: (address: SocketAddress) => boolean): number {
    let closed = 0
    for (const peer of [...this.#peers]) {
      if (keep(peer.address)) continue
      peer.wire.destroy()
      closed++
    }
    return closed
  }

  // ---- snapshots

  status(): Omit<
    DownloadStatus,
    'trackers' | 'hops' | 'safeSeeding' | 'destination' | 'timeAdded' | 'rateLimits'
  > {
    const torrent = this.#torrent
    const picker = this.#picker
    const { wanted, done } = this.#wantedAndDone()
    const allTime = this.allTimeTotals
    const speedDown = this.#down.ratePerSec
    const speedUp = this.#up.ratePerSec
    let progress = 0
    if (this.#state === 'DLSTATUS_HASHCHECKING') progress = this.#checkProgress
    else if (torrent !== undefined && this.#onDisk !== undefined) progress = wanted === 0 ? 1 : done / wanted
    const left = wanted - done
    const eta = left <= 0 ? 0 : speedDown > 0 ? Math.ceil(left / speedDown) : Number.MAX_SAFE_INTEGER
    const active = [...this.#peers].filter((p) => p.active)
    const seeds = active.filter((p) => p.wire.peerIsSeed).length
    const known = this.#candidates.size
    return {
      infoHash: this.infoHashHex,
      name: torrent?.displayName ?? this.#opts.displayName ?? 'Unknown name',
      state: this.#state,
      progress: Math.min(1, Math.max(0, progress)),
      size: torrent?.totalLength ?? 0,
      speedDown,
      speedUp,
      totalDown: allTime.down,
      totalUp: allTime.up,
      ratio: allTime.down === 0 ? 0 : allTime.up / allTime.down,
      eta,
      numPeers: Math.max(known, active.length) - seeds,
      numSeeds: seeds,
      numConnectedPeers: active.length - seeds,
      numConnectedSeeds: seeds,
      availability: picker === undefined ? 0 : this.#distributedCopies(picker),
      totalPieces: torrent?.pieceCount ?? 0,
      error: this.#error,
      hasMetadata: torrent !== undefined,
    }
  }

  peers(): PeerStatus[] {
    const pieceCount = this.#torrent?.pieceCount ?? 0
    return [...this.#peers]
      .filter((p) => p.active)
      .map((p) => {
        const wire = p.wire
        const id = wire.remoteHandshake?.peerId
        return {
          id: id === undefined ? '' : toHex(id),
          client: wire.remoteExtended?.v ?? clientFromPeerId(id),
          ip: p.address.host,
          port: p.address.port,
          optimistic: p.optimistic,
          weInterested: wire.amInterested,
          weChoked: wire.peerChoking,
          peerInterested: wire.peerInterested,
          peerChoked: wire.amChoking,
          snubbed: p.snubbed,
          seed: wire.peerIsSeed,
          uploadOnly: wire.peerIsSeed || wire.remoteExtended?.uploadOnly === true,
          direction: p.direction,
          upRate: p.up.ratePerSec,
          downRate: p.down.ratePerSec,
          totalUp: p.up.total,
          totalDown: p.down.total,
          completed: pieceCount === 0 ? 0 : Math.min(1, wire.peerPieceCount / pieceCount),
          connectionType: p.transport === 'utp' ? 1 : 0,
          encryption: p.encryption,
        }
      })
  }

  files(): FileStatus[] {
    const torrent = this.#torrent
    if (torrent === undefined) return []
    const out: FileStatus[] = []
    for (const file of torrent.files) {
      if (file.padding) continue
      out.push({
        index: file.index,
        name: file.path,
        size: file.length,
        included: (this.#priorities[file.index] ?? 4) > 0,
        progress: this.#fileProgress(file.offset, file.length),
      })
    }
    return out
  }

  /** Pieces verified and on disk, most significant bit first. */
  pieces(): Uint8Array {
    return this.#onDisk === undefined ? new Uint8Array(0) : new Uint8Array(this.#onDisk.bytes)
  }

  /** Resume data of what is on disk now (the storage's bencoded format). */
  async resumeData(): Promise<Buffer | undefined> {
    const storage = this.#storage
    if (storage === undefined || this.#onDisk === undefined) return undefined
    return storage.resumeData(this.#onDisk.bytes)
  }

  /** Saves resume data through the `saveResumeData` dep (if any). Never throws. */
  async saveResumeData(): Promise<void> {
    const save = this.#deps.saveResumeData
    if (save === undefined) return
    try {
      const data = await this.resumeData()
      if (data === undefined) return
      this.#dirty = false
      await save(data)
    } catch (err) {
      this.#log.debug('saving resume data failed', { infoHash: this.infoHashHex, err })
    }
  }

  /** Replaces the file selection (torrent file indices; empty means all). */
  async setSelectedFiles(indices: readonly number[]): Promise<void> {
    const torrent = this.#torrent
    if (torrent === undefined) throw new DownloadError('INVALID_STATE', { reason: 'no metadata yet' })
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= torrent.files.length) {
        throw new RangeError(`file index ${i} is out of range (0..${torrent.files.length - 1})`)
      }
    }
    const next = prioritiesFor(torrent, indices)
    const storage = this.#storage
    if (storage !== undefined) {
      await this.#writesDone()
      try {
        await storage.setFilePriorities(next, this.#onDisk?.bytes)
      } catch (err) {
        this.#fail(err)
        return
      }
    }
    this.#priorities = next
    this.#picker?.setFilePriorities(torrent.files, next)
    this.#wantedCount = undefined
    this.#dirty = true
    if (this.#state === 'DLSTATUS_SEEDING' && !this.isComplete) this.#setState('DLSTATUS_DOWNLOADING')
    for (const peer of this.#peers) this.#updateInterest(peer)
    this.#checkFinished()
    for (const peer of this.#peers) this.#fill(peer)
  }

  /** Deletes the torrent's files (stop first). */
  async deleteFiles(): Promise<void> {
    const torrent = this.#torrent
    if (torrent === undefined) return
    const storage = new Storage({
      layout: torrent,
      downloadDir: this.#opts.downloadDir,
      id: this.infoHashHex,
      priorities: this.#priorities,
    })
    await storage.deleteFiles()
    await storage.close()
  }

  // ---- setup

  #setTorrent(torrent: TorrentInfo): void {
    this.#torrent = torrent
    this.#priorities = prioritiesFor(torrent, this.#opts.selectedFiles ?? [])
    this.#onDisk = new Bitfield(torrent.pieceCount)
    this.#rebuildPicker()
  }

  #rebuildPicker(): void {
    const torrent = this.#torrent
    if (torrent === undefined || this.#onDisk === undefined) return
    const picker = PiecePicker.forTorrent<Peer>(torrent, { random: this.#random })
    picker.setFilePriorities(torrent.files, this.#priorities)
    for (const piece of this.#onDisk) picker.setHave(piece)
    this.#picker = picker
    this.#wantedCount = undefined
  }

  /** Opens storage, restores or checks the data, then enters downloading or seeding and opens the swarm. */
  async #prepare(resume: Uint8Array | undefined, forceRecheck: boolean): Promise<void> {
    const torrent = this.#torrent!
    const running = this.#running
    if (this.#opts.metadataOnly === true) return
    const storage = new Storage({
      layout: torrent,
      downloadDir: this.#opts.downloadDir,
      id: this.infoHashHex,
      priorities: this.#priorities,
    })
    this.#storage = storage
    let have: Uint8Array | undefined
    try {
      have = forceRecheck ? undefined : await this.#trustResume(storage, resume)
      if (have === undefined) {
        if (forceRecheck || (await this.#anyDataOnDisk(storage))) {
          this.#rechecked = true
          this.#setState('DLSTATUS_HASHCHECKING')
          this.#checkProgress = 0
          have = await storage.recheck({
            ...(running === undefined ? {} : { signal: running.signal }),
            onProgress: ({ checkedPieces, totalPieces }) => {
              this.#checkProgress = checkedPieces / totalPieces
            },
          })
        } else {
          have = new Uint8Array(Math.ceil(torrent.pieceCount / 8))
        }
      }
    } catch (err) {
      if (running?.signal.aborted === true) return
      this.#fail(err)
      return
    }
    if (this.#running !== running || running === undefined) return
    this.#onDisk = Bitfield.fromBytes(have, torrent.pieceCount) ?? new Bitfield(torrent.pieceCount)
    this.#rebuildPicker()
    this.#dirty = true
    const complete = this.#picker!.isFinished
    this.#setState(complete ? 'DLSTATUS_SEEDING' : 'DLSTATUS_DOWNLOADING')
    if (complete) this.#finishedAtMs = this.#clock.monotonic()
    for (const peer of this.#peers) if (peer.active) this.#syncPeer(peer)
    this.#connectMore()
  }

  /** The have-bitfield of resume data when it fits this torrent and its files are still there; else undefined. */
  async #trustResume(storage: Storage, resume: Uint8Array | undefined): Promise<Uint8Array | undefined> {
    if (resume === undefined) return undefined
    const torrent = this.#torrent!
    let pieces: Uint8Array
    try {
      pieces = decodeResumeData(resume, torrent.pieceCount, torrent.files.length).pieces
    } catch (err) {
      this.#log.debug('resume data rejected', { infoHash: this.infoHashHex, err })
      return undefined
    }
    const have = Bitfield.fromBytes(pieces, torrent.pieceCount)
    if (have === undefined) return undefined
    // Data written after the last save is simply downloaded again; a file that shrank or vanished means a recheck.
    for (const file of torrent.files) {
      if (file.padding || file.length === 0) continue
      const first = Math.floor(file.offset / torrent.pieceLength)
      const last = Math.floor((file.offset + file.length - 1) / torrent.pieceLength)
      let needed = false
      for (let p = first; p <= last && !needed; p++) needed = have.has(p)
      if (!needed) continue
      if ((this.#priorities[file.index] ?? 4) === 0) {
        if (!(await exists(storage.partFilePath))) return undefined
        continue
      }
      const size = await fileSize(storage.filePath(file.index))
      if (size < 0) return undefined
    }
    return pieces
  }

  async #anyDataOnDisk(storage: Storage): Promise<boolean> {
    const torrent = this.#torrent!
    for (const file of torrent.files) {
      if (file.padding || file.length === 0) continue
      if ((await fileSize(storage.filePath(file.index))) > 0) return true
    }
    return exists(storage.partFilePath)
  }

  // ---- peers and connections

  #connectMore(): void {
    const running = this.#running
    if (running === undefined || this.#state === 'DLSTATUS_HASHCHECKING') return
    // A seed dials too, as libtorrent's does: a leecher that cannot or will not dial us (behind a NAT, or one that
    // ignores the addresses it was given) is served only this way. Peers known to be seeds are skipped.
    const seeding = this.#allPieces()
    const now = this.#clock.monotonic()
    let open = this.#peers.size
    for (const c of this.#candidates.values()) if (c.connecting) open++
    for (const c of this.#candidates.values()) {
      if (open >= this.#maxConnections) break
      if (c.connected || c.connecting || c.nextAttemptMs > now || this.#banned.has(c.address.host)) continue
      if (c.source === 'hidden' && this.#deps.isHiddenPeer?.(c.address) !== true) {
        // A hidden peer's address only stands in for its end-to-end session: once that is gone the address names
        // some unrelated host, which must not be dialled (through an exit or otherwise).
        this.#candidates.delete(c.key)
        continue
      }
      if (seeding && c.seed === true) continue
      if (this.#deps.mayDial?.(c.address) === false) continue
      if (c.failures >= MAX_DIAL_FAILURES) continue
      open++
      void this.#dial(c, running)
    }
  }

  async #dial(c: Candidate, running: AbortController): Promise<void> {
    c.connecting = true
    const timeout = AbortSignal.timeout(this.#opts.tuning?.connectTimeoutMs ?? 15_000)
    const signal = AbortSignal.any([running.signal, timeout])
    let conn: PeerConnection
    try {
      conn = await this.#deps.connect(c.address, { signal })
    } catch (err) {
      c.connecting = false
      this.#dialFailed(c)
      this.#log.debug('dial failed', { peer: c.key, err: errorMessage(err) })
      return
    }
    c.connecting = false
    if (this.#running !== running || this.#banned.has(c.address.host)) {
      conn.stream.destroy()
      return
    }
    const opts = this.wireOptions(c.address)
    opts.infoHash = this.infoHash
    const wire = new PeerWire(conn.stream, opts)
    c.connected = true
    const peer = this.#track(wire, {
      address: c.address,
      transport: conn.transport,
      direction: 'L',
      candidate: c,
      encryption: conn.encryption ?? 'none',
    })
    wire.on('handshake', () => this.#onHandshake(peer))
  }

  #dialFailed(c: Candidate): void {
    c.failures++
    const base = this.#opts.tuning?.reconnectBaseMs ?? 5000
    c.nextAttemptMs = this.#clock.monotonic() + Math.min(MAX_RECONNECT_MS, base * 2 ** (c.failures - 1))
  }

  #track(wire: PeerWire, meta: PeerMeta): Peer {
    const peer = new Peer(wire, meta, this.#clock)
    this.#peers.add(peer)
    wire.on('close', (err) => this.#onClose(peer, err))
    return peer
  }

  #onHandshake(peer: Peer): void {
    const wire = peer.wire
    const remoteId = wire.remoteHandshake!.peerId
    if (remoteId.equals(this.#deps.peerId)) {
      if (peer.candidate !== undefined) peer.candidate.failures = MAX_DIAL_FAILURES
      wire.destroy()
      return
    }
    for (const other of this.#peers) {
      if (other !== peer && other.active && other.wire.remoteHandshake?.peerId.equals(remoteId)) {
        wire.destroy()
        return
      }
    }
    peer.active = true
    this.#connections[peer.transport]++
    if (this.#ready()) this.#picker?.addPeer(peer)
    if (peer.candidate !== undefined) peer.candidate.failures = 0
    if (peer.direction === 'R') this.#rememberIncoming(peer)
    // Our bitfield goes first, before the extended handshake the wire sends after this listener.
    const onDisk = this.#onDisk
    if (this.#torrent === undefined || onDisk === undefined || onDisk.count === 0) wire.haveNone()
    else if (onDisk.count === this.#torrent.pieceCount) wire.haveAll()
    else wire.bitfield(onDisk.bytes)

    wire.on('extendedHandshake', (ext) => {
      if (ext.p !== undefined && peer.direction === 'R' && peer.candidate === undefined) {
        this.#rememberListenPort(peer, ext.p)
      }
      if (this.#torrent === undefined) this.#fetchMetadata(peer)
    })
    wire.on('bitfield', () => this.#syncPeer(peer))
    wire.on('haveAll', () => this.#syncPeer(peer))
    wire.on('haveNone', () => this.#syncPeer(peer))
    wire.on('have', (index) => {
      const picker = this.#picker
      if (picker === undefined || !this.#ready()) return
      if (index >= picker.pieceCount) return
      picker.addPeer(peer)
      picker.peerHave(peer, index)
      if (!wire.amInterested && picker.piecePriority(index) > 0 && !picker.hasPiece(index)) {
        wire.interested()
      }
      this.#maybeDisconnectSeed(peer)
    })
    wire.on('unchoke', () => this.#fill(peer))
    wire.on('allowedFast', () => this.#fill(peer))
    wire.on('piece', ({ index, begin, block }) => this.#onBlock(peer, index, begin, block))
    wire.on('requestFailed', ({ index, begin, error }) => {
      peer.inflight--
      this.#picker?.releaseRequest(peer, index, begin)
      if (error.code === 'REQUEST_TIMEOUT') {
        // Snubbed, as libtorrent: the released block goes to the other peers first, this one gets one at a time.
        peer.snubbed = true
        for (const other of this.#peers) if (other !== peer && !other.snubbed) this.#fill(other)
      }
      if (!wire.isClosed) this.#fill(peer)
    })
    wire.on('request', (req) => {
      peer.uploadQueue.push(req)
      this.#serve(peer)
    })
    wire.on('drain', () => this.#serve(peer))
    wire.on('interested', () => this.#onInterested(peer))
    wire.on('notInterested', () => {
      if (!wire.amChoking && !peer.optimistic) wire.choke()
    })
    // Private torrents (BEP 27) learn peers from their trackers only, whatever a peer sends.
    wire.on('pex', (msg) => {
      if (this.#torrent?.private === true) return
      this.addPeers(msg.added, 'pex')
      const speaksUtp = this.#deps.peerSpeaksUtp
      if (speaksUtp === undefined) return
      for (const p of msg.added) {
        if ((p.flags & PEX_FLAGS.SUPPORTS_UTP) !== 0) speaksUtp({ host: p.host, port: p.port })
      }
    })
    if (wire.remoteExtended !== undefined && this.#torrent === undefined) this.#fetchMetadata(peer)
  }

  #rememberIncoming(peer: Peer): void {
    this.#log.debug('incoming peer', { peer: formatAddress(peer.address), transport: peer.transport })
  }

  /** An incoming peer told us its listen port: remember it as a candidate so we can redial it later. */
  #rememberListenPort(peer: Peer, port: number): void {
    if (!Number.isInteger(port) || port <= 0 || port > 0xffff) return
    if (this.#deps.isHiddenPeer?.(peer.address) === true) return
    const address = { host: peer.address.host, port }
    const key = formatAddress(address)
    if (this.#candidates.has(key)) return
    if (this.#candidates.size >= MAX_PEER_CANDIDATES && !this.#evictCandidate(true)) return
    this.#candidates.set(key, {
      address,
      key,
      source: 'incoming',
      failures: 0,
      nextAttemptMs: 0,
      connecting: false,
      connected: true,
    })
    peer.candidate = this.#candidates.get(key)
  }

  #onClose(peer: Peer, err: PeerWireError | undefined): void {
    if (!this.#peers.delete(peer)) return
    this.#picker?.removePeer(peer)
    this.#fetchingMetadata.delete(peer)
    if (this.#optimistic === peer) this.#optimistic = undefined
    const c = peer.candidate
    if (c !== undefined) {
      c.connected = false
      if (err !== undefined || !peer.active) this.#dialFailed(c)
      else c.nextAttemptMs = this.#clock.monotonic() + (this.#opts.tuning?.reconnectBaseMs ?? 5000)
    }
    if (peer.active) {
      this.#log.debug('peer left', { peer: formatAddress(peer.address), code: err?.code })
    }
    // Its slot may go to someone else now.
    if (!peer.wire.amChoking) this.#fillUploadSlots()
  }

  #ready(): boolean {
    return (
      this.#running !== undefined &&
      (this.#state === 'DLSTATUS_DOWNLOADING' || this.#state === 'DLSTATUS_SEEDING')
    )
  }

  /** Feeds the picker what the peer has (after its bitfield, or once our metadata and check are done). */
  #syncPeer(peer: Peer): void {
    const picker = this.#picker
    if (picker === undefined || !this.#ready()) return
    const wire = peer.wire
    picker.addPeer(peer)
    if (wire.peerIsSeed) picker.peerHaveAll(peer)
    else {
      const bits = new Bitfield(picker.pieceCount)
      for (let i = 0; i < picker.pieceCount; i++) if (wire.peerHas(i)) bits.set(i)
      picker.peerBitfield(peer, bits)
    }
    this.#updateInterest(peer)
    this.#maybeDisconnectSeed(peer)
    this.#fill(peer)
  }

  #updateInterest(peer: Peer): void {
    const picker = this.#picker
    const wire = peer.wire
    if (picker === undefined || !peer.active || wire.isClosed || !this.#ready()) return
    const interesting = !picker.isFinished && picker.isInteresting(peer)
    if (interesting) wire.interested()
    else wire.notInterested()
  }

  #maybeDisconnectSeed(peer: Peer): void {
    if (!peer.wire.peerIsSeed) return
    if (peer.candidate !== undefined) peer.candidate.seed = true
    if (this.#allPieces()) peer.wire.destroy()
  }

  #allPieces(): boolean {
    const torrent = this.#torrent
    return torrent !== undefined && this.#onDisk !== undefined && this.#onDisk.count === torrent.pieceCount
  }

  // ---- metadata (BEP 9)

  #fetchMetadata(peer: Peer): void {
    if (this.#torrent !== undefined || this.#fetchingMetadata.has(peer)) return
    const running = this.#running
    if (running === undefined) return
    const ext = peer.wire.remoteExtended
    if (ext?.metadataSize === undefined || (ext.m.ut_metadata ?? 0) === 0) return
    this.#fetchingMetadata.add(peer)
    peer.wire
      .fetchMetadata({ signal: running.signal })
      .then((info) => this.#onMetadata(info))
      .catch((err: unknown) => {
        this.#log.debug('metadata from peer failed', {
          peer: formatAddress(peer.address),
          err: errorMessage(err),
        })
      })
      .finally(() => this.#fetchingMetadata.delete(peer))
  }

  #onMetadata(info: Buffer): void {
    if (this.#torrent !== undefined || this.#running === undefined) return
    let torrent: TorrentInfo
    try {
      torrent = parseInfoDictionary(info, { expectedInfoHash: this.infoHash })
    } catch (err) {
      this.#log.debug('metadata rejected', { infoHash: this.infoHashHex, err })
      return
    }
    this.#setTorrent(torrent)
    for (const peer of this.#peers) {
      if (peer.wire.isClosed) continue
      peer.wire.setMetadata(Buffer.from(torrent.infoBytes))
      peer.wire.setNumPieces(torrent.pieceCount)
    }
    this.events.emit('metadata', torrent)
    if (this.#opts.metadataOnly === true) return
    void this.#prepare(undefined, false)
  }

  // ---- downloading

  #depth(peer: Peer): number {
    if (peer.snubbed) return 1
    const tuning = this.#opts.tuning
    const min = tuning?.minRequests ?? 64
    const max = tuning?.maxRequests ?? 500
    const byRate = Math.ceil((peer.down.ratePerSec * (tuning?.requestQueueSec ?? 3)) / BLOCK)
    return Math.max(min, Math.min(max, byRate))
  }

  /** Keeps the peer's request pipeline full. */
  #fill(peer: Peer): void {
    const picker = this.#picker
    const wire = peer.wire
    if (picker === undefined || !peer.active || wire.isClosed || this.#state !== 'DLSTATUS_DOWNLOADING')
      return
    if (!wire.amInterested) return
    if (this.#pendingWriteBytes > this.#maxPendingWriteBytes) return
    const choked = wire.peerChoking
    if (choked && wire.allowedFastFromPeer.size === 0) return
    const depth = this.#depth(peer)
    const want = Math.min(depth - peer.inflight, wire.requestSlots)
    // Refill in batches of an eighth of the pipeline: picking and sending a few blocks at a time costs a pick and
    // a socket write each, while a deep pipeline does not run dry for want of them.
    const batch = Math.max(8, depth >> 3)
    if (want < batch && peer.inflight > batch) return
    if (want <= 0) return
    const blocks = picker.pickBlocks(peer, want, choked ? { onlyPieces: wire.allowedFastFromPeer } : {})
    for (const b of blocks) {
      if (wire.requestBlock(b.piece, b.offset, b.length)) peer.inflight++
      else picker.releaseRequest(peer, b.piece, b.offset)
    }
    if (blocks.length === 0 && !picker.isInteresting(peer)) wire.notInterested()
  }

  #onBlock(peer: Peer, index: number, begin: number, block: Buffer): void {
    peer.inflight--
    peer.snubbed = false
    const picker = this.#picker
    const torrent = this.#torrent
    const length = block.length
    this.#totalDown += length
    this.#down.add(length)
    peer.down.add(length)
    if (picker === undefined || torrent === undefined || !this.#ready()) return
    const received = picker.blockReceived(peer, index, begin)
    if (!received.accepted) {
      this.#wastedBytes += length
    } else {
      let buf = this.#partial.get(index)
      if (buf === undefined) {
        const size = picker.pieceSize(index)
        buf = (size === torrent.pieceLength ? this.#spare.pop() : undefined) ?? allocPiece(size)
        this.#partial.set(index, buf)
      }
      block.copy(buf, begin)
      for (const other of received.cancel) {
        const p = other as Peer
        if (!p.wire.isClosed) p.wire.cancel(index, begin, length)
      }
      if (received.pieceComplete) this.#pieceComplete(index, buf)
    }
    this.#fill(peer)
  }

  /**
   * Hashes a piece whose blocks all arrived (on the hash worker, which has the buffer meanwhile), then writes it or
   * drops it. It counts as a pending write from now, so the memory bound and {@link stop} cover pieces being hashed
   * too.
   */
  #pieceComplete(index: number, piece: Buffer): void {
    const picker = this.#picker!
    const running = this.#running
    const bytes = piece.length
    this.#partial.delete(index)
    this.#pendingWrites++
    this.#pendingWriteBytes += bytes
    void sha1Pool.sha1Piece(piece).then(({ digest, data }) => {
      if (this.#running !== running || this.#picker !== picker) {
        // Stopped (and the picker rebuilt) meanwhile: the piece is fetched again after a restart.
        this.#writeSettled(bytes)
        return
      }
      if (digest === undefined) {
        // The hash worker failed with the piece: nobody is to blame, the piece is fetched again.
        this.#writeSettled(bytes)
        picker.pieceFailed(index)
        for (const peer of this.#peers) this.#fill(peer)
        return
      }
      if (!digest.equals(this.#torrent!.pieces[index]!)) {
        this.#writeSettled(bytes)
        this.#hashFailed(index, picker.pieceFailed(index), bytes)
        this.#recycle(data)
        return
      }
      picker.pieceVerified(index)
      const storage = this.#storage
      if (storage === undefined) {
        this.#writeSettled(bytes)
        return
      }
      storage.writeBlock(index, 0, data).then(
        () => {
          this.#recycle(data)
          this.#written(index, bytes)
        },
        (err: unknown) => {
          this.#writeSettled(bytes)
          this.#fail(err)
        },
      )
    })
  }

  /** Keeps a piece buffer nothing refers to any more for the next piece. */
  #recycle(buf: Buffer): void {
    const pieceLength = this.#torrent?.pieceLength ?? 0
    const keep = SPARE_PIECE_BUFFERS + Math.ceil(this.#maxPendingWriteBytes / Math.max(1, pieceLength))
    if (buf.length === pieceLength && this.#spare.length < keep) this.#spare.push(buf)
  }

  #written(index: number, bytes: number): void {
    this.#writeSettled(bytes)
    if (this.#running === undefined || this.#onDisk === undefined) return
    if (!this.#onDisk.has(index) && this.#wantedCount !== undefined) {
      const picker = this.#picker
      if (picker !== undefined && picker.piecePriority(index) > 0)
        this.#wantedCount.done += picker.pieceSize(index)
    }
    this.#onDisk.set(index)
    this.#dirty = true
    for (const peer of this.#peers) {
      if (peer.active && !peer.wire.isClosed && !peer.wire.peerHas(index)) peer.wire.have(index)
    }
    const wasPaused = this.#pendingWriteBytes + bytes > this.#maxPendingWriteBytes
    if (wasPaused) for (const peer of this.#peers) this.#fill(peer)
    this.#checkFinished()
  }

  get #maxPendingWriteBytes(): number {
    return this.#opts.tuning?.maxPendingWriteBytes ?? DEFAULT_MAX_PENDING_WRITE_BYTES
  }

  #writeSettled(bytes: number): void {
    this.#pendingWrites--
    this.#pendingWriteBytes -= bytes
    if (this.#pendingWrites === 0) for (const fn of this.#writesIdle.splice(0)) fn()
  }

  #writesDone(): Promise<void> {
    if (this.#pendingWrites === 0) return Promise.resolve()
    return new Promise((resolve) => this.#writesIdle.push(resolve))
  }

  #hashFailed(index: number, senders: Peer[], bytes: number): void {
    this.#hashFailures++
    this.#wastedBytes += bytes
    const limit = this.#opts.tuning?.banAfterHashFailures ?? 2
    this.#log.debug('piece failed its hash check', {
      infoHash: this.infoHashHex,
      index,
      senders: senders.length,
    })
    for (const peer of senders) {
      peer.hashFailures += senders.length === 1 ? 2 : 1
      if (peer.hashFailures >= limit) this.#ban(peer)
    }
    for (const peer of this.#peers) this.#fill(peer)
  }

  #ban(peer: Peer): void {
    const host = peer.address.host
    if (this.#banned.has(host)) return
    this.#banned.add(host)
    this.#log.info('banned a peer that sent corrupt data', { infoHash: this.infoHashHex })
    for (const other of [...this.#peers]) if (other.address.host === host) other.wire.destroy()
    this.events.emit('banned', { host })
  }

  #checkFinished(): void {
    if (this.#state !== 'DLSTATUS_DOWNLOADING' || !this.isComplete) return
    this.#setState('DLSTATUS_SEEDING')
    this.#finishedAtMs = this.#clock.monotonic()
    // Seeding reads pieces from disk: the buffers kept for downloading go.
    this.#spare = []
    void this.saveResumeData()
    for (const peer of [...this.#peers]) {
      this.#updateInterest(peer)
      this.#maybeDisconnectSeed(peer)
    }
    this.events.emit('finished', undefined)
    this.#checkSeedingPolicy()
  }

  // ---- uploading

  #onInterested(peer: Peer): void {
    if (!peer.wire.amChoking) return
    if (this.#unchokedCount() < this.#uploadSlots) peer.wire.unchoke()
  }

  #unchokedCount(): number {
    let n = 0
    for (const p of this.#peers) if (p.active && !p.wire.amChoking && !p.optimistic) n++
    return n
  }

  #fillUploadSlots(): void {
    for (const peer of this.#peers) {
      if (this.#unchokedCount() >= this.#uploadSlots) return
      if (peer.active && peer.wire.peerInterested && peer.wire.amChoking && !peer.wire.isClosed) {
        peer.wire.unchoke()
      }
    }
  }

  #rechoke(): void {
    if (!this.#ready()) return
    this.#rechokes++
    const optimisticEvery = Math.max(
      1,
      Math.round(
        (this.#opts.tuning?.optimisticUnchokeIntervalMs ?? 30_000) /
          (this.#opts.tuning?.rechokeIntervalMs ?? 10_000),
      ),
    )
    const peers = [...this.#peers].filter((p) => p.active && !p.wire.isClosed)
    const decision = decideUnchokes({
      peers: peers.map((p) => ({
        id: p,
        interested: p.wire.peerInterested,
        downRate: p.down.ratePerSec,
        upRate: p.up.ratePerSec,
        uploadOnly: p.wire.peerIsSeed,
      })),
      slots: this.#uploadSlots,
      seeding: this.#state === 'DLSTATUS_SEEDING',
      optimistic: this.#optimistic,
      rotateOptimistic: this.#rechokes % optimisticEvery === 0,
      random: this.#random,
    })
    this.#optimistic = decision.optimistic
    for (const peer of peers) {
      peer.optimistic = peer === decision.optimistic
      if (decision.unchoke.has(peer)) peer.wire.unchoke()
      else peer.wire.choke()
    }
  }

  #serve(peer: Peer): void {
    const wire = peer.wire
    while (
      peer.reads < MAX_READS_PER_PEER &&
      peer.uploadQueue.length > 0 &&
      wire.writable &&
      !wire.isClosed
    ) {
      const req = peer.uploadQueue.shift()!
      if (!this.#canServe(req)) {
        wire.reject(req.index, req.begin, req.length)
        continue
      }
      peer.reads++
      this.#readPiece(req.index).then(
        (piece) => {
          peer.reads--
          if (wire.piece(req.index, req.begin, piece.subarray(req.begin, req.begin + req.length))) {
            this.#totalUp += req.length
            this.#up.add(req.length)
            peer.up.add(req.length)
          }
          this.#serve(peer)
        },
        (err: unknown) => {
          peer.reads--
          wire.reject(req.index, req.begin, req.length)
          if (!(err instanceof StorageError && err.code === 'CLOSED')) this.#fail(err)
        },
      )
    }
  }

  #canServe(req: BlockRequest): boolean {
    const torrent = this.#torrent
    if (torrent === undefined || this.#onDisk === undefined || this.#storage === undefined) return false
    if (req.index >= torrent.pieceCount || !this.#onDisk.has(req.index)) return false
    const size = Math.min(torrent.pieceLength, torrent.totalLength - req.index * torrent.pieceLength)
    return req.begin + req.length <= size
  }

  #readPiece(index: number): Promise<Buffer> {
    const cached = this.#readCache.get(index)
    if (cached !== undefined) {
      this.#readCache.delete(index)
      this.#readCache.set(index, cached)
      return cached
    }
    const read = this.#storage!.readPiece(index)
    this.#readCache.set(index, read)
    read.catch(() => this.#readCache.delete(index))
    const maxEntries = Math.max(2, Math.floor(READ_CACHE_BYTES / this.#torrent!.pieceLength))
    while (this.#readCache.size > maxEntries) {
      const oldest = this.#readCache.keys().next().value as number
      this.#readCache.delete(oldest)
    }
    return read
  }

  // ---- periodic work

  #tick(): void {
    if (this.#running === undefined) return
    this.#ticks++
    const pexEvery = Math.max(1, Math.round((this.#opts.tuning?.pexIntervalMs ?? 60_000) / TICK_MS))
    if (this.#ticks % pexEvery === 0) this.#sendPex()
    this.#connectMore()
    if (this.#ready()) {
      for (const peer of this.#peers) {
        if (peer.active && !peer.wire.isClosed) {
          if (this.#state === 'DLSTATUS_DOWNLOADING' && !peer.wire.amInterested) this.#updateInterest(peer)
          this.#fill(peer)
        }
      }
    }
    this.#checkSeedingPolicy()
  }

  /** Tells each peer that speaks ut_pex which peers joined and left since the last message (BEP 11). */
  #sendPex(): void {
    if (this.#torrent?.private === true) return
    const current = new Map<string, { host: string; port: number; flags: number }>()
    for (const peer of this.#peers) {
      if (!peer.active || peer.wire.isClosed) continue
      const address = peer.candidate?.address
      if (address === undefined || peer.candidate?.source === 'hidden') continue
      if (this.#deps.isHiddenPeer?.(address) === true) continue
      const flags =
        (peer.wire.peerIsSeed ? PEX_FLAGS.SEED : 0) |
        (peer.transport === 'utp' ? PEX_FLAGS.SUPPORTS_UTP : 0) |
        (peer.direction === 'L' ? PEX_FLAGS.REACHABLE : 0)
      current.set(formatAddress(address), { host: address.host, port: address.port, flags })
    }
    for (const peer of this.#peers) {
      if (!peer.active || peer.wire.isClosed) continue
      const own = peer.candidate === undefined ? undefined : formatAddress(peer.candidate.address)
      const added = [...current].filter(([key]) => key !== own && !peer.pexSent.has(key)).slice(0, 50)
      const dropped = [...peer.pexSent].filter((key) => !current.has(key)).slice(0, 50)
      if (added.length === 0 && dropped.length === 0) continue
      const droppedAddresses = dropped.map((key) => parseAddressKey(key))
      if (!peer.wire.sendPex({ added: added.map(([, p]) => p), dropped: droppedAddresses })) continue
      for (const [key] of added) peer.pexSent.add(key)
      for (const key of dropped) peer.pexSent.delete(key)
    }
  }

  /** Peer addresses known to this download and where each came from. */
  knownPeers(): Array<{ host: string; port: number; source: PeerSource }> {
    return [...this.#candidates.values()].map((c) => ({ ...c.address, source: c.source }))
  }

  #checkSeedingPolicy(): void {
    if (this.#state !== 'DLSTATUS_SEEDING' || this.#finishedAtMs === undefined) return
    const policy = this.#deps.seedingPolicy?.()
    if (policy === undefined) return
    const seededMinutes = (this.#clock.monotonic() - this.#finishedAtMs) / 60_000
    const size = this.#torrent?.totalLength ?? 0
    let done = false
    switch (policy.mode) {
      case 'never':
        done = true
        break
      case 'ratio':
        done = size > 0 && this.allTimeTotals.up / size >= policy.ratio
        break
      case 'time':
        done = seededMinutes >= policy.timeMinutes
        break
      case 'forever':
        done = false
    }
    if (!done) return
    this.#log.info('seeding policy met; stopping', { infoHash: this.infoHashHex, mode: policy.mode })
    this.stop().then(
      () => this.events.emit('seedingDone', undefined),
      (err: unknown) => this.#log.warn('stopping after seeding failed', { infoHash: this.infoHashHex, err }),
    )
  }

  // ---- errors and state

  /** Stops only this download with the error's text (disk full, permission denied, ...). */
  #fail(err: unknown): void {
    if (this.#state === 'DLSTATUS_STOPPED_ON_ERROR') return
    const text = describeError(err)
    this.#log.warn('download stopped on error', { infoHash: this.infoHashHex, error: text })
    this.#error = text
    this.#setState('DLSTATUS_STOPPED_ON_ERROR')
    this.stop().catch((stopErr: unknown) =>
      this.#log.warn('stopping a failed download failed too', { infoHash: this.infoHashHex, err: stopErr }),
    )
    this.events.emit('error', text)
  }

  #setState(state: DownloadState): void {
    if (this.#state === state) return
    this.#state = state
    this.events.emit('state', state)
  }

  #wantedAndDone(): { wanted: number; done: number } {
    const cached = this.#wantedCount
    if (cached !== undefined) return cached
    const torrent = this.#torrent
    const picker = this.#picker
    const onDisk = this.#onDisk
    if (torrent === undefined || picker === undefined || onDisk === undefined) return { wanted: 0, done: 0 }
    let wanted = 0
    let done = 0
    for (let p = 0; p < torrent.pieceCount; p++) {
      if (picker.piecePriority(p) === 0) continue
      const size = picker.pieceSize(p)
      wanted += size
      if (onDisk.has(p)) done += size
    }
    this.#wantedCount = { wanted, done }
    return this.#wantedCount
  }

  #fileProgress(offset: number, length: number): number {
    const torrent = this.#torrent!
    const onDisk = this.#onDisk
    if (onDisk === undefined) return 0
    if (length === 0) return 1
    const first = Math.floor(offset / torrent.pieceLength)
    const last = Math.floor((offset + length - 1) / torrent.pieceLength)
    let done = 0
    for (let p = first; p <= last; p++) {
      if (!onDisk.has(p)) continue
      const start = Math.max(offset, p * torrent.pieceLength)
      const end = Math.min(offset + length, (p + 1) * torrent.pieceLength)
      done += end - start
    }
    return done / length
  }

  #distributedCopies(picker: PiecePicker<Peer>): number {
    // The rarest piece's count, plus the share of pieces above it (libtorrent's distributed copies), in one pass.
    let min = Number.POSITIVE_INFINITY
    let atMin = 0
    for (let p = 0; p < picker.pieceCount; p++) {
      const a = picker.availability(p)
      if (a < min) {
        min = a
        atMin = 1
      } else if (a === min) atMin++
    }
    if (!Number.isFinite(min)) return 0
    return min + (picker.pieceCount - atMin) / picker.pieceCount
  }
}

/** File priorities for a selection: selected files 4, others 0; an empty selection means every file. */
export function prioritiesFor(torrent: TorrentInfo, selected: readonly number[]): FilePriority[] {
  if (selected.length === 0) return torrent.files.map(() => 4)
  const set = new Set(selected)
  return torrent.files.map((f) => (set.has(f.index) || f.padding ? 4 : 0) as Priority)
}

function describeError(err: unknown): string {
  if (err instanceof StorageError) {
    const file = typeof err.details.file === 'string' ? ` (${err.details.file})` : ''
    switch (err.code) {
      case 'DISK_FULL':
        return `No space left on device${file}`
      case 'PERMISSION_DENIED':
        return `Permission denied${file}`
      default: {
        const cause = err.details.cause
        return cause === undefined ? `${err.message}${file}` : errorMessage(cause)
      }
    }
  }
  return errorMessage(err)
}

/** A client name from an Azureus-style peer id (`-TR3000-…`), or an empty string. */
function clientFromPeerId(id: Buffer | undefined): string {
  if (id === undefined || id[0] !== 0x2d || id[7] !== 0x2d) return ''
  return id.subarray(1, 7).toString('latin1')
}

/** The address of a `host:port` or `[v6]:port` key. */
function parseAddressKey(key: string): { host: string; port: number } {
  const at = key.lastIndexOf(':')
  const host = key.slice(0, at)
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(key.slice(at + 1)) }
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size
  } catch {
    return -1
  }
}

async function exists(file: string): Promise<boolean> {
  return (await fileSize(file)) >= 0
}
