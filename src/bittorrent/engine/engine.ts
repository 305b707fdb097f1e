import { randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { access, mkdir } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import type { Duplex } from 'node:stream'
import {
  type Clock,
  errorMessage,
  type Logger,
  type Service,
  TypedEmitter,
  toHex,
} from '../../common/index.js'
import type { TriblerConfig } from '../../config/index.js'
import type { TunnelCommunity } from '../../ipv8/index.js'
import {
  MagnetError,
  type MagnetLink,
  MetainfoError,
  parseMagnet,
  parseTorrent,
  type TorrentInfo,
} from '../../metainfo/index.js'
import { type DatagramSocket, type SocketAddress, udpTransport } from '../../net/index.js'
import { defaultDownloadDir, type PortRegistry, type SessionEvents } from '../../session/index.js'
import type { Store } from '../../store/index.js'
import {
  type BandwidthChannel,
  BandwidthManager,
  isThrottled,
  type ThrottledDuplex,
  throttle,
} from '../bandwidth/index.js'
import { DhtNode, fileDhtStateStore } from '../dht/index.js'
import {
  CLIENT_NAME,
  Download,
  type DownloadTuning,
  type PeerConnection,
  type PeerConnector,
  type PeerEncryption,
  type SeedingPolicy,
} from '../download/index.js'
import { bindLsdSocket, LocalServiceDiscovery, type LsdSocket } from '../lsd/index.js'
import {
  acceptConnection,
  type EncryptionPolicy,
  MseError,
  type MseErrorCode,
  openOutgoing,
  req2Hash,
} from '../mse/index.js'
import { PeerWire, pooledReads } from '../peer-wire/index.js'
import { HttpTrackerClient, TrackerManager, UdpTrackerClient } from '../tracker/index.js'
import { UtpSocket } from '../utp/index.js'
import { type AnonymousTransport, AnonymousTransports } from './anonymous.js'
import { DialPolicy } from './dial-policy.js'
import { HiddenSwarm, hiddenServices } from './hidden.js'
import { type DownloadRecord, DownloadTable, ENGINE_MIGRATIONS } from './persistence.js'
import {
  type AddDownloadOptions,
  type AddDownloadResult,
  DOWNLOAD_MANAGER_SERVICE,
  type DownloadEvents,
  type DownloadHandle,
  type DownloadManager,
  type DownloadStatus,
  EngineError,
  type FileStatus,
  PEER_ID_PREFIX,
  type PeerStatus,
  type RateLimits,
  type TrackerStatusEntry,
} from './types.js'

const DHT_REANNOUNCE_MS = 15 * 60_000
const DHT_FIRST_LOOKUP_DELAY_MS = 1000
const DHT_RETRY_MS = 5000
/** How long a swarm probe waits, after the metadata, for peers that have not yet said which pieces they have. */
const PROBE_BITFIELD_GRACE_MS = 1000
/**
 * Incoming connections that have not yet named a torrent of ours, at most. Each may wait out the 20 s handshake
 * timeout, so without a bound anyone who can reach the port could hold open sockets until the process runs out of
 * file descriptors; further ones are closed at once until some finish.
 */
export const MAX_PENDING_INCOMING = 100
/** Peers of one torrent remembered as speaking plain BitTorrent only (dialled without MSE), at most. */
const MAX_PLAINTEXT_PEERS = 1000
/**
 * How an MSE handshake we start fails when the peer does not speak MSE: it closes on our Diffie-Hellman bytes,
 * waits for a plain handshake, or answers with one. Such peers get one more dial in plain BitTorrent.
 */
const NO_MSE_FAILURES: ReadonlySet<MseErrorCode> = new Set(['CLOSED', 'TIMEOUT', 'SYNC_NOT_FOUND'])

/** What the engine takes from the session (a subset of its `ServiceDeps`). */
export interface EngineDeps {
  readonly config: TriblerConfig
  readonly store: Store
  readonly events: TypedEmitter<SessionEvents>
  readonly clock: Clock
  readonly logger: (namespace: string) => Logger
  readonly publicNetwork: boolean
  readonly paths: { readonly root: string; readonly resume: string }
  readonly ports?: PortRegistry
}

/** Engine options for embedding and tests; the settings give every default. */
export interface EngineOptions {
  /** Address to listen on (default `0.0.0.0`). */
  readonly listenHost?: string
  /** Listen port; default `libtorrent.port` (-1 or unset picks a free one). */
  readonly port?: number
  /** Transports to use; default TCP on and uTP by `libtorrent.utp`. */
  readonly tcp?: boolean
  readonly utp?: boolean
  /** DHT bootstrap nodes (default: the public routers with the public network, none without). */
  readonly dhtBootstrap?: ReadonlyArray<string | SocketAddress>
  /** Per-download tunables. */
  readonly tuning?: DownloadTuning
  /** Default download folder when `download_defaults.saveas` is not set. */
  readonly defaultDownloadDir?: string
  /**
   * The tunnel community that carries downloads with hops > 0 (see `anonymous.ts`); without one (IPv8 or the
   * tunnel community off) such downloads are refused.
   */
  readonly tunnels?: () => TunnelCommunity | undefined
  /**
   * Message stream encryption of peer connections, both directions (libtorrent's `out_enc_policy` and
   * `in_enc_policy`). `enabled` (default) dials with MSE, lets the peer choose an RC4 or a plaintext payload, and
   * dials plain BitTorrent once more when the peer does not speak MSE; incoming peers may use either. `forced`
   * speaks MSE only; `disabled` plain BitTorrent only.
   */
  readonly encryption?: EncryptionPolicy
}

/** A Download with its discovery (trackers, DHT) and its stored record. */
class EngineDownload implements DownloadHandle {
  readonly infoHash: string
  record: DownloadRecord
  download: Download
  trackers: TrackerManager | undefined
  dhtPeers = 0
  pexPeers = 0
  lsdPeers = 0
  readonly #engine: BitTorrentEngine
  #lookup: AbortController | undefined
  #dhtTimer: ReturnType<typeof setTimeout> | undefined
  readonly #extraTrackers: string[]
  /** Whether trackers, the DHT and LSD are looking for peers (between start and stop of discovery). */
  #discovering = false
  /** Set while an anonymous download waits for its first circuit (state `DLSTATUS_CIRCUITS`). */
  #circuitWait: AbortController | undefined
  #starting: Promise<void> | undefined
  /** An anonymous download's part in the hidden swarm of its info hash, while it runs. */
  hidden: HiddenSwarm | undefined
  /**
   * The download's own rate limits, which every connection of it passes through besides the session's channels
   * (libtorrent's per-torrent bandwidth channels).
   */
  readonly channels: {
    readonly read: readonly BandwidthChannel[]
    readonly write: readonly BandwidthChannel[]
  }
  readonly #down: BandwidthChannel
  readonly #up: BandwidthChannel

  constructor(
    engine: BitTorrentEngine,
    record: DownloadRecord,
    download: Download,
    trackers: string[],
    channels: { down: BandwidthChannel; up: BandwidthChannel },
  ) {
    this.#engine = engine
    this.infoHash = record.infoHash
    this.record = record
    this.download = download
    this.#extraTrackers = trackers
    this.#down = channels.down
    this.#up = channels.up
    this.channels = { read: [channels.down], write: [channels.up] }
  }

  get torrent(): TorrentInfo | undefined {
    return this.download.torrent
  }

  /** Tracker tiers: the torrent's, then a magnet's `tr` ones. */
  trackerTiers(): string[][] {
    const tiers = (this.torrent?.trackers ?? []).map((t) => [...t])
    for (const url of this.#extraTrackers) if (!tiers.some((t) => t.includes(url))) tiers.push([url])
    return tiers
  }

  /**
   * What adding the same infohash again brings: trackers it did not have (tracker announces restart with them) and
   * peers to dial. Nothing else of the download changes.
   */
  merge(trackers: readonly string[], peers: readonly SocketAddress[]): void {
    const known = new Set(this.trackerTiers().flat())
    const added = trackers.filter((url) => !known.has(url))
    if (added.length > 0) {
      this.#extraTrackers.push(...new Set(added))
      if (this.#discovering && !this.hiddenOnly) {
        void this.trackers?.stop()
        this.trackers = undefined
        this.#startTrackers()
      }
    }
    if (peers.length > 0) this.download.addPeers(peers, 'manual')
  }

  status(): DownloadStatus {
    const base = this.download.status()
    const trackers: TrackerStatusEntry[] = (this.trackers?.status ?? []).map((t) => ({
      url: t.url,
      peers: t.peers,
      status: t.status,
    }))
    const isPrivate = this.torrent?.private === true
    const direct = this.record.hops === 0
    const dhtOn = this.#engine.dhtEnabled && !isPrivate
    trackers.push(
      { url: '[DHT]', peers: this.dhtPeers, status: dhtOn ? 'Working' : 'Disabled' },
      { url: '[PeX]', peers: this.pexPeers, status: isPrivate ? 'Disabled' : 'Working' },
      {
        url: '[LSD]',
        peers: this.lsdPeers,
        status: this.#engine.lsdEnabled && !isPrivate && direct ? 'Working' : 'Disabled',
      },
    )
    return {
      ...base,
      ...(this.#waitingForCircuits(base.state) && { state: 'DLSTATUS_CIRCUITS' as const }),
      trackers,
      hops: this.record.hops,
      safeSeeding: this.record.safeSeeding,
      destination: this.record.destination,
      timeAdded: this.record.timeAdded,
      rateLimits: {
        downloadBytesPerSec: this.record.downloadLimitBytesPerSec,
        uploadBytesPerSec: this.record.uploadLimitBytesPerSec,
      },
    }
  }

  peers(): readonly PeerStatus[] {
    return this.download.peers()
  }

  files(): readonly FileStatus[] {
    return this.download.files()
  }

  pieces(): Uint8Array {
    return this.download.pieces()
  }

  torrentFile(): Uint8Array | undefined {
    return this.record.torrent ?? undefined
  }

  async resume(): Promise<void> {
    this.#engine.update(this, { userStopped: false })
    await this.startSwarm()
  }

  async stop(): Promise<void> {
    this.#engine.update(this, { userStopped: true })
    await this.stopSwarm()
  }

  async recheck(): Promise<void> {
    const running = this.download.isRunning
    await this.download.recheck()
    if (running) this.#startDiscovery()
  }

  async setSelectedFiles(indices: readonly number[]): Promise<void> {
    const torrent = this.torrent
    if (torrent === undefined) {
      for (const i of indices) if (!Number.isInteger(i) || i < 0) throw new RangeError(`bad file index ${i}`)
      this.#engine.update(this, { selectedFiles: [...indices] })
      return
    }
    await this.download.setSelectedFiles(indices)
    this.#engine.update(this, { selectedFiles: [...indices] })
  }

  setRateLimits(limits: Partial<RateLimits>): void {
    const down = checkLimit(limits.downloadBytesPerSec, this.record.downloadLimitBytesPerSec)
    const up = checkLimit(limits.uploadBytesPerSec, this.record.uploadLimitBytesPerSec)
    this.#engine.update(this, { downloadLimitBytesPerSec: down, uploadLimitBytesPerSec: up })
    this.#down.setRate(down)
    this.#up.setRate(up)
  }

  async startSwarm(): Promise<void> {
    if (this.record.hops > 0) {
      const anonymous = this.#engine.anonymous(this.record.hops)
      if (!anonymous.ready) {
        this.#awaitCircuits(anonymous)
        // The data is checked meanwhile, so the progress is true while circuits are built; no peer is met before.
        if (this.download.torrent !== undefined) await this.#startDownload()
        return
      }
    }
    await this.#startDownload()
    if (this.download.isRunning) this.#startDiscovery()
  }

  /** Starts the download once: a second caller waits for the data check the first one began. */
  #startDownload(): Promise<void> {
    this.#starting ??= this.download.start().finally(() => {
      this.#starting = undefined
    })
    return this.#starting
  }

  async stopSwarm(): Promise<void> {
    this.#circuitWait?.abort()
    this.#circuitWait = undefined
    this.#stopDiscovery()
    const hidden = this.hidden
    this.hidden = undefined
    await hidden?.close()
    await this.download.stop()
  }

  /**
   * Whether the download may meet only hidden-service peers: an anonymous download with safe seeding once it has
   * everything, as it then seeds through introduction points only, never through exits.
   */
  get hiddenOnly(): boolean {
    return this.record.safeSeeding && this.record.hops > 0 && this.download.isComplete
  }

  /**
   * Joins or updates the hidden swarm after a state change: an anonymous download looks hidden seeders up while
   * it downloads and offers itself as a hidden seeder once it seeds. With safe seeding a finished one leaves the
   * exit side of the swarm: no tracker or DHT announces, and its peers through exits are closed.
   */
  syncHidden(): void {
    if (this.record.hops === 0 || !this.#discovering) return
    this.hidden ??= this.#engine.hiddenSwarm(this)
    const hidden = this.hidden
    const state = this.download.state
    if (hidden === undefined) {
      // the tunnel community runs no hidden services: nothing to join
    } else if (state === 'DLSTATUS_SEEDING' && this.download.isComplete) {
      hidden.stopLookups()
      hidden.seed()
    } else if (state === 'DLSTATUS_DOWNLOADING' || state === 'DLSTATUS_METADATA') {
      hidden.unseed()
      hidden.startLookups()
    }
    if (this.hiddenOnly) {
      this.#stopExitDiscovery()
      const closed = this.download.disconnectPeers((address) => hidden?.has(address) === true)
      if (closed > 0) this.#engine.logHiddenOnly(this, closed)
    }
  }

  /** No circuit of the download's length is ready yet: it starts once one is (state `DLSTATUS_CIRCUITS`). */
  #awaitCircuits(anonymous: AnonymousTransport): void {
    if (this.#circuitWait !== undefined) return
    const wait = new AbortController()
    this.#circuitWait = wait
    this.#engine.events.emit('state', { infoHash: this.infoHash, state: 'DLSTATUS_CIRCUITS' })
    anonymous.whenReady(wait.signal).then(
      () => {
        if (this.#circuitWait !== wait) return
        this.#circuitWait = undefined
        void this.startSwarm().catch((err) => this.#engine.reportStartError(this, err))
      },
      () => undefined,
    )
  }

  #waitingForCircuits(state: DownloadStatus['state']): boolean {
    if (this.#circuitWait !== undefined) return true
    if (this.record.hops === 0 || (state !== 'DLSTATUS_DOWNLOADING' && state !== 'DLSTATUS_METADATA'))
      return false
    return !this.#engine.anonymousReady(this.record.hops)
  }

  onFinished(): void {
    if (!this.hiddenOnly) void this.trackers?.announce('completed')
  }

  #startTrackers(): void {
    const tiers = this.trackerTiers()
    if (tiers.length === 0) return
    const trackers = this.#engine.trackerManager(this, tiers)
    trackers.events.on('peers', ({ peers }) => this.download.addPeers(peers, 'tracker'))
    this.trackers = trackers
    void trackers.start()
  }

  #startDiscovery(): void {
    const engine = this.#engine
    this.#discovering = true
    this.syncHidden()
    // A finished anonymous download with safe seeding is found through its introduction points only.
    if (this.hiddenOnly) return
    if (this.trackers === undefined) this.#startTrackers()
    const isPrivate = this.torrent?.private === true
    // Anonymous downloads find peers through trackers and the DHT reached over circuits, PEX and added peers.
    if (!isPrivate && this.record.hops === 0) engine.lsdAdd(this.download.infoHash)
    if (engine.dhtEnabled && !isPrivate && this.#dhtTimer === undefined) {
      // Lookups that find nobody are retried soon (5 s, doubling), found swarms are re-announced every 15 minutes.
      let misses = 0
      const run = (): void => {
        void this.#dhtLookup().then((found) => {
          if (this.#dhtTimer === undefined) return
          misses = found ? 0 : misses + 1
          const delay = found
            ? DHT_REANNOUNCE_MS
            : Math.min(DHT_REANNOUNCE_MS, DHT_RETRY_MS * 2 ** (misses - 1))
          this.#dhtTimer = setTimeout(run, delay).unref()
        })
      }
      this.#dhtTimer = setTimeout(run, DHT_FIRST_LOOKUP_DELAY_MS).unref()
    }
  }

  #stopDiscovery(): void {
    this.#discovering = false
    this.#stopExitDiscovery()
    this.#engine.lsdRemove(this.download.infoHash)
  }

  /** Stops the tracker announces and DHT lookups (and so their announces through exits). */
  #stopExitDiscovery(): void {
    if (this.#dhtTimer !== undefined) clearTimeout(this.#dhtTimer)
    this.#dhtTimer = undefined
    this.#lookup?.abort()
    this.#lookup = undefined
    const trackers = this.trackers
    this.trackers = undefined
    void trackers?.stop()
  }

  /** One DHT announce (a get_peers lookup first); true when it found other peers. */
  async #dhtLookup(): Promise<boolean> {
    const lookup = new AbortController()
    this.#lookup = lookup
    let found = false
    try {
      // Inside the try: without tunnels this throws, and a rejection here would be unhandled.
      const anonymous = this.record.hops > 0 ? this.#engine.anonymous(this.record.hops) : undefined
      const dht = anonymous === undefined ? this.#engine.dht : await anonymous.startedDht()
      if (dht === undefined) return false
      const port = anonymous?.announcePort ?? this.#engine.port
      const onPeers = (peers: SocketAddress[]): void => {
        const others = peers.filter((p) => p.port !== this.#engine.port || !this.#engine.isOwnAddress(p.host))
        if (others.length === 0) return
        found = true
        this.dhtPeers += others.length
        this.download.addPeers(others, 'dht')
      }
      await dht.announce(this.download.infoHash, port, { signal: lookup.signal, onPeers })
    } catch {
      // Lookups fail when the table is empty or the engine stops; the next round tries again.
    }
    return found
  }
}

/**
 * The BitTorrent engine of the core: the {@link DownloadManager} the REST layer, CLI and watch folder use. One
 * listen port carries TCP peers and, over one UDP socket, uTP peers, the DHT and UDP trackers. Incoming peers are
 * routed to their download by info hash. Downloads, their choices and stop states are kept in the store, resume
 * data under the state directory, so a restart (or a crash) resumes where it was.
 *
 * @example
 * ```ts
 * session.addService((deps) => new BitTorrentEngine(deps), { readableState: 'Starting libtorrent...' })
 * const { infoHash } = await engine.add({ source: { kind: 'torrent', torrent: bytes } })
 * engine.get(infoHash)?.status()
 * ```
 */
export class BitTorrentEngine implements DownloadManager, Service {
  readonly name = DOWNLOAD_MANAGER_SERVICE
  readonly events = new TypedEmitter<DownloadEvents>()
  /** Our peer id for this run. */
  readonly peerId: Buffer
  readonly #deps: EngineDeps
  readonly #opts: EngineOptions
  readonly #log: Logger
  readonly #table: DownloadTable
  readonly #downloads = new Map<string, EngineDownload>()
  #running = false
  #server: net.Server | undefined
  #udp: DatagramSocket | undefined
  #utp: UtpSocket | undefined
  #dht: DhtNode | undefined
  #lsd: LocalServiceDiscovery | undefined
  #lsdSocket: LsdSocket | undefined
  #http: HttpTrackerClient | undefined
  #udpTracker: UdpTrackerClient | undefined
  #port = 0
  #utpEnabled = false
  readonly #incoming = new Set<PeerWire>()
  /** Incoming connections still in their encryption handshake. */
  readonly #handshaking = new Set<Duplex>()
  readonly #bandwidth: BandwidthManager
  readonly #downChannel: BandwidthChannel
  readonly #upChannel: BandwidthChannel
  #offConfig: (() => void) | undefined
  readonly #anonymous: AnonymousTransports
  #tcpDials = 0
  readonly #dialPolicy: DialPolicy
  readonly #hopChanges = new Map<string, Promise<boolean>>()

  constructor(deps: EngineDeps, opts: EngineOptions = {}) {
    this.#deps = deps
    this.#opts = opts
    this.#log = deps.logger('bittorrent:engine')
    this.peerId = Buffer.concat([Buffer.from(PEER_ID_PREFIX, 'latin1'), randomBytes(12)])
    deps.store.register(ENGINE_MIGRATIONS)
    this.#table = new DownloadTable(() => deps.store.db, deps.paths.resume)
    this.#bandwidth = new BandwidthManager({ clock: deps.clock })
    this.#downChannel = this.#bandwidth.channel(0)
    this.#upChannel = this.#bandwidth.channel(0)
    this.#dialPolicy = new DialPolicy({
      clock: deps.clock,
      transports: () => ({ tcp: this.#tcpEnabled, utp: this.#utpEnabled && this.#utp !== undefined }),
    })
    this.#anonymous = new AnonymousTransports({
      tunnels: opts.tunnels ?? (() => undefined),
      clock: deps.clock,
      logger: deps.logger('bittorrent:anonymous'),
      wrap: (stream) => this.#throttled(stream),
      onIncoming: (stream, address, transport) => this.#onIncoming(stream, address, 'utp', transport),
      dht: () =>
        this.#dht === undefined
          ? undefined
          : {
              publicNetwork: deps.publicNetwork,
              ...(opts.dhtBootstrap !== undefined && { bootstrap: opts.dhtBootstrap }),
            },
    })
  }

  /** Whether `libtorrent.enabled` is on. */
  get enabled(): boolean {
    return this.#deps.config.getBoolean('libtorrent', 'enabled')
  }

  /** The listen port (TCP and UDP), once started. */
  get port(): number {
    return this.#port
  }

  get dht(): DhtNode | undefined {
    return this.#dht
  }

  /**
   * What left through the direct (non-anonymous) stack: TCP dials and UDP datagrams of the listen socket. Downloads
   * with hops > 0 never add to it.
   */
  directTraffic(): { readonly tcpDials: number; readonly udpPacketsSent: number } {
    return { tcpDials: this.#tcpDials, udpPacketsSent: this.#udp?.stats.packetsSent ?? 0 }
  }

  get dhtEnabled(): boolean {
    return this.#dht !== undefined
  }

  /** Whether `host` is the address we listen on (so a peer list naming it on our port names us). */
  isOwnAddress(host: string): boolean {
    const listen = this.#opts.listenHost ?? '0.0.0.0'
    return host === listen || listen === '0.0.0.0' || listen === '::'
  }

  get lsdEnabled(): boolean {
    return this.#lsd !== undefined
  }

  // ---- lifecycle

  async start(): Promise<void> {
    if (this.#running || !this.enabled) return
    await this.#listen()
    this.#applyRateLimits()
    this.#offConfig = this.#deps.config.events.on('changed', (changes) => {
      if (
        changes.some((c) => c.section === 'libtorrent' && c.key.startsWith('max_') && c.key.endsWith('_rate'))
      ) {
        this.#applyRateLimits()
      }
    })
    this.#running = true
    for (const record of this.#table.all()) {
      try {
        const handle = this.#open(record)
        if (!record.userStopped) void handle.startSwarm().catch((err) => this.#reportError(handle, err))
      } catch (err) {
        this.#log.warn('a stored download could not be loaded', { infoHash: record.infoHash, err })
      }
    }
  }

  async stop(): Promise<void> {
    if (!this.#running) return
    this.#running = false
    this.#offConfig?.()
    this.#offConfig = undefined
    await Promise.allSettled([...this.#downloads.values()].map((h) => h.stopSwarm()))
    for (const wire of this.#incoming) wire.destroy()
    this.#incoming.clear()
    for (const stream of this.#handshaking) stream.destroy()
    this.#handshaking.clear()
    await this.#anonymous.close()
    await this.#lsd?.stop()
    await this.#lsdSocket?.close()
    await this.#dht?.stop()
    this.#udpTracker?.close()
    await this.#utp?.close()
    await this.#udp?.close()
    await new Promise<void>((resolve) => {
      if (this.#server === undefined) resolve()
      else this.#server.close(() => resolve())
    })
    this.#server = undefined
    this.#bandwidth.stop()
  }

  // ---- DownloadManager

  async add(options: AddDownloadOptions): Promise<AddDownloadResult> {
    this.#requireRunning()
    const hops = options.hops ?? 0
    this.#anonymous.check(hops)
    let torrent: TorrentInfo | undefined
    let magnet: MagnetLink | undefined
    let torrentBytes: Buffer | null = null
    if (options.source.kind === 'torrent') {
      try {
        torrent = parseTorrent(options.source.torrent)
      } catch (err) {
        if (err instanceof MetainfoError) {
          throw new EngineError('INVALID_TORRENT', { cause: err }, `Invalid torrent file: ${err.message}`)
        }
        throw err
      }
      torrentBytes = Buffer.from(options.source.torrent)
    } else {
      try {
        magnet = parseMagnet(options.source.magnet)
      } catch (err) {
        if (err instanceof MagnetError) {
          throw new EngineError('INVALID_MAGNET', { cause: err }, `Invalid magnet link: ${err.message}`)
        }
        throw err
      }
    }
    const infoHash = torrent?.infoHashHex ?? magnet!.infoHashHex
    const existing = this.#downloads.get(infoHash)
    if (existing !== undefined) {
      existing.merge(torrent?.trackers.flat() ?? magnet?.trackers ?? [], magnet?.peers ?? [])
      return { infoHash, added: false }
    }

    const destination = path.resolve(options.destination ?? this.#defaultDestination())
    try {
      await mkdir(destination, { recursive: true })
      await access(destination, fsConstants.W_OK)
    } catch (err) {
      throw new EngineError(
        'DESTINATION_NOT_WRITABLE',
        { destination, cause: err },
        `Cannot write to ${destination}: ${errorMessage(err)}`,
      )
    }
    const downloadLimit = checkLimit(options.rateLimits?.downloadBytesPerSec, 0)
    const uploadLimit = checkLimit(options.rateLimits?.uploadBytesPerSec, 0)
    const selected = [...(options.selectedFiles ?? [])]
    if (torrent !== undefined) {
      for (const i of selected) {
        if (!Number.isInteger(i) || i < 0 || i >= torrent.files.length) {
          throw new RangeError(`file index ${i} is out of range (0..${torrent.files.length - 1})`)
        }
      }
    }
    const record: DownloadRecord = {
      infoHash,
      torrent: torrentBytes,
      magnet: options.source.kind === 'magnet' ? options.source.magnet : null,
      destination,
      hops,
      safeSeeding: options.safeSeeding ?? false,
      selectedFiles: selected,
      userStopped: options.stopped === true,
      timeAdded: Math.floor(this.#deps.clock.now() / 1000),
      downloadLimitBytesPerSec: downloadLimit,
      uploadLimitBytesPerSec: uploadLimit,
    }
    this.#table.put(record)
    const handle = this.#open(record)
    if (magnet !== undefined) handle.download.addPeers(magnet.peers, 'manual')
    if (!record.userStopped) await handle.startSwarm()
    return { infoHash, added: true }
  }

  /**
   * Re-adds a download with another hop count (Tribler's `update_download_hops`), keeping its data, destination,
   * selection, limits and safe seeding. Changes of one download run one after another. When the new one cannot
   * be added, the download is put back as it was and the error says so.
   */
  async setHops(infoHash: string, hops: number): Promise<boolean> {
    const key = infoHash.toLowerCase()
    const before = this.#hopChanges.get(key) ?? Promise.resolve(false)
    const change = before.catch(() => false).then(() => this.#changeHops(key, hops))
    this.#hopChanges.set(key, change)
    try {
      return await change
    } finally {
      if (this.#hopChanges.get(key) === change) this.#hopChanges.delete(key)
    }
  }

  async #changeHops(infoHash: string, hops: number): Promise<boolean> {
    if (!Number.isInteger(hops) || hops < 0 || hops > 3) throw new RangeError('hops must be 0, 1, 2 or 3')
    const handle = this.#downloads.get(infoHash)
    if (handle === undefined) return false
    if (handle.record.hops === hops) return true
    this.#anonymous.check(hops)
    const record = handle.record
    const torrent = handle.torrentFile()
    const base: AddDownloadOptions = {
      source:
        torrent !== undefined
          ? { kind: 'torrent', torrent }
          : { kind: 'magnet', magnet: record.magnet ?? `magnet:?xt=urn:btih:${record.infoHash}` },
      destination: record.destination,
      safeSeeding: record.safeSeeding,
      hops: record.hops,
      stopped: record.userStopped,
      rateLimits: {
        downloadBytesPerSec: record.downloadLimitBytesPerSec,
        uploadBytesPerSec: record.uploadLimitBytesPerSec,
      },
      ...(record.selectedFiles.length > 0 && { selectedFiles: record.selectedFiles }),
    }
    await this.remove(infoHash, { removeData: false })
    try {
      await this.add({ ...base, hops })
    } catch (err) {
      const restored = await this.add(base).then(
        () => '',
        (again: unknown) => `; the download could not be put back either: ${errorMessage(again)}`,
      )
      throw new EngineError(
        err instanceof EngineError ? err.code : 'HOPS_NOT_CHANGED',
        { infoHash, hops, cause: err },
        `cannot change the hops: ${errorMessage(err)}${restored}`,
      )
    }
    return true
  }

  /**
   * Tribler's safe seeding of a download added without hops: once it seeds, it carries on at the default hop
   * count (at least 1), so it never seeds in the open. Without tunnels it stops instead.
   */
  #seedSafely(handle: EngineDownload): void {
    if (
      handle.record.hops !== 0 ||
      !handle.record.safeSeeding ||
      this.#downloads.get(handle.infoHash) !== handle
    )
      return
    const configured = this.#deps.config.getNumber('download_defaults', 'number_hops')
    const hops = Number.isInteger(configured) && configured >= 1 && configured <= 3 ? configured : 1
    this.setHops(handle.infoHash, hops).then(
      () =>
        this.#log.info('a finished download with safe seeding seeds through circuits', {
          infoHash: handle.infoHash,
          hops,
        }),
      (err: unknown) => {
        this.#log.warn('safe seeding needs circuits, so the finished download is stopped', {
          infoHash: handle.infoHash,
          err,
        })
        const current = this.#downloads.get(handle.infoHash)
        if (current === undefined || current.record.hops !== 0) return
        current.stop().catch(() => undefined)
      },
    )
  }

  get(infoHash: string): DownloadHandle | undefined {
    return this.#downloads.get(infoHash.toLowerCase())
  }

  list(): readonly DownloadHandle[] {
    return [...this.#downloads.values()]
  }

  async remove(infoHash: string, options: { readonly removeData: boolean }): Promise<boolean> {
    const handle = this.#downloads.get(infoHash.toLowerCase())
    if (handle === undefined) return false
    this.#downloads.delete(handle.infoHash)
    await handle.stopSwarm()
    this.#table.delete(handle.infoHash)
    if (options.removeData) {
      try {
        await handle.download.deleteFiles()
      } catch (err) {
        this.#log.warn('could not delete the files of a removed download', { infoHash, err })
      }
    }
    this.events.emit('removed', { infoHash: handle.infoHash })
    return true
  }

  async fetchMetadata(
    magnet: string,
    options: { readonly timeoutMs: number; readonly signal?: AbortSignal; readonly hops?: number },
  ): Promise<Uint8Array> {
    this.#requireRunning()
    const hops = options.hops ?? this.#defaultMetadataHops()
    this.#anonymous.check(hops)
    let link: MagnetLink
    try {
      link = parseMagnet(magnet)
    } catch (err) {
      throw new EngineError('INVALID_MAGNET', { cause: err }, `Invalid magnet link: ${errorMessage(err)}`)
    }
    const known = this.#downloads.get(link.infoHashHex)
    const file = known?.torrentFile()
    if (file !== undefined) return file
    return this.#withMetadata(link, magnet, hops, options, async (probe, info) =>
      torrentFileOf(info, probe.trackerTiers()),
    )
  }

  async probeSwarm(
    infoHash: string,
    options: { readonly timeoutMs: number; readonly signal?: AbortSignal },
  ): Promise<{ readonly seeders: number; readonly leechers: number }> {
    this.#requireRunning()
    const hex = infoHash.toLowerCase()
    if (!/^[0-9a-f]{40}$/.test(hex)) {
      throw new EngineError('INVALID_MAGNET', { infoHash }, 'An infohash is 40 hexadecimal digits')
    }
    const running = this.#downloads.get(hex)
    if (running !== undefined) return countPeers(running.download.peers())
    if (this.#dht === undefined) {
      throw new EngineError('DHT_DISABLED', { infoHash: hex }, 'The DHT is not enabled')
    }
    const magnet = `magnet:?xt=urn:btih:${hex}`
    const link = parseMagnet(magnet)
    return this.#withMetadata(link, magnet, 0, options, async (probe, _info, signal) => {
      // Peers send their bitfield (or have_all) right after the handshake; one that has not yet is given a moment.
      const deadline = this.#deps.clock.now() + PROBE_BITFIELD_GRACE_MS
      while (!signal.aborted && this.#deps.clock.now() < deadline) {
        const peers = probe.download.peers()
        if (peers.length > 0 && peers.every((peer) => peer.seed)) break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      return countPeers(probe.download.peers())
    })
  }

  /**
   * Runs a metadata-only download of `link` until the metadata comes, then `then` with it (still connected to
   * the peers). Rejects with `METADATA_TIMEOUT` after `options.timeoutMs`.
   */
  async #withMetadata<T>(
    link: MagnetLink,
    magnet: string,
    hops: number,
    options: { readonly timeoutMs: number; readonly signal?: AbortSignal },
    then: (probe: EngineDownload, info: TorrentInfo, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    // Through circuits only when anonymous, as the download it previews would be.
    const anonymous = hops > 0 ? this.#anonymous.get(hops) : undefined
    const download = new Download(
      {
        connect: this.encryptingConnector(link.infoHash, anonymous?.connector ?? this.connector),
        peerId: anonymous?.peerId ?? this.peerId,
        ...(anonymous === undefined && { listenPort: this.#port }),
        clock: this.#deps.clock,
      },
      { infoHash: link.infoHash, downloadDir: this.#defaultDestination(), metadataOnly: true },
    )
    const record: DownloadRecord = {
      infoHash: link.infoHashHex,
      torrent: null,
      magnet,
      destination: '',
      hops,
      safeSeeding: false,
      selectedFiles: [],
      userStopped: false,
      timeAdded: 0,
      downloadLimitBytesPerSec: 0,
      uploadLimitBytesPerSec: 0,
    }
    const probe = new EngineDownload(this, record, download, [...link.trackers], {
      down: this.#bandwidth.channel(0),
      up: this.#bandwidth.channel(0),
    })
    const signals = [AbortSignal.timeout(options.timeoutMs)]
    if (options.signal !== undefined) signals.push(options.signal)
    const signal = AbortSignal.any(signals)
    try {
      const metadata = new Promise<TorrentInfo>((resolve, reject) => {
        download.events.once('metadata', resolve)
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      })
      download.addPeers(link.peers, 'manual')
      await probe.startSwarm()
      const info = await metadata
      return await then(probe, info, signal)
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      throw new EngineError(
        'METADATA_TIMEOUT',
        { timeoutMs: options.timeoutMs },
        'Timed out fetching the metadata',
      )
    } finally {
      await probe.stopSwarm()
    }
  }

  /**
   * Adds peers to dial for a download (addresses from outside the swarm's own discovery, e.g. a user's
   * `host:port`). Returns false for an unknown info hash.
   */
  addPeers(infoHash: string, peers: readonly SocketAddress[]): boolean {
    const handle = this.#downloads.get(infoHash.toLowerCase())
    if (handle === undefined) return false
    handle.download.addPeers(peers, 'manual')
    return true
  }

  /** The download behind a handle, for tests and tools that need more than the REST view. */
  download(infoHash: string): Download | undefined {
    return this.#downloads.get(infoHash.toLowerCase())?.download
  }

  rateLimits(): { readonly download: number; readonly upload: number } {
    const config = this.#deps.config
    return {
      download: Math.max(0, config.getNumber('libtorrent', 'max_download_rate')),
      upload: Math.max(0, config.getNumber('libtorrent', 'max_upload_rate')),
    }
  }

  // ---- used by downloads

  /** The anonymous transport of downloads with `hops` hops (throws an `EngineError` without tunnels). */
  anonymous(hops: number): AnonymousTransport {
    return this.#anonymous.get(hops)
  }

  /**
   * The hidden swarm of an anonymous download, or undefined when the tunnel community does not run hidden
   * services.
   */
  hiddenSwarm(handle: EngineDownload): HiddenSwarm | undefined {
    const community = hiddenServices(this.#opts.tunnels?.())
    // A metadata probe (not among the downloads) dials through exits only: it does not join the hidden swarm.
    if (community === undefined || !this.#running || this.#downloads.get(handle.infoHash) !== handle)
      return undefined
    const hops = handle.record.hops
    const log = this.#deps.logger('bittorrent:hidden')
    return new HiddenSwarm(community, handle.download.infoHash, hops, {
      clock: this.#deps.clock,
      logger: log,
      wrap: (stream) => this.#throttled(stream),
      onSeeder: (address) => {
        if (this.#downloads.get(handle.infoHash) === handle) handle.download.addPeers([address], 'hidden')
      },
      onIncoming: (stream, address) => {
        if (this.#downloads.get(handle.infoHash) !== handle) {
          stream.destroy()
          return
        }
        this.#onIncoming(stream, address, 'utp', this.#anonymous.get(hops), handle.infoHash)
      },
    })
  }

  logHiddenOnly(handle: EngineDownload, closed: number): void {
    this.#log.debug('seeding as a hidden service only, closed the peers through exits', {
      infoHash: handle.infoHash,
      closed,
    })
  }

  /** Whether a circuit of `hops` hops is ready for anonymous downloads. */
  anonymousReady(hops: number): boolean {
    return this.#anonymous.all.some((t) => t.hops === hops && t.ready)
  }

  reportStartError(handle: EngineDownload, err: unknown): void {
    this.#reportError(handle, err)
  }

  /**
   * Dials a peer as libtorrent does: uTP first when both transports are on, TCP at once when the uTP dial fails or
   * gets no answer within 3 s, and TCP only from then on for a peer whose uTP failed (see
   * {@link DialPolicy}); either transport may be turned off.
   */
  readonly connector: PeerConnector = async (peer, { signal }) => {
    const { stream, transport } = await this.#dialPolicy.dial(
      peer,
      {
        tcp: (to, s) => {
          this.#tcpDials++
          return tcpConnect(to, s, outgoingAddress(this.#opts.listenHost, to.host))
        },
        utp: (to, s) => {
          const utp = this.#utp
          if (utp === undefined) return Promise.reject(new Error('uTP is not listening'))
          return utp.connect(to, { signal: s })
        },
      },
      { signal },
    )
    return { stream: this.#throttled(stream), transport } satisfies PeerConnection
  }

  /**
   * Dials peers of one torrent through `connect` with message stream encryption, as libtorrent's `enabled` outgoing
   * policy does: an MSE handshake offering both payload methods (the peer chooses, we do not prefer RC4), and when
   * it fails the way a peer without MSE makes it fail, one more dial in plain BitTorrent; such a peer is dialled
   * plain from then on.
   */
  encryptingConnector(infoHash: Uint8Array, connect: PeerConnector): PeerConnector {
    const policy = this.#opts.encryption ?? 'enabled'
    if (policy === 'disabled') return connect
    const plaintextPeers = new Set<string>()
    return async (peer, opts) => {
      const key = `${peer.host}:${peer.port}`
      if (plaintextPeers.has(key)) return connect(peer, opts)
      const raw = await connect(peer, opts)
      try {
        const out = await openOutgoing(raw.stream, {
          policy,
          infoHash,
          preferRc4: false,
          signal: opts.signal,
        })
        return {
          stream: out.stream,
          transport: raw.transport,
          encryption: out.encrypted ? out.method : 'none',
        }
      } catch (err) {
        const noMse = err instanceof MseError && NO_MSE_FAILURES.has(err.code)
        if (policy === 'forced' || opts.signal.aborted || !noMse) throw err
        this.#log.debug('peer does not speak MSE, dialling plain', { peer: key, err: errorMessage(err) })
        if (plaintextPeers.size >= MAX_PLAINTEXT_PEERS) plaintextPeers.clear()
        plaintextPeers.add(key)
        return connect(peer, opts)
      }
    }
  }

  trackerManager(handle: EngineDownload, tiers: string[][]): TrackerManager {
    const clients: { http?: HttpTrackerClient; udp?: UdpTrackerClient } = {}
    const anonymous = handle.record.hops > 0 ? this.#anonymous.get(handle.record.hops) : undefined
    if (anonymous !== undefined) {
      // UDP trackers through circuits only; HTTP trackers would need a TCP connection out of an exit.
      clients.udp = anonymous.udpTracker
    } else {
      if (this.#http !== undefined) clients.http = this.#http
      if (this.#udpTracker !== undefined) clients.udp = this.#udpTracker
    }
    return new TrackerManager(
      { clients, clock: this.#deps.clock },
      {
        tiers,
        infoHash: handle.download.infoHash,
        peerId: anonymous?.peerId ?? this.peerId,
        port: anonymous?.announcePort ?? this.#port,
        stats: () => {
          const status = handle.download.status()
          const size = status.size
          return {
            // This run's bytes, as libtorrent announces; the status shows the all-time totals.
            uploaded: handle.download.totals.up,
            downloaded: handle.download.totals.down,
            left: Math.max(
              0,
              Math.round(size * (1 - (status.state === 'DLSTATUS_METADATA' ? 0 : status.progress))),
            ),
          }
        },
      },
    )
  }

  lsdAdd(infoHash: Uint8Array): void {
    this.#lsd?.add(infoHash)
  }

  lsdRemove(infoHash: Uint8Array): void {
    this.#lsd?.remove(infoHash)
  }

  /** Saves a change of a download's stored record. */
  update(handle: EngineDownload, change: Partial<DownloadRecord>): void {
    handle.record = { ...handle.record, ...change }
    if (this.#downloads.get(handle.infoHash) === handle) this.#table.put(handle.record)
  }

  // ---- internals

  get #tcpEnabled(): boolean {
    return this.#opts.tcp ?? true
  }

  /** Paces a peer connection by the session's rate limits (chunks pass straight through while unlimited). */
  #throttled(stream: Duplex): ThrottledDuplex {
    return throttle(stream, { manager: this.#bandwidth, read: [this.#downChannel], write: [this.#upChannel] })
  }

  #applyRateLimits(): void {
    const limits = this.rateLimits()
    this.#downChannel.setRate(limits.download)
    this.#upChannel.setRate(limits.upload)
  }

  #requireRunning(): void {
    if (!this.#running) {
      throw new EngineError(
        'NOT_RUNNING',
        {},
        this.enabled ? 'The BitTorrent engine is not running' : 'BitTorrent is disabled (libtorrent.enabled)',
      )
    }
  }

  /** Tribler's default for metadata lookups: the default hops when anonymity is on and circuits can be made. */
  #defaultMetadataHops(): number {
    const config = this.#deps.config
    if (!config.getBoolean('download_defaults', 'anonymity_enabled')) return 0
    const hops = config.getNumber('download_defaults', 'number_hops')
    if (!Number.isInteger(hops) || hops <= 0 || hops > 3) return 0
    try {
      this.#anonymous.check(hops)
      return hops
    } catch {
      return 0
    }
  }

  #defaultDestination(): string {
    const saveas = this.#deps.config.get('download_defaults', 'saveas')
    if (typeof saveas === 'string' && saveas !== '') return saveas
    return this.#opts.defaultDownloadDir ?? defaultDownloadDir()
  }

  /** Per-download tunables: the options', with `libtorrent.max_connections_download` when it is set. */
  #tuning(): DownloadTuning {
    const max = this.#deps.config.getNumber('libtorrent', 'max_connections_download')
    return { ...(max > 0 ? { maxConnections: max } : {}), ...this.#opts.tuning }
  }

  #seedingPolicy(): SeedingPolicy {
    const config = this.#deps.config
    const mode = config.getString('download_defaults', 'seeding_mode')
    return {
      mode: mode === 'time' || mode === 'never' || mode === 'forever' ? mode : 'ratio',
      ratio: config.getNumber('download_defaults', 'seeding_ratio'),
      timeMinutes: config.getNumber('download_defaults', 'seeding_time'),
    }
  }

  /** Builds the download of a stored record and wires its events. */
  #open(record: DownloadRecord): EngineDownload {
    let torrent: TorrentInfo | undefined
    let magnet: MagnetLink | undefined
    if (record.torrent !== null) torrent = parseTorrent(record.torrent)
    else if (record.magnet !== null) magnet = parseMagnet(record.magnet)
    else throw new EngineError('INVALID_TORRENT', { infoHash: record.infoHash })
    const infoHash = torrent?.infoHash ?? magnet!.infoHash
    const resume = this.#table.readResume(record.infoHash)
    // A download with hops > 0 gets only the anonymous transport of its hop count: no TCP, no direct socket.
    // Bound late, so a download stored while the tunnel community is off loads and refuses to dial.
    const hops = record.hops
    let handle: EngineDownload | undefined
    const dial: PeerConnector =
      hops > 0
        ? (peer, opts) => {
            // Hidden seeders through their end-to-end circuits; everyone else through an exit, unless the
            // download seeds as a hidden service only.
            const hidden = handle?.hidden
            if (hidden?.has(peer) === true) return hidden.connect(peer, opts)
            // A stand-in address whose session is gone may name some unrelated host: never through an exit.
            if (hidden?.issued(peer) === true)
              return Promise.reject(
                new EngineError('ANON_NOT_SUPPORTED', { reason: 'the hidden session of this peer is gone' }),
              )
            if (handle?.hiddenOnly === true)
              return Promise.reject(
                new EngineError('ANON_NOT_SUPPORTED', { reason: 'seeding as a hidden service only' }),
              )
            return this.#anonymous.get(hops).connector(peer, opts)
          }
        : this.connector
    const connect = this.encryptingConnector(infoHash, async (peer, opts) => {
      const conn = await dial(peer, opts)
      // The raw connection is paced by the session's limits; the download's own come on top.
      if (handle !== undefined && isThrottled(conn.stream)) conn.stream.addChannels(handle.channels)
      return conn
    })
    const deps = {
      connect,
      ...(hops === 0 && { peerSpeaksUtp: (address: SocketAddress) => this.#dialPolicy.supportsUtp(address) }),
      ...(hops > 0 && {
        isHiddenPeer: (address: SocketAddress) => handle?.hidden?.has(address) === true,
        // Seeding as a hidden service only, it dials nobody through an exit (the connector refuses it too).
        mayDial: (address: SocketAddress) =>
          handle?.hiddenOnly !== true || handle.hidden?.has(address) === true,
      }),
      peerId: hops > 0 ? this.#anonymous.identity(hops).peerId : this.peerId,
      ...(hops === 0 && { listenPort: this.#port }),
      clock: this.#deps.clock,
      logger: this.#deps.logger('bittorrent:download'),
      seedingPolicy: () => this.#seedingPolicy(),
      // The all-time totals go with the resume data: periodically, on finishing and on stopping.
      saveResumeData: async (data: Buffer) => {
        this.#table.writeResume(record.infoHash, data)
        this.#table.writeTotals(record.infoHash, download.allTimeTotals)
      },
    }
    const download = new Download(deps, {
      infoHash,
      ...(torrent === undefined ? {} : { torrent }),
      ...(magnet?.name === undefined ? {} : { displayName: magnet.name }),
      downloadDir: record.destination,
      selectedFiles: record.selectedFiles,
      ...(resume === undefined ? {} : { resumeData: resume }),
      previousTotals: this.#table.readTotals(record.infoHash),
      tuning: this.#tuning(),
    })
    const created = new EngineDownload(this, record, download, [...(magnet?.trackers ?? [])], {
      down: this.#bandwidth.channel(record.downloadLimitBytesPerSec),
      up: this.#bandwidth.channel(record.uploadLimitBytesPerSec),
    })
    handle = created
    this.#downloads.set(record.infoHash, created)
    const hex = record.infoHash
    download.events.on('state', (state) => {
      created.syncHidden()
      if (state === 'DLSTATUS_SEEDING') this.#seedSafely(created)
      this.events.emit('state', { infoHash: hex, state })
    })
    download.events.on('metadata', (info) => {
      const file = torrentFileOf(info, handle.trackerTiers())
      this.update(handle, { torrent: Buffer.from(file) })
      if (handle.record.selectedFiles.length > 0) {
        void download.setSelectedFiles(handle.record.selectedFiles.filter((i) => i < info.files.length))
      }
      this.events.emit('metadata', { infoHash: hex, name: info.displayName })
    })
    download.events.on('finished', () => {
      const name = download.torrent?.displayName ?? hex
      handle.onFinished()
      this.events.emit('finished', { infoHash: hex, name })
      this.#deps.events.emit('torrent_finished', { infohash: hex, name })
    })
    download.events.on('error', (error) => {
      this.events.emit('error', { infoHash: hex, error })
      this.#deps.events.emit('torrent_error', { infohash: hex, error })
    })
    download.events.on('seedingDone', () => {
      this.update(handle, { userStopped: true })
      handle
        .stopSwarm()
        .catch((err: unknown) => this.#log.warn('stopping a seeded download failed', { infoHash: hex, err }))
    })
    return handle
  }

  #reportError(handle: EngineDownload, err: unknown): void {
    this.#log.warn('download failed to start', { infoHash: handle.infoHash, err })
  }

  async #listen(): Promise<void> {
    const config = this.#deps.config
    const host = this.#opts.listenHost ?? '0.0.0.0'
    const configured = this.#opts.port ?? config.getNumber('libtorrent', 'port')
    const wanted = Math.max(configured, 0)
    const useUtp = this.#opts.utp ?? config.getBoolean('libtorrent', 'utp')
    // TCP and UDP on the same number: a port free for TCP may be taken for UDP, so a picked port is retried.
    for (let attempt = 0; ; attempt++) {
      const server = net.createServer((socket) => this.#onTcp(socket))
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(wanted, host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      const port = (server.address() as net.AddressInfo).port
      try {
        this.#udp = await udpTransport.bind({ host, port })
        this.#server = server
        this.#port = port
        break
      } catch (err) {
        await new Promise<void>((resolve) => server.close(() => resolve()))
        if (wanted !== 0 || attempt >= 5) throw err
      }
    }
    this.#deps.ports?.set('libtorrent~port', this.#port)
    const udp = this.#udp!
    const utp = new UtpSocket({ socket: udp, clock: this.#deps.clock })
    this.#utp = utp
    if (useUtp) {
      utp.listen()
      utp.events.on('connection', (conn) =>
        this.#onIncoming(conn, { host: conn.remote.host, port: conn.remote.port }, 'utp'),
      )
    }
    this.#udpTracker = new UdpTrackerClient({ socket: udp }, { receive: 'external' })
    this.#http = new HttpTrackerClient()
    if (config.getBoolean('libtorrent', 'dht')) {
      const dht = new DhtNode(
        {
          socket: udp,
          clock: this.#deps.clock,
          store: fileDhtStateStore(path.join(this.#deps.paths.root, 'dht.json')),
        },
        {
          receive: 'external',
          publicNetwork: this.#deps.publicNetwork,
          ...(this.#opts.dhtBootstrap === undefined ? {} : { bootstrap: this.#opts.dhtBootstrap }),
        },
      )
      this.#dht = dht
      await dht.start()
      void dht.bootstrap().catch(() => undefined)
    }
    const dht = this.#dht
    const udpTracker = this.#udpTracker
    utp.onFallback((data, from) => {
      if (dht?.handleDatagram(data, from) === true) return
      udpTracker.handleDatagram(data, from)
    })
    if (this.#deps.publicNetwork) {
      try {
        this.#lsdSocket = await bindLsdSocket()
        const lsd = new LocalServiceDiscovery(
          { socket: this.#lsdSocket, clock: this.#deps.clock },
          { port: this.#port, publicNetwork: true },
        )
        lsd.events.on('peer', ({ infoHash, host, port }) => {
          const handle = this.#downloads.get(infoHash)
          if (handle === undefined) return
          handle.lsdPeers++
          handle.download.addPeers([{ host, port }], 'lsd')
        })
        await lsd.start()
        this.#lsd = lsd
      } catch (err) {
        this.#log.debug('local service discovery unavailable', { err })
      }
    }
    this.#utpEnabled = useUtp
  }

  #onTcp(socket: net.Socket): void {
    const host = socket.remoteAddress
    const port = socket.remotePort
    if (host === undefined || port === undefined || !this.#running) {
      socket.destroy()
      return
    }
    socket.setNoDelay(true)
    this.#onIncoming(socket, { host: normalizeHost(host), port }, 'tcp')
  }

  /**
   * An incoming peer: direct (`anonymous` undefined) or through circuits of one hop count; `hiddenFor` is the
   * info hash (hex) of the hidden swarm whose end-to-end circuit it came through, the only download it may reach.
   */
  #onIncoming(
    stream: Duplex,
    address: SocketAddress,
    transport: 'tcp' | 'utp',
    anonymous?: AnonymousTransport,
    hiddenFor?: string,
  ): void {
    if (transport === 'utp' && !this.#utpEnabled && anonymous === undefined) {
      stream.destroy()
      return
    }
    if (this.#handshaking.size + this.#incoming.size >= MAX_PENDING_INCOMING) {
      stream.destroy()
      return
    }
    // Plain BitTorrent or message stream encryption (BEP 8's MSE), whichever the peer starts with, as libtorrent's
    // `enabled` policy accepts both; `forced` and `disabled` refuse one of them.
    stream.on('error', () => undefined)
    this.#handshaking.add(stream)
    const paced = this.#throttled(stream)
    acceptConnection(paced, {
      policy: this.#opts.encryption ?? 'enabled',
      lookup: (hash) => this.#lookupEncrypted(hash, anonymous?.hops ?? 0),
    })
      .then(
        (conn) =>
          this.#onPlaintext(
            conn.stream,
            paced,
            address,
            transport,
            conn.encrypted ? conn.method : 'none',
            anonymous,
            hiddenFor,
          ),
        (err: unknown) => this.#log.debug('incoming handshake failed', { err: errorMessage(err) }),
      )
      .catch((err: unknown) => {
        stream.destroy()
        this.#log.warn('incoming connection failed', { err: errorMessage(err) })
      })
      .finally(() => this.#handshaking.delete(stream))
  }

  /** The info hash behind an MSE `req2` hash, among the downloads of `hops` hops only. */
  #lookupEncrypted(hash: Buffer, hops: number): Uint8Array | undefined {
    for (const handle of this.#downloads.values()) {
      if (handle.record.hops === hops && req2Hash(handle.download.infoHash).equals(hash))
        return handle.download.infoHash
    }
    return undefined
  }

  /** A connection past its encryption handshake; `paced` is its throttled raw stream, for the download's limits. */
  #onPlaintext(
    stream: Duplex,
    paced: ThrottledDuplex,
    address: SocketAddress,
    transport: 'tcp' | 'utp',
    encryption: PeerEncryption,
    anonymous: AnonymousTransport | undefined,
    hiddenFor: string | undefined,
  ): void {
    if (!this.#running) {
      stream.destroy()
      return
    }
    const wire = new PeerWire(stream, {
      peerId: anonymous?.peerId ?? this.peerId,
      clientName: CLIENT_NAME,
      ...(anonymous === undefined && { listenPort: this.#port }),
      remoteAddress: address,
      clock: this.#deps.clock,
      reqq: 500,
    })
    this.#incoming.add(wire)
    wire.once('close', () => this.#incoming.delete(wire))
    wire.once('handshake', (hs) => {
      this.#incoming.delete(wire)
      const handle = this.#downloads.get(toHex(hs.infoHash))
      // A direct peer never reaches an anonymous download, nor a circuit peer one of another hop count; a hidden
      // peer reaches only the swarm it looked up, and a download seeding as a hidden service only hidden peers.
      if (
        handle === undefined ||
        handle.record.hops !== (anonymous?.hops ?? 0) ||
        (hiddenFor !== undefined && handle.infoHash !== hiddenFor) ||
        (hiddenFor === undefined && handle.hiddenOnly)
      ) {
        wire.destroy()
        return
      }
      paced.addChannels(handle.channels)
      handle.download.acceptIncoming(wire, { address, transport, encryption })
    })
  }
}

/** A .torrent (bencoded) of an info dictionary and tracker tiers. */
export function torrentFileOf(info: TorrentInfo, tiers: readonly (readonly string[])[]): Uint8Array {
  const parts: Buffer[] = [Buffer.from('d')]
  const str = (s: string): Buffer => {
    const bytes = Buffer.from(s, 'utf8')
    return Buffer.concat([Buffer.from(`${bytes.length}:`), bytes])
  }
  const first = tiers[0]?.[0]
  if (first !== undefined) {
    parts.push(str('announce'), str(first))
    parts.push(str('announce-list'), Buffer.from('l'))
    for (const tier of tiers) {
      parts.push(Buffer.from('l'))
      for (const url of tier) parts.push(str(url))
      parts.push(Buffer.from('e'))
    }
    parts.push(Buffer.from('e'))
  }
  parts.push(str('info'), Buffer.from(info.infoBytes), Buffer.from('e'))
  return Buffer.concat(parts)
}

/** Connected peers with every piece are seeders, the others leechers. */
function countPeers(peers: readonly PeerStatus[]): { seeders: number; leechers: number } {
  const seeders = peers.filter((peer) => peer.seed).length
  return { seeders, leechers: peers.length - seeders }
}

/** A rate limit given for a download: `fallback` when absent, else a whole number of bytes/s >= 0. */
function checkLimit(value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`a rate limit is a whole number of bytes per second >= 0, got ${value}`)
  }
  return value
}

function normalizeHost(host: string): string {
  return host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host
}

/**
 * The local address outgoing TCP connections leave from: the listen address when it is a specific one of the peer's
 * family, as libtorrent binds outgoing connections to its listen interface. Peers then see the address they can dial
 * back (the listen port we tell them in the extended handshake is only on that address), not whichever the routing
 * table picks. A loopback listen address is used only towards loopback peers (it cannot reach anyone else), and
 * none is bound towards an IPv4-mapped peer.
 */
export function outgoingAddress(listenHost: string | undefined, peerHost: string): string | undefined {
  if (listenHost === undefined) return undefined
  const family = net.isIP(listenHost)
  if (family === 0 || family !== net.isIP(peerHost)) return undefined
  // An IPv4-mapped peer is reached over IPv4: an IPv6 source address cannot reach it (ENETUNREACH).
  if (peerHost.toLowerCase().startsWith('::ffff:') && peerHost.includes('.')) return undefined
  if (listenHost === '0.0.0.0' || listenHost === '::') return undefined
  if (isLoopbackHost(listenHost) && !isLoopbackHost(peerHost)) return undefined
  return listenHost
}

function isLoopbackHost(host: string): boolean {
  return host === '::1' || host.startsWith('127.')
}

function tcpConnect(peer: SocketAddress, signal: AbortSignal, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted()
    const socket: net.Socket = net.connect({
      host: peer.host,
      port: peer.port,
      onread: pooledReads(() => socket),
      ...(localAddress !== undefined && { localAddress }),
    })
    const onAbort = (): void => {
      socket.destroy()
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort)
      socket.setNoDelay(true)
      resolve(socket)
    })
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort)
      reject(err)
    })
  })
}
