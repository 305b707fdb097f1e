import type { Duplex } from 'node:stream'
import type { Clock, Logger, TimerHandle } from '../../common/index.js'
import {
  e2eAddress,
  type HiddenSeeding,
  type HiddenSession,
  HiddenTunnelCommunity,
  hiddenLookupHash,
  type IntroductionInfo,
  maxCircuitPayload,
  type TunnelCommunity,
} from '../../ipv8/index.js'
import { type DatagramSocket, formatAddress, type SocketAddress } from '../../net/index.js'
import type { PeerConnection, PeerConnector } from '../download/index.js'
import { UtpSocket } from '../utp/index.js'
import { EngineError } from './types.js'

/** How soon the first lookup runs, and the retry delay after a lookup that found nobody new (doubling). */
const FIRST_LOOKUP_MS = 1_000
const RETRY_LOOKUP_MS = 5_000
/** How often a download that found seeders looks again for more (Tribler's `dht_lookup_interval`). */
const LOOKUP_INTERVAL_MS = 30_000
/** How long one lookup waits for a peers-response, and one rendezvous for its end-to-end circuit. */
const LOOKUP_TIMEOUT_MS = 10_000
const CONNECT_TIMEOUT_MS = 30_000
/** End-to-end sessions per swarm at most, each side (every one is a circuit and a uTP socket). */
export const MAX_HIDDEN_SESSIONS = 16
/** Stand-in addresses a swarm remembers having handed out, so none is ever dialled through an exit. */
const MAX_REMEMBERED_STAND_INS = 1024
/** Introduction points a swarm remembers, to ask them for more (PEX) on the next lookups. */
const MAX_KNOWN_INTRO_POINTS = 20

/** What a hidden swarm takes from the engine. */
export interface HiddenSwarmDeps {
  readonly clock: Clock
  readonly logger: Logger
  /** Wraps every peer stream we dial (the session's rate limits). */
  readonly wrap: (stream: Duplex) => Duplex
  /** A downloader dialled us through an end-to-end circuit; `address` is its stand-in address. */
  readonly onIncoming: (stream: Duplex, address: SocketAddress) => void
  /** A seeder we can now dial at its stand-in address. */
  readonly onSeeder: (address: SocketAddress) => void
}

interface Entry {
  readonly session: HiddenSession
  readonly socket: DatagramSocket
  readonly utp: UtpSocket
  /** The seeder key the session was made for (downloader side), to connect once per seeder. */
  readonly seederKey: string | undefined
}

/** The hidden-service tunnel community behind `tunnels`, or undefined when it only runs the plain one. */
export function hiddenServices(tunnels: TunnelCommunity | undefined): HiddenTunnelCommunity | undefined {
  return tunnels instanceof HiddenTunnelCommunity ? tunnels : undefined
}

/**
 * One anonymous download's part in the hidden swarm of its info hash (Tribler's `join_swarm`): as a downloader it
 * looks up the swarm's hidden seeders under the lookup hash, meets each at a rendezvous point and offers it to the
 * download as a peer at the end-to-end circuit's stand-in address, dialled over uTP through that circuit only; as
 * a seeder it keeps introduction points for the lookup hash and hands the downloaders that meet it to the engine as
 * incoming uTP peers. Neither side learns the other's address.
 */
export class HiddenSwarm {
  readonly infoHash: Buffer
  readonly lookupHash: Buffer
  readonly hops: number
  readonly #community: HiddenTunnelCommunity
  readonly #deps: HiddenSwarmDeps
  /** Sessions by their stand-in address. */
  readonly #entries = new Map<string, Entry>()
  /** Seeder keys we are meeting or have met. */
  readonly #seeders = new Set<string>()
  /** Every stand-in address handed out (the latest ones), live or gone. */
  readonly #standIns = new Set<string>()
  /** Introduction points found so far, newest last, by address and seeder key. */
  readonly #introPoints = new Map<string, IntroductionInfo>()
  readonly #offRemoved: () => void
  #seeding: HiddenSeeding | undefined
  #lookupTimer: TimerHandle | undefined
  #looking = false
  #closed = false
  /** Lookups run and rendezvous made, for status and tests. */
  readonly counters = { lookups: 0, introductionsFound: 0, connected: 0, connectFailed: 0, accepted: 0 }

  constructor(community: HiddenTunnelCommunity, infoHash: Uint8Array, hops: number, deps: HiddenSwarmDeps) {
    if (!Number.isInteger(hops) || hops < 1 || hops > 3) throw new EngineError('ANON_NOT_SUPPORTED', { hops })
    this.#community = community
    this.infoHash = Buffer.from(infoHash)
    this.lookupHash = hiddenLookupHash(infoHash)
    this.hops = hops
    this.#deps = deps
    this.#offRemoved = community.tunnelEvents.on('circuit-removed', ({ circuit }) => {
      for (const [key, entry] of this.#entries) if (entry.session.circuit === circuit) this.#drop(key, entry)
    })
  }

  /** Whether `address` is the stand-in address of one of our end-to-end sessions. */
  has(address: SocketAddress): boolean {
    return this.#entries.has(formatAddress(address))
  }

  /**
   * Whether `address` is, or was, the stand-in address of one of our end-to-end sessions. Such an address is made
   * from a circuit id and may name some unrelated host, so once its session is gone it must not be dialled at all.
   */
  issued(address: SocketAddress): boolean {
    return this.#standIns.has(formatAddress(address))
  }

  /** The live end-to-end sessions. */
  get sessions(): number {
    return this.#entries.size
  }

  /** Whether we offer the swarm as a hidden seeder. */
  get seeding(): boolean {
    return this.#seeding !== undefined
  }

  /** The introduction points confirmed for our seeding, as hex mids. */
  introPoints(): string[] {
    return this.#seeding?.introPoints() ?? []
  }

  /** Dials the seeder behind a stand-in address over uTP through its end-to-end circuit. */
  readonly connect: PeerConnector = async (peer, { signal }) => {
    const entry = this.#entries.get(formatAddress(peer))
    if (entry === undefined)
      throw new EngineError('ANON_NOT_SUPPORTED', { peer: formatAddress(peer), reason: 'no hidden session' })
    const conn = await entry.utp.connect(peer, { signal })
    return { stream: this.#deps.wrap(conn), transport: 'utp' } satisfies PeerConnection
  }

  /** Starts offering the swarm as a hidden seeder (idempotent). */
  seed(): void {
    if (this.#closed || this.#seeding !== undefined) return
    this.#seeding = this.#community.seedHidden(this.lookupHash, {
      hops: this.hops,
      onSession: (session) => this.#onSeederSession(session),
    })
    this.#deps.logger.debug('seeding as a hidden service', { infoHash: this.infoHash.toString('hex') })
  }

  /** Stops offering the swarm (keeps sessions already made). */
  unseed(): void {
    this.#seeding?.stop()
    this.#seeding = undefined
  }

  /** Starts looking up hidden seeders, again and again until {@link stopLookups} (idempotent). */
  startLookups(): void {
    if (this.#closed || this.#looking) return
    this.#looking = true
    this.#schedule(FIRST_LOOKUP_MS)
  }

  stopLookups(): void {
    this.#looking = false
    if (this.#lookupTimer !== undefined) this.#deps.clock.clearTimeout(this.#lookupTimer)
    this.#lookupTimer = undefined
  }

  /** Leaves the swarm: no more seeding or lookups, every end-to-end session and its circuit closed. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.stopLookups()
    this.unseed()
    this.#offRemoved()
    const entries = [...this.#entries]
    this.#entries.clear()
    this.#seeders.clear()
    for (const [, entry] of entries) {
      await entry.utp.close()
      await entry.socket.close()
      this.#community.removeCircuit(entry.session.circuit.circuitId, 'left the hidden swarm', 4)
    }
  }

  #schedule(delayMs: number): void {
    if (!this.#looking || this.#closed) return
    this.#lookupTimer = this.#deps.clock.setTimeout(() => {
      this.#lookupTimer = undefined
      void this.#lookup().then((foundNew) =>
        this.#schedule(foundNew ? LOOKUP_INTERVAL_MS : this.#retryDelay()),
      )
    }, delayMs)
  }

  #misses = 0
  #retryDelay(): number {
    this.#misses++
    return Math.min(LOOKUP_INTERVAL_MS, RETRY_LOOKUP_MS * 2 ** Math.min(this.#misses - 1, 4))
  }

  /** One lookup; meets every new seeder it names. True when one was new. */
  async #lookup(): Promise<boolean> {
    if (!this.#community.running || this.#entries.size >= MAX_HIDDEN_SESSIONS) return false
    if (this.#community.findCircuits({ hops: this.hops }).length === 0) {
      // Lookups leave through a circuit of our length: have one built (unless someone already keeps them).
      await this.#community.circuit(this.hops, { timeoutMs: LOOKUP_TIMEOUT_MS }).catch(() => undefined)
      if (this.#closed || !this.#looking) return false
    }
    this.counters.lookups++
    let intros: Awaited<ReturnType<HiddenTunnelCommunity['lookupHidden']>>
    try {
      intros = await this.#community.lookupHidden(this.lookupHash, {
        hops: this.hops,
        timeoutMs: LOOKUP_TIMEOUT_MS,
        introPoints: [...this.#introPoints.values()],
      })
    } catch {
      return false // no circuit yet: the next round tries again
    }
    if (this.#closed || !this.#looking) return false
    this.counters.introductionsFound += intros.length
    for (const intro of intros) {
      const key = `${formatAddress(intro.address)}/${intro.seederPk.toString('hex')}`
      this.#introPoints.delete(key)
      this.#introPoints.set(key, intro)
      if (this.#introPoints.size > MAX_KNOWN_INTRO_POINTS) {
        const oldest = this.#introPoints.keys().next().value
        if (oldest !== undefined) this.#introPoints.delete(oldest)
      }
    }
    const fresh = intros.filter((intro) => !this.#seeders.has(intro.seederPk.toString('hex')))
    if (fresh.length === 0) return false
    this.#misses = 0
    await Promise.all(
      fresh.map(async (intro) => {
        const seederKey = intro.seederPk.toString('hex')
        if (this.#seeders.has(seederKey) || this.#entries.size >= MAX_HIDDEN_SESSIONS) return
        this.#seeders.add(seederKey)
        try {
          const session = await this.#community.connectHidden(this.lookupHash, intro, {
            hops: this.hops,
            timeoutMs: CONNECT_TIMEOUT_MS,
          })
          this.counters.connected++
          this.#onDownloaderSession(session, seederKey)
        } catch (err) {
          this.counters.connectFailed++
          this.#seeders.delete(seederKey)
          this.#deps.logger.debug('hidden seeder not reached', { err })
        }
      }),
    )
    return true
  }

  #onDownloaderSession(session: HiddenSession, seederKey: string): void {
    if (this.#closed || session.circuit.state === 'closing') {
      this.#seeders.delete(seederKey)
      if (this.#closed) this.#community.removeCircuit(session.circuit.circuitId, 'left the hidden swarm', 4)
      return
    }
    const address = e2eAddress(session.circuit.circuitId)
    const { socket, utp } = this.#utpOver(session)
    this.#entries.set(formatAddress(address), { session, socket, utp, seederKey })
    this.#remember(address)
    this.#deps.onSeeder(address)
  }

  #onSeederSession(session: HiddenSession): void {
    if (this.#closed || this.#entries.size >= MAX_HIDDEN_SESSIONS) {
      this.#community.removeCircuit(session.circuit.circuitId, 'too many hidden peers', 4)
      return
    }
    const address = e2eAddress(session.circuit.circuitId)
    const { socket, utp } = this.#utpOver(session)
    utp.listen()
    utp.events.on('connection', (conn) => {
      this.counters.accepted++
      this.#deps.onIncoming(conn, address)
    })
    this.#entries.set(formatAddress(address), { session, socket, utp, seederKey: undefined })
    this.#remember(address)
  }

  #utpOver(session: HiddenSession): { socket: DatagramSocket; utp: UtpSocket } {
    const socket = session.socket()
    // Our circuit's layers plus the end-to-end one; the other side's circuit has as many.
    const utp = new UtpSocket(
      { socket, clock: this.#deps.clock },
      { packetBytes: maxCircuitPayload(this.hops + 1) },
    )
    return { socket, utp }
  }

  #remember(address: SocketAddress): void {
    const key = formatAddress(address)
    this.#standIns.delete(key)
    this.#standIns.add(key)
    if (this.#standIns.size > MAX_REMEMBERED_STAND_INS) {
      const oldest = this.#standIns.values().next().value
      if (oldest !== undefined) this.#standIns.delete(oldest)
    }
  }

  #drop(key: string, entry: Entry): void {
    if (this.#entries.get(key) !== entry) return
    this.#entries.delete(key)
    if (entry.seederKey !== undefined) this.#seeders.delete(entry.seederKey)
    void entry.utp.close().then(() => entry.socket.close())
  }
}
