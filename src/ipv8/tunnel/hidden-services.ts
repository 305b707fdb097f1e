import { createHash, randomBytes } from 'node:crypto'
import { logger } from '../../common/index.js'
import {
  type DatagramHandler,
  type DatagramSocket,
  emptyDatagramStats,
  type SocketAddress,
} from '../../net/index.js'
import type { CommunitySettings } from '../community/index.js'
import { PrivateKey, PublicKey } from '../keys/index.js'
import { type PayloadSchema, PREFIX_LENGTH } from '../serialization/index.js'
import type { Circuit } from './circuit.js'
import { TunnelCommunity, type TunnelCommunityDeps, type TunnelCommunityOptions } from './community.js'
import {
  completeKeyExchange,
  decryptLayer,
  deriveSessionKeys,
  type EphemeralKey,
  encryptLayer,
  generateEphemeralKey,
  respondToKeyExchange,
  type SessionKeys,
  withReplayProtection,
} from './crypto.js'
import { TunnelError } from './errors.js'
import type { ExitSocket } from './exit-socket.js'
import {
  CreatedE2EPayload,
  CreateE2EPayload,
  EstablishIntroPayload,
  EstablishRendezvousPayload,
  type IntroductionInfo,
  IntroEstablishedPayload,
  LinkE2EPayload,
  LinkedE2EPayload,
  PeersRequestPayload,
  PeersResponsePayload,
  RendezvousEstablishedPayload,
  RendezvousInfoBlob,
} from './payloads.js'
import { PexCommunity } from './pex.js'
import {
  FORWARD,
  type IntroPointDirectory,
  type IntroPointRecord,
  PEER_FLAG_EXIT_BT,
  PEER_SOURCE_PEX,
  TRIBLER_TUNNEL_COMMUNITY_ID,
} from './types.js'

const log = logger('ipv8:tunnel:hidden')

/** Intro points a peers-response lists at most (py-ipv8 samples 7). */
const MAX_INTRO_POINTS_PER_RESPONSE = 7
/** How often a seeder checks its introduction points. */
const KEEP_INTRO_POINTS_MS = 5_000
/** How many known peers a lookup asks directly, besides the exits of our own circuits. */
const LOOKUP_FANOUT = 10
/** How often an introduction point announces itself in the DHT again (a stored value lives at most an hour). */
const REANNOUNCE_MS = 20 * 60_000
/** How long an exit reuses a DHT lookup of one info-hash, and how many it runs at a time. */
const DHT_LOOKUP_CACHE_MS = 30_000
const MAX_DHT_LOOKUPS = 8
const MAX_CACHED_LOOKUPS = 256
/** The address an end-to-end socket reports as its own. */
const ANONYMOUS_LOCAL: SocketAddress = { host: '0.0.0.0', port: 0 }

/**
 * Tribler looks hidden seeders up under `SHA1("tribler anonymous download" || hex(info_hash))` rather than the
 * info-hash itself (spec §8).
 */
export function hiddenLookupHash(infoHash: Uint8Array): Buffer {
  return createHash('sha1')
    .update('tribler anonymous download')
    .update(Buffer.from(infoHash).toString('hex'))
    .digest()
}

/** Why hidden-service messages were dropped, counted per reason. */
export interface HiddenDropCounters {
  /** Undecodable hidden-service packets. */
  malformed: number
  /** link-e2e for a cookie this node is no rendezvous point for. */
  unknownCookie: number
  /** Hidden-service cells that arrived on a circuit they do not belong to. */
  unknownCircuit: number
  /** create-e2e for a seeder key this node is no introduction point for, or for a swarm we do not seed. */
  unknownSeeder: number
  /** peers-requests an exit did not look up in the DHT because too many lookups were running. */
  lookupsBusy: number
  /** Answers (intro-established, rendezvous-established, created-e2e, linked-e2e, peers-response) nobody asked for. */
  unknownRequest: number
  /** created-e2e whose auth did not verify or whose rendezvous info did not decrypt. */
  authFailed: number
  /** establish-intro for a seeder key another live circuit already registered here. */
  duplicateIntro: number
}

/** One end of a joined end-to-end circuit. */
export interface HiddenSession {
  readonly infoHash: Buffer
  readonly role: 'seeder' | 'downloader'
  /** Our circuit to the rendezvous point; the other side's circuit is joined to it there. */
  readonly circuit: Circuit
  /**
   * A datagram socket over the joined circuit: whatever is sent reaches the other side (the destination
   * address is ignored), whatever the other side sends arrives with the rendezvous point's fake address.
   */
  socket(): DatagramSocket
}

/** A swarm this node seeds as a hidden service. */
export interface HiddenSeeding {
  readonly infoHash: Buffer
  /** The seeder key downloaders address the create-e2e to (a fresh key per swarm, never our identity). */
  readonly seederPublicKey: Buffer
  /** Introduction points whose establishment was confirmed, as the hex mids of their keys. */
  introPoints(): string[]
  stop(): void
}

interface SeedState {
  readonly infoHash: Buffer
  readonly hops: number
  readonly introPoints: number
  readonly seederKey: PrivateKey
  readonly onSession: (session: HiddenSession) => void
  /** IP-seeder circuits and whether their establish-intro was confirmed. */
  readonly introCircuits: Map<Circuit, boolean>
}

interface IntroPointEntry {
  readonly exit: ExitSocket
  readonly infoHash: Buffer
  /** When we last announced it in the DHT (clock ms). */
  announcedMs: number
}

/** Options of a {@link HiddenTunnelCommunity}. */
export interface HiddenTunnelOptions extends TunnelCommunityOptions {
  /** Where introduction points are announced and looked up besides PEX (the DHT); none by default. */
  introPointDirectory?: IntroPointDirectory
  /** Settings of the per-swarm PEX overlays an introduction point joins (default: the node's bootstrap). */
  pex?: CommunitySettings
}

interface Pending {
  onTimeout(): void
}

/**
 * The tunnel community plus hidden services (spec §8): a seeder keeps introduction points (exits of its
 * circuits that know its seeder key), a downloader finds them with peers-request, asks the seeder through one
 * of them to meet at a rendezvous point (create-e2e / created-e2e), and the rendezvous point joins the two
 * circuits (link-e2e) so data flows end to end under one more layer of encryption, with neither side learning
 * the other's address.
 *
 * Introduction points are found as py-ipv8 finds them: each one announces itself in the DHT under the lookup
 * info-hash ({@link HiddenTunnelCommunity.introPointDirectory}) and joins the swarm's PEX overlay
 * ({@link PexCommunity}), where the introduction points of a swarm learn each other. A downloader asks the exits of
 * its circuits (which answer from PEX or look the info-hash up in the DHT), the introduction points it already
 * knows (which answer from PEX), and known exit-capable peers directly.
 */
export class HiddenTunnelCommunity extends TunnelCommunity {
  readonly hiddenDrops: HiddenDropCounters = {
    malformed: 0,
    unknownCookie: 0,
    unknownCircuit: 0,
    unknownSeeder: 0,
    unknownRequest: 0,
    authFailed: 0,
    duplicateIntro: 0,
    lookupsBusy: 0,
  }
  /** DHT use: announcements of our introduction points, and lookups run as an exit for peers-requests. */
  readonly hiddenStats = { dhtAnnounces: 0, dhtLookups: 0 }
  /** Where introduction points are announced and looked up besides PEX (the DHT); set by the IPv8 service. */
  introPointDirectory: IntroPointDirectory | undefined
  /** The PEX overlays of the swarms we are an introduction point of, by info-hash hex. */
  readonly #pex = new Map<string, PexCommunity>()
  readonly #deps: TunnelCommunityDeps
  readonly #pexSettings: CommunitySettings | undefined
  /** Recent DHT lookups as an exit, by info-hash hex. */
  readonly #dhtLookups = new Map<string, { atMs: number; result: Promise<IntroPointRecord[]> }>()
  #dhtLookupsRunning = 0
  /** Swarms we seed, by info-hash hex. */
  readonly #seeding = new Map<string, SeedState>()
  /** As an introduction point: seeder key hex → the exit socket of the seeder's circuit. */
  readonly #introPointFor = new Map<string, IntroPointEntry>()
  /** As a rendezvous point: cookie hex → the exit socket of the seeder's circuit. */
  readonly #rendezvousFor = new Map<string, ExitSocket>()

  constructor(deps: TunnelCommunityDeps, options: HiddenTunnelOptions = {}) {
    super(deps, options)
    this.#deps = deps
    this.#pexSettings = options.pex
    this.introPointDirectory = options.introPointDirectory
    this.addCellHandler(EstablishIntroPayload, (s, p, c) => this.#onEstablishIntro(s, p, c))
    this.addCellHandler(IntroEstablishedPayload, (_s, p) =>
      this.#onAnswer('intro', p.identifier, p.circuitId),
    )
    this.addCellHandler(EstablishRendezvousPayload, (s, p, c) => this.#onEstablishRendezvous(s, p, c))
    this.addCellHandler(RendezvousEstablishedPayload, (_s, p) =>
      this.#onAnswer('rendezvous', p.identifier, p.circuitId, p.rendezvousPointAddress),
    )
    this.addCellHandler(LinkE2EPayload, (s, p, c) => this.#onLinkE2e(s, p, c))
    this.addCellHandler(LinkedE2EPayload, (_s, p) => this.#onAnswer('link', p.identifier, p.circuitId))
    this.addCellHandler(PeersRequestPayload, (s, p, c) => this.#onPeersRequestCell(s, p, c))
    this.addCellHandler(PeersResponsePayload, (_s, p) => this.#onPeersResponse(p))
    // create-e2e and peers-request (and their answers) also arrive as plain unsigned packets
    this.addRawHandler(CreateE2EPayload.msgId, (data, source) => this.#onRawCreateE2e(data, source))
    this.addRawHandler(PeersRequestPayload.msgId, (data, source) => this.#onRawPeersRequest(data, source))
    this.addRawHandler(PeersResponsePayload.msgId, (data) => {
      const payload = this.#decodeRaw(PeersResponsePayload, data)
      if (payload !== undefined) this.#onPeersResponse(payload)
      return payload !== undefined
    })
  }

  override async start(): Promise<void> {
    await super.start()
    this.tasks.every('keep-intro-points', KEEP_INTRO_POINTS_MS, () => this.#keepIntroPoints())
  }

  override async stop(): Promise<void> {
    const pex = [...this.#pex.values()]
    this.#pex.clear()
    await Promise.all(pex.map((c) => c.stop()))
    await super.stop()
  }

  /** The PEX overlays running for the swarms we are an introduction point of. */
  get pexCommunities(): readonly PexCommunity[] {
    return [...this.#pex.values()]
  }

  // --- seeder ------------------------------------------------------------------------------------------------

  /**
   * Seeds `infoHash` (the lookup hash, see {@link hiddenLookupHash}) as a hidden service: keeps `introPoints`
   * (1 to `maxCircuits`, default 1) introduction points over `hops`-hop circuits and calls `onSession` for every downloader that meets us at a
   * rendezvous point.
   */
  seedHidden(
    infoHash: Uint8Array,
    opts: { hops: number; introPoints?: number; onSession: (session: HiddenSession) => void },
  ): HiddenSeeding {
    const hash = Buffer.from(infoHash)
    if (hash.length !== 20) throw new TunnelError('BAD_REQUEST', { infoHash: hash.toString('hex') })
    if (!Number.isInteger(opts.hops) || opts.hops < 1 || opts.hops > 3)
      throw new TunnelError('BAD_REQUEST', { hops: opts.hops })
    const key = hash.toString('hex')
    if (this.#seeding.has(key))
      throw new TunnelError('BAD_REQUEST', { infoHash: key, reason: 'already seeding' })
    const state: SeedState = {
      infoHash: hash,
      hops: opts.hops,
      introPoints: Math.min(Math.max(1, Math.floor(opts.introPoints ?? 1)), this.settings.maxCircuits),
      seederKey: PrivateKey.generate(),
      onSession: opts.onSession,
      introCircuits: new Map(),
    }
    this.#seeding.set(key, state)
    this.#keepIntroPoints()
    return {
      infoHash: hash,
      seederPublicKey: state.seederKey.publicKey.toBin(),
      introPoints: () =>
        [...state.introCircuits]
          .filter(([c, confirmed]) => confirmed && c.state === 'ready')
          .map(([c]) => c.hops.at(-1)?.publicKey.mid.toString('hex') ?? '')
          .filter((mid) => mid !== ''),
      stop: () => {
        if (this.#seeding.get(key) !== state) return
        this.#seeding.delete(key)
        for (const circuit of state.introCircuits.keys())
          this.removeCircuit(circuit.circuitId, 'stopped seeding', 4)
      },
    }
  }

  #keepIntroPoints(): void {
    if (!this.running) return
    // forget introduction and rendezvous points whose circuits are gone
    const now = this.clock.now()
    for (const [seederPk, entry] of this.#introPointFor) {
      if (this.exitSockets.get(entry.exit.circuitId) !== entry.exit) this.#forgetIntroPoint(seederPk, entry)
      else if (now - entry.announcedMs >= REANNOUNCE_MS) this.#announce(entry, seederPk)
    }
    for (const [key, lookup] of this.#dhtLookups)
      if (now - lookup.atMs >= DHT_LOOKUP_CACHE_MS) this.#dhtLookups.delete(key)
    for (const [cookie, exit] of this.#rendezvousFor)
      if (this.exitSockets.get(exit.circuitId) !== exit) this.#rendezvousFor.delete(cookie)
    for (const state of this.#seeding.values()) {
      for (const circuit of [...state.introCircuits.keys()])
        if (circuit.state === 'closing') state.introCircuits.delete(circuit)
      for (let i = state.introCircuits.size; i < state.introPoints; i++) {
        const used = new Set(
          [...state.introCircuits.keys()].map((c) => c.requiredExit?.publicKey.mid.toString('hex')),
        )
        const unused = this.getCandidates(PEER_FLAG_EXIT_BT).filter((p) => !used.has(p.midHex))
        const exit = unused[Math.floor(this.random() * unused.length)]
        const circuit = this.createCircuit(state.hops, {
          purpose: 'ip-seeder',
          requiredExit: exit === undefined ? undefined : { publicKey: exit.publicKey, address: exit.address },
        })
        if (circuit === undefined) break
        state.introCircuits.set(circuit, false)
        this.#whenReady(circuit, () => this.#sendEstablishIntro(state, circuit))
      }
    }
  }

  #sendEstablishIntro(state: SeedState, circuit: Circuit): void {
    const first = circuit.hops[0]?.address
    if (first === undefined || this.#seeding.get(state.infoHash.toString('hex')) !== state) return
    const identifier = this.requestCache.add(
      'intro',
      {
        onTimeout: () => {
          this.#answers.delete(`intro:${identifier}`)
          this.removeCircuit(circuit.circuitId, 'no intro-established')
        },
      } as Pending,
      { timeoutMs: this.settings.nextHopTimeoutMs },
    )
    this.#answers.set(`intro:${identifier}`, {
      circuitId: circuit.circuitId,
      run: () => {
        state.introCircuits.set(circuit, true)
        log.debug('introduction point established', { circuitId: circuit.circuitId })
      },
    })
    this.sendCell(first, EstablishIntroPayload, {
      circuitId: circuit.circuitId,
      identifier,
      infoHash: state.infoHash,
      publicKey: state.seederKey.publicKey.toBin(),
    })
  }

  /** A create-e2e that our introduction point tunnelled to us: meet the downloader at a rendezvous point. */
  #onCreateE2eForUs(introCircuit: Circuit, payload: CreateE2EPayload, replyTo: SocketAddress): void {
    const state = this.#seeding.get(payload.infoHash.toString('hex'))
    if (
      state === undefined ||
      !state.introCircuits.has(introCircuit) ||
      !payload.nodePublicKey.equals(state.seederKey.publicKey.toBin())
    ) {
      this.hiddenDrops.unknownSeeder += 1
      return
    }
    let handshake: ReturnType<typeof respondToKeyExchange>
    try {
      handshake = respondToKeyExchange(payload.key, state.seederKey.curveSecretKey)
    } catch {
      this.hiddenDrops.malformed += 1
      return
    }
    const rp = this.createCircuit(state.hops, { purpose: 'rp-seeder' })
    if (rp === undefined) {
      log.debug('no circuit for a rendezvous point')
      return
    }
    this.#whenReady(rp, () => {
      const first = rp.hops[0]?.address
      const rpKey = rp.hops.at(-1)?.publicKey
      if (first === undefined || rpKey === undefined) return
      const cookie = randomBytes(20)
      const identifier = this.requestCache.add(
        'rendezvous',
        {
          onTimeout: () => {
            this.#answers.delete(`rendezvous:${identifier}`)
            this.removeCircuit(rp.circuitId, 'no rendezvous-established')
          },
        } as Pending,
        { timeoutMs: this.settings.nextHopTimeoutMs },
      )
      this.#answers.set(`rendezvous:${identifier}`, {
        circuitId: rp.circuitId,
        run: (rpAddress) => {
          if (rpAddress === undefined || introCircuit.state !== 'ready') return
          const keys = withReplayProtection(deriveSessionKeys(handshake.shared))
          const info = RendezvousInfoBlob.encode({
            info: { address: rpAddress, key: rpKey.toBin(), cookie },
          })
          const rpInfoEnc = encryptLayer(info, keys, FORWARD)
          rp.hsKeys = keys
          this.tunnelPacket(
            introCircuit,
            replyTo,
            this.createUnsigned(
              CreatedE2EPayload,
              { identifier: payload.identifier, key: handshake.key, auth: handshake.auth, rpInfoEnc },
              { globalTime: false },
            ),
          )
          state.onSession(this.#session(state.infoHash, 'seeder', rp))
        },
      })
      this.sendCell(first, EstablishRendezvousPayload, { circuitId: rp.circuitId, identifier, cookie })
    })
  }

  // --- downloader --------------------------------------------------------------------------------------------

  /**
   * Finds introduction points of `infoHash` (the lookup hash): asks the exits of our `hops`-hop circuits (which
   * answer from PEX or the DHT), and through one of them the introduction points in `opts.introPoints` (which
   * answer from PEX) and up to 10 known exit-capable peers, with peers-request. Resolves with the first non-empty
   * answer, or with an empty list after `timeoutMs` (default 10 s).
   */
  lookupHidden(
    infoHash: Uint8Array,
    opts: { hops: number; timeoutMs?: number; introPoints?: readonly IntroductionInfo[] },
  ): Promise<(IntroductionInfo & { readonly via: number })[]> {
    const hash = Buffer.from(infoHash)
    const circuits = this.findCircuits({ hops: opts.hops })
    const circuit = circuits[0]
    if (circuit === undefined) return Promise.reject(new TunnelError('NO_CIRCUIT', { hops: opts.hops }))
    return new Promise((resolve) => {
      const identifier = this.requestCache.add(
        'peers',
        {
          onTimeout: () => {
            this.#peersWaiting.delete(identifier)
            resolve([])
          },
        } as Pending,
        {
          timeoutMs: opts.timeoutMs ?? 10_000,
        },
      )
      this.#peersWaiting.set(identifier, {
        infoHash: hash,
        resolve: (peers) => resolve(peers.map((p) => ({ ...p, via: circuit.circuitId }))),
      })
      for (const c of circuits) {
        const first = c.hops[0]?.address
        if (first !== undefined)
          this.sendCell(first, PeersRequestPayload, { circuitId: c.circuitId, identifier, infoHash: hash })
      }
      const exits = new Set(circuits.map((c) => c.hops.at(-1)?.publicKey.mid.toString('hex')))
      const packet = this.createUnsigned(
        PeersRequestPayload,
        { circuitId: circuit.circuitId, identifier, infoHash: hash },
        { globalTime: false },
      )
      const asked = new Set<string>()
      for (const intro of (opts.introPoints ?? []).slice(0, LOOKUP_FANOUT)) {
        const key = `${intro.address.host}:${intro.address.port}`
        if (asked.has(key)) continue
        asked.add(key)
        this.tunnelPacket(circuit, intro.address, packet)
      }
      for (const peer of this.getCandidates(PEER_FLAG_EXIT_BT)
        .filter((p) => !exits.has(p.midHex) && !asked.has(`${p.address.host}:${p.address.port}`))
        .slice(0, LOOKUP_FANOUT))
        this.tunnelPacket(circuit, peer.address, packet)
    })
  }

  /**
   * Meets the seeder behind `intro` at a rendezvous point of its choice: sends create-e2e through one of our
   * `hops`-hop circuits and the introduction point, verifies the created-e2e, builds a circuit whose exit is
   * the rendezvous point and links it. Rejects with `NO_CIRCUIT` when any step times out (default 30 s).
   */
  connectHidden(
    infoHash: Uint8Array,
    intro: IntroductionInfo,
    opts: { hops: number; timeoutMs?: number },
  ): Promise<HiddenSession> {
    const hash = Buffer.from(infoHash)
    const circuit = this.findCircuits({ hops: opts.hops })[0]
    if (circuit === undefined) return Promise.reject(new TunnelError('NO_CIRCUIT', { hops: opts.hops }))
    let seederKey: PublicKey
    try {
      seederKey = PublicKey.fromBin(intro.seederPk)
    } catch {
      return Promise.reject(new TunnelError('BAD_REQUEST', { reason: 'bad seeder key' }))
    }
    return new Promise((resolve, reject) => {
      let done = false
      const fail = (reason: string): void => {
        if (done) return
        done = true
        reject(new TunnelError('NO_CIRCUIT', { reason }))
      }
      const timer = this.clock.setTimeout(() => fail('hidden connection timed out'), opts.timeoutMs ?? 30_000)
      const ephemeral = generateEphemeralKey()
      const identifier = this.requestCache.add(
        'e2e',
        {
          onTimeout: () => {
            this.#e2eWaiting.delete(identifier)
            fail('no created-e2e')
          },
        } as Pending,
        {
          timeoutMs: opts.timeoutMs ?? 30_000,
        },
      )
      this.#e2eWaiting.set(identifier, {
        ephemeral,
        seederKey,
        onCreated: (keys, info) => {
          const rp = this.createCircuit(opts.hops, {
            purpose: 'rp-downloader',
            requiredExit: { publicKey: info.key, address: info.address },
          })
          if (rp === undefined) {
            fail('no circuit to the rendezvous point')
            return
          }
          this.#whenReady(rp, () => {
            const first = rp.hops[0]?.address
            if (first === undefined) return
            const linkId = this.requestCache.add(
              'link',
              {
                onTimeout: () => {
                  this.#answers.delete(`link:${linkId}`)
                  this.removeCircuit(rp.circuitId, 'no linked-e2e')
                  fail('no linked-e2e')
                },
              } as Pending,
              {
                timeoutMs: this.settings.nextHopTimeoutMs,
              },
            )
            this.#answers.set(`link:${linkId}`, {
              circuitId: rp.circuitId,
              run: () => {
                rp.hsKeys = keys
                if (done) return
                done = true
                this.clock.clearTimeout(timer)
                resolve(this.#session(hash, 'downloader', rp))
              },
            })
            this.sendCell(first, LinkE2EPayload, {
              circuitId: rp.circuitId,
              identifier: linkId,
              cookie: info.cookie,
            })
          })
        },
      })
      this.tunnelPacket(
        circuit,
        intro.address,
        this.createUnsigned(
          CreateE2EPayload,
          { identifier, infoHash: hash, nodePublicKey: intro.seederPk, key: ephemeral.publicKey },
          { globalTime: false },
        ),
      )
    })
  }

  readonly #peersWaiting = new Map<
    number,
    { infoHash: Buffer; resolve: (peers: IntroductionInfo[]) => void }
  >()
  readonly #e2eWaiting = new Map<
    number,
    {
      ephemeral: EphemeralKey
      seederKey: PublicKey
      onCreated(keys: SessionKeys, info: { address: SocketAddress; key: PublicKey; cookie: Buffer }): void
    }
  >()
  readonly #answers = new Map<string, { circuitId: number; run: (address?: SocketAddress) => void }>()

  #onCreatedE2e(payload: CreatedE2EPayload): void {
    const waiting = this.#e2eWaiting.get(payload.identifier)
    if (waiting === undefined || this.requestCache.pop('e2e', payload.identifier) === undefined) {
      this.hiddenDrops.unknownRequest += 1
      return
    }
    this.#e2eWaiting.delete(payload.identifier)
    let keys: SessionKeys
    let info: { address: SocketAddress; key: PublicKey; cookie: Buffer }
    try {
      const shared = completeKeyExchange(
        waiting.ephemeral.secretKey,
        payload.key,
        payload.auth,
        waiting.seederKey.curvePublicKey,
      )
      keys = withReplayProtection(deriveSessionKeys(shared))
      const blob = RendezvousInfoBlob.decode(decryptLayer(payload.rpInfoEnc, keys, FORWARD)).info
      info = { address: blob.address, key: PublicKey.fromBin(blob.key), cookie: blob.cookie }
    } catch {
      this.hiddenDrops.authFailed += 1
      return
    }
    waiting.onCreated(keys, info)
  }

  #session(infoHash: Buffer, role: HiddenSession['role'], circuit: Circuit): HiddenSession {
    return { infoHash, role, circuit, socket: () => e2eSocket(this, circuit) }
  }

  // --- introduction point, rendezvous point ------------------------------------------------------------------

  #onEstablishIntro(source: SocketAddress, payload: EstablishIntroPayload, circuitId: number): void {
    const exit = this.exitSockets.get(circuitId)
    if (exit === undefined) {
      this.hiddenDrops.unknownCircuit += 1
      return
    }
    try {
      PublicKey.fromBin(payload.publicKey)
    } catch {
      this.hiddenDrops.malformed += 1
      return
    }
    const seederPk = payload.publicKey.toString('hex')
    const existing = this.#introPointFor.get(seederPk)
    if (existing !== undefined && this.exitSockets.get(existing.exit.circuitId) === existing.exit) {
      // one circuit per seeder key, as py-ipv8: a second establish-intro cannot take the first one over
      this.hiddenDrops.duplicateIntro += 1
      return
    }
    // a copy: the received info hash is a view into the cell it came in
    const entry: IntroPointEntry = { exit, infoHash: Buffer.from(payload.infoHash), announcedMs: 0 }
    this.#introPointFor.set(seederPk, entry)
    this.#pexFor(payload.infoHash)?.startAnnounce(payload.publicKey)
    this.#announce(entry, seederPk)
    this.sendCell(source, IntroEstablishedPayload, { circuitId, identifier: payload.identifier })
  }

  #onEstablishRendezvous(
    source: SocketAddress,
    payload: EstablishRendezvousPayload,
    circuitId: number,
  ): void {
    const exit = this.exitSockets.get(circuitId)
    if (exit === undefined) {
      this.hiddenDrops.unknownCircuit += 1
      return
    }
    this.#rendezvousFor.set(payload.cookie.toString('hex'), exit)
    this.sendCell(source, RendezvousEstablishedPayload, {
      circuitId,
      identifier: payload.identifier,
      rendezvousPointAddress: this.myWanAddress,
    })
  }

  #onLinkE2e(source: SocketAddress, payload: LinkE2EPayload, circuitId: number): void {
    const cookie = payload.cookie.toString('hex')
    const seederSide = this.#rendezvousFor.get(cookie)
    if (seederSide === undefined) {
      this.hiddenDrops.unknownCookie += 1
      return
    }
    const downloaderSide = this.exitSockets.get(circuitId)
    if (
      downloaderSide === undefined ||
      this.exitSockets.get(seederSide.circuitId) !== seederSide ||
      downloaderSide.enabled ||
      seederSide.enabled ||
      downloaderSide === seederSide
    ) {
      this.hiddenDrops.unknownCircuit += 1
      return
    }
    this.#rendezvousFor.delete(cookie)
    // answer under the downloader side's exit keys, then join
    this.sendCell(source, LinkedE2EPayload, { circuitId, identifier: payload.identifier })
    this.joinExits(circuitId, seederSide.circuitId)
  }

  #onRawCreateE2e(data: Buffer, source: SocketAddress): boolean {
    const payload = this.#decodeRaw(CreateE2EPayload, data)
    if (payload === undefined) return false
    const entry = this.#introPointFor.get(payload.nodePublicKey.toString('hex'))
    if (entry === undefined || this.exitSockets.get(entry.exit.circuitId) !== entry.exit) {
      this.hiddenDrops.unknownSeeder += 1
      return false
    }
    this.tunnelPacket(
      entry.exit,
      source,
      this.createUnsigned(CreateE2EPayload, payload, { globalTime: false }),
    )
    return true
  }

  /** Our own introduction points of `infoHash` and those PEX told us of. */
  #introPointsFor(infoHash: Buffer): IntroductionInfo[] {
    const out: IntroPointRecord[] = []
    for (const [seederPk, entry] of this.#introPointFor) {
      if (this.exitSockets.get(entry.exit.circuitId) !== entry.exit) {
        this.#forgetIntroPoint(seederPk, entry)
        continue
      }
      if (!entry.infoHash.equals(infoHash)) continue
      out.push(this.#ownRecord(Buffer.from(seederPk, 'hex')))
    }
    const mine = this.myKey.publicKey.toBin()
    for (const ip of this.#pex.get(infoHash.toString('hex'))?.introPoints() ?? [])
      if (!ip.key.equals(mine)) out.push(ip)
    return this.#sample(out)
  }

  /** At most 7 of them, picked at random (py-ipv8 samples too). */
  #sample(records: IntroPointRecord[]): IntroductionInfo[] {
    const pool = [...records]
    const out: IntroductionInfo[] = []
    while (pool.length > 0 && out.length < MAX_INTRO_POINTS_PER_RESPONSE) {
      const [ip] = pool.splice(Math.floor(this.random() * pool.length), 1)
      if (ip !== undefined)
        out.push({ address: ip.address, key: ip.key, seederPk: ip.seederPk, source: ip.source })
    }
    return out
  }

  #ownRecord(seederPk: Buffer): IntroPointRecord {
    return {
      address: this.myWanAddress,
      key: this.myKey.publicKey.toBin(),
      seederPk,
      source: PEER_SOURCE_PEX,
      lastSeen: Math.floor(this.clock.now() / 1000),
    }
  }

  /** Announces one of our introduction points in the DHT (when there is one). */
  #announce(entry: IntroPointEntry, seederPk: string): void {
    entry.announcedMs = this.clock.now()
    const directory = this.introPointDirectory
    if (directory === undefined) return
    this.hiddenStats.dhtAnnounces += 1
    directory
      .announce(entry.infoHash, this.#ownRecord(Buffer.from(seederPk, 'hex')))
      .catch((err: unknown) => {
        log.debug('introduction point not announced in the DHT', { err })
      })
  }

  #forgetIntroPoint(seederPk: string, entry: IntroPointEntry): void {
    if (this.#introPointFor.get(seederPk) !== entry) return
    this.#introPointFor.delete(seederPk)
    const key = entry.infoHash.toString('hex')
    const pex = this.#pex.get(key)
    if (pex === undefined) return
    pex.stopAnnounce(Buffer.from(seederPk, 'hex'))
    if (pex.done) {
      this.#pex.delete(key)
      void pex.stop()
    }
  }

  /** The PEX overlay of a swarm we are an introduction point of (started on first use). */
  #pexFor(infoHash: Buffer): PexCommunity | undefined {
    const key = infoHash.toString('hex')
    const known = this.#pex.get(key)
    if (known !== undefined || !this.running) return known
    const deps = this.#deps
    const pex = new PexCommunity(
      {
        endpoint: deps.endpoint,
        key: deps.key,
        clock: this.clock,
        ...(deps.random !== undefined && { random: deps.random }),
        ...(deps.publicNetwork !== undefined && { publicNetwork: deps.publicNetwork }),
        ...(deps.bootstrapAddresses !== undefined && { bootstrapAddresses: deps.bootstrapAddresses }),
        ...(deps.transport !== undefined && { transport: deps.transport }),
      },
      infoHash,
      this.#pexSettings,
    )
    if (this.statisticsEnabled) pex.enableStatistics(true)
    this.#pex.set(key, pex)
    pex.start().catch((err: unknown) => {
      log.debug('PEX overlay did not start', { err })
      if (this.#pex.get(key) === pex) this.#pex.delete(key)
    })
    return pex
  }

  /** Introduction points of `infoHash` in the DHT, as an exit asked for peers (shared by concurrent asks). */
  #dhtLookup(infoHash: Buffer): Promise<IntroPointRecord[]> | undefined {
    const directory = this.introPointDirectory
    if (directory === undefined) return undefined
    const key = infoHash.toString('hex')
    const cached = this.#dhtLookups.get(key)
    if (cached !== undefined && this.clock.now() - cached.atMs < DHT_LOOKUP_CACHE_MS) return cached.result
    if (this.#dhtLookupsRunning >= MAX_DHT_LOOKUPS || this.#dhtLookups.size >= MAX_CACHED_LOOKUPS) {
      this.hiddenDrops.lookupsBusy += 1
      return undefined
    }
    this.#dhtLookupsRunning += 1
    this.hiddenStats.dhtLookups += 1
    const result = directory
      .lookup(infoHash)
      .catch((err: unknown) => {
        log.debug('DHT lookup failed', { err })
        return []
      })
      .finally(() => {
        this.#dhtLookupsRunning -= 1
      })
    this.#dhtLookups.set(key, { atMs: this.clock.now(), result })
    return result
  }

  #onPeersRequestCell(source: SocketAddress, payload: PeersRequestPayload, circuitId: number): void {
    if (!this.exitSockets.has(circuitId)) {
      this.hiddenDrops.unknownCircuit += 1
      return
    }
    const respond = (peers: IntroductionInfo[]): void => {
      if (!this.exitSockets.has(circuitId)) return
      this.sendCell(source, PeersResponsePayload, {
        circuitId,
        identifier: payload.identifier,
        infoHash: payload.infoHash,
        peers,
      })
    }
    const peers = this.#introPointsFor(payload.infoHash)
    if (peers.length > 0) {
      respond(peers)
      return
    }
    // as an exit: look the swarm up in the DHT for the circuit's owner
    void this.#dhtLookup(payload.infoHash)?.then((found) => respond(this.#sample(found)))
  }

  #onRawPeersRequest(data: Buffer, source: SocketAddress): boolean {
    const payload = this.#decodeRaw(PeersRequestPayload, data)
    if (payload === undefined) return false
    const peers = this.#introPointsFor(payload.infoHash)
    if (peers.length === 0) return true
    this.send(source, this.createUnsigned(PeersResponsePayload, { ...payload, peers }, { globalTime: false }))
    return true
  }

  #onPeersResponse(payload: PeersResponsePayload): void {
    const waiting = this.#peersWaiting.get(payload.identifier)
    if (waiting === undefined || !waiting.infoHash.equals(payload.infoHash)) {
      this.hiddenDrops.unknownRequest += 1
      return
    }
    const peers = payload.peers.filter((p) => p.address.port !== 0)
    if (peers.length === 0) return
    this.#peersWaiting.delete(payload.identifier)
    this.requestCache.pop('peers', payload.identifier)
    waiting.resolve(peers)
  }

  /** intro-established, rendezvous-established and linked-e2e: runs what the request left to do. */
  #onAnswer(prefix: string, identifier: number, circuitId: number, address?: SocketAddress): void {
    const key = `${prefix}:${identifier}`
    const answer = this.#answers.get(key)
    const circuit = this.circuits.get(circuitId)
    if (answer === undefined || answer.circuitId !== circuitId || circuit === undefined) {
      this.hiddenDrops.unknownRequest += 1
      return
    }
    this.#answers.delete(key)
    this.requestCache.pop(prefix, identifier)
    answer.run(address)
  }

  // --- plumbing ----------------------------------------------------------------------------------------------

  protected override onTunnelledPacket(circuit: Circuit, data: Buffer, origin: SocketAddress): void {
    const msgId = data[PREFIX_LENGTH]
    if (msgId === CreateE2EPayload.msgId && circuit.purpose === 'ip-seeder') {
      const payload = this.#decodeRaw(CreateE2EPayload, data)
      if (payload !== undefined) this.#onCreateE2eForUs(circuit, payload, origin)
    } else if (msgId === CreatedE2EPayload.msgId && circuit.purpose === 'data') {
      const payload = this.#decodeRaw(CreatedE2EPayload, data)
      if (payload !== undefined) this.#onCreatedE2e(payload)
    } else if (msgId === PeersResponsePayload.msgId && circuit.purpose === 'data') {
      const payload = this.#decodeRaw(PeersResponsePayload, data)
      if (payload !== undefined) this.#onPeersResponse(payload)
    } else {
      this.hiddenDrops.unknownCircuit += 1
    }
  }

  #decodeRaw<T>(schema: PayloadSchema<T>, data: Buffer): T | undefined {
    try {
      return schema.decode(data, PREFIX_LENGTH + 1)
    } catch {
      this.hiddenDrops.malformed += 1
      return undefined
    }
  }

  /** Runs `then` once `circuit` is ready (at once if it is). */
  #whenReady(circuit: Circuit, then: () => void): void {
    if (circuit.state === 'ready') {
      then()
      return
    }
    const offReady = this.tunnelEvents.on('circuit-ready', ({ circuit: ready }) => {
      if (ready !== circuit) return
      offReady()
      offRemoved()
      then()
    })
    const offRemoved = this.tunnelEvents.on('circuit-removed', ({ circuit: removed }) => {
      if (removed !== circuit) return
      offReady()
      offRemoved()
    })
  }
}

/** The address the other side of an end-to-end circuit appears under: Tribler's `inet_ntoa(circuit_id)`:1024. */
export function e2eAddress(circuitId: number): SocketAddress {
  return {
    host: [24, 16, 8, 0].map((shift) => (circuitId >>> shift) & 0xff).join('.'),
    port: 1024,
  }
}

/** A datagram socket over one joined end-to-end circuit. */
function e2eSocket(community: TunnelCommunity, circuit: Circuit): DatagramSocket {
  const peer = e2eAddress(circuit.circuitId)
  const handlers = new Set<DatagramHandler>()
  const stats = emptyDatagramStats()
  const off = circuit.onData((data) => {
    stats.packetsReceived += 1
    stats.bytesReceived += data.length
    for (const handler of handlers) handler(data, peer)
  })
  let closed = false
  return {
    local: ANONYMOUS_LOCAL,
    stats,
    send(data: Uint8Array): void {
      if (closed) return
      try {
        community.sendData(circuit, peer, data)
        stats.packetsSent += 1
        stats.bytesSent += data.length
      } catch {
        stats.sendErrors += 1
      }
    },
    onMessage(handler: DatagramHandler): () => void {
      handlers.add(handler)
      return () => handlers.delete(handler)
    },
    async close(): Promise<void> {
      closed = true
      off()
      handlers.clear()
    },
  }
}

/**
 * The tunnel community a Tribler node runs: hidden services under Tribler's community id
 * ({@link TRIBLER_TUNNEL_COMMUNITY_ID}), where real Tribler relays and exits are found. It is named as Tribler
 * names it in `/ipv8/overlays` and the statistics.
 */
export class TriblerTunnelCommunity extends HiddenTunnelCommunity {
  constructor(deps: TunnelCommunityDeps, options: Omit<HiddenTunnelOptions, 'communityId'> = {}) {
    super(deps, { ...options, communityId: TRIBLER_TUNNEL_COMMUNITY_ID })
  }
}
