import { randomBytes, randomInt } from 'node:crypto'
import { logger, TypedEmitter } from '../../common/index.js'
import {
  batchedUdpTransport,
  type DatagramTransport,
  formatAddress,
  type SocketAddress,
} from '../../net/index.js'
import {
  Community,
  type CommunityDeps,
  type CommunitySettings,
  Peer,
  sameAddress,
} from '../community/index.js'
import { PublicKey } from '../keys/index.js'
import { NO_ADDRESS, type PayloadSchema, PREFIX_LENGTH } from '../serialization/index.js'
import { Circuit, type Hop, type RelayRoute, type RequiredExit } from './circuit.js'
import {
  completeKeyExchange,
  decryptLayer,
  deriveSessionKeys,
  encryptLayer,
  generateEphemeralKey,
  onionEncrypt,
  onionOpen,
  openLayer,
  respondToKeyExchange,
  type SessionKeys,
  sealLayer,
  withReplayProtection,
} from './crypto.js'
import { TunnelError } from './errors.js'
import { type ExitLookup, ExitSocket, exitAllows, systemExitLookup } from './exit-socket.js'
import {
  CandidateList,
  CELL_MESSAGE_OFFSET,
  type Cell,
  CreatedPayload,
  CreatePayload,
  cellMessage,
  couldBeIpv8,
  DataPayload,
  DestroyPayload,
  dataCellHeader,
  dataCellMessage,
  decodeCell,
  decodeCellMessage,
  decodeDataCellMessage,
  ExtendedPayload,
  ExtendPayload,
  ExtraIntroductionPayload,
  encodeCell,
  PingPayload,
  PLAINTEXT_MESSAGE_IDS,
  PongPayload,
  TestRequestPayload,
  TestResponsePayload,
  writeCellHeader,
} from './payloads.js'
import { RelaySlots } from './slots.js'
import {
  BACKWARD,
  type CircuitId,
  type CircuitInfo,
  type CircuitPurpose,
  DEFAULT_TUNNEL_SETTINGS,
  DESTROY_REASON_SHUTDOWN,
  DESTROY_REASON_UNKNOWN,
  FORWARD,
  type JoinedInfo,
  PEER_FLAG_EXIT_BT,
  PEER_FLAG_EXIT_IPV8,
  PEER_FLAG_RELAY,
  PEER_FLAG_SPEED_TEST,
  TUNNEL_COMMUNITY_ID,
  type TunnelDropCounters,
  type TunnelSettings,
} from './types.js'

const log = logger('ipv8:tunnel')

/** Longest circuit the community builds. */
export const MAX_HOPS = 3

/** What the tunnel community needs beyond a plain community. */
export interface TunnelCommunityDeps extends CommunityDeps {
  /** Where exit sockets come from (default real UDP). */
  exitTransport?: DatagramTransport
  /** How the exit resolves domain destinations of data cells (default the system resolver). */
  exitLookup?: ExitLookup
}

/** Options of the tunnel community. */
export interface TunnelCommunityOptions extends CommunitySettings {
  /** Tunnel settings; unset fields take py-ipv8's defaults. */
  tunnel?: Partial<TunnelSettings>
  /** The community id (default py-ipv8's; Tribler's is {@link TRIBLER_TUNNEL_COMMUNITY_ID}). */
  communityId?: Uint8Array
  /** Host the exit binds its IPv4 socket to (default 0.0.0.0). */
  exitBindHost?: string
}

/** Events of the tunnel community. */
export interface TunnelEvents {
  'circuit-ready': { circuit: Circuit }
  'circuit-removed': { circuit: Circuit; reason: string }
}

interface CreatedRequest {
  readonly previous: { address: SocketAddress; publicKey: PublicKey }
  readonly candidates: Map<string, Peer>
}

interface CreateRequest {
  readonly extendIdentifier: number
  readonly toCircuitId: CircuitId
  readonly fromCircuitId: CircuitId
  readonly previous: { address: SocketAddress; publicKey: PublicKey }
  readonly next: { address: SocketAddress; publicKey: PublicKey }
}

interface RetryRequest {
  readonly circuit: Circuit
  readonly packetIdentifier: number
}

interface SpeedTestRequest {
  readonly circuitId: CircuitId
  onTimeout(): void
  onResponse(bytes: number): void
}

type CellHandler<T> = (source: SocketAddress, payload: T, circuitId: CircuitId) => void

/**
 * Onion routing over IPv8, wire-compatible with py-ipv8's TunnelCommunity: builds circuits of 1–3 hops with
 * create/created/extend/extended, relays other nodes' cells, and (when `exit` is set) exits UDP traffic that
 * looks like BitTorrent or IPv8 to the internet and tunnels the replies back.
 *
 * @example
 * ```ts
 * const tunnels = new TunnelCommunity({ endpoint, key }, { tunnel: { exit: false } })
 * await tunnels.start()
 * const circuit = await tunnels.circuit(2, { timeoutMs: 30_000 })
 * circuit.onData((data, from) => console.log('reply from', from))
 * tunnels.sendData(circuit, { host: '198.51.100.7', port: 6969 }, trackerRequest)
 * ```
 */
export class TunnelCommunity extends Community {
  readonly settings: TunnelSettings
  readonly tunnelEvents = new TypedEmitter<TunnelEvents>()
  /** Circuits this node originated, by circuit id. */
  readonly circuits = new Map<CircuitId, Circuit>()
  /** Relay routes: cells arriving under the key go on as the route says. */
  readonly relays = new Map<CircuitId, RelayRoute>()
  /** Exit sockets (last hop of someone's circuit), by circuit id. */
  readonly exitSockets = new Map<CircuitId, ExitSocket>()
  /** Flags each verified peer advertised, by mid (hex). */
  readonly candidates = new Map<string, number[]>()
  /** Cells dropped, by reason. */
  readonly drops: TunnelDropCounters = {
    malformed: 0,
    unknownCircuit: 0,
    decryptFailed: 0,
    replayed: 0,
    relayEarly: 0,
    exitRefused: 0,
    exitUnresolved: 0,
    noSlot: 0,
    unauthorizedDestroy: 0,
    unexpected: 0,
  }
  /** Circuits wanted per hop count. */
  readonly circuitsNeeded = new Map<number, number>()
  /**
   * Tribler's relay slots, keyed by the circuit id the previous hop chose; undefined unless
   * `settings.relaySlots` is set.
   */
  readonly slots: RelaySlots | undefined
  readonly #exitTransport: DatagramTransport
  readonly #exitBindHost: string
  readonly #exitLookup: ExitLookup
  readonly #cellHandlers = new Map<number, [PayloadSchema<{ circuitId: number }>, CellHandler<never>]>()
  readonly #myFlags: number[]
  readonly #removing = new Set<string>()

  constructor(deps: TunnelCommunityDeps, options: TunnelCommunityOptions = {}) {
    super(deps, options.communityId ?? TUNNEL_COMMUNITY_ID, options)
    this.settings = { ...DEFAULT_TUNNEL_SETTINGS, ...options.tunnel }
    this.#exitTransport = deps.exitTransport ?? batchedUdpTransport
    this.#exitBindHost = options.exitBindHost ?? '0.0.0.0'
    this.#exitLookup = deps.exitLookup ?? systemExitLookup
    const slots = this.settings.relaySlots
    this.slots = slots === undefined ? undefined : new RelaySlots(slots.random, slots.competing)
    const flags = new Set([PEER_FLAG_RELAY, PEER_FLAG_SPEED_TEST, ...this.settings.extraFlags])
    if (this.settings.exit) {
      flags.add(PEER_FLAG_EXIT_BT)
      flags.add(PEER_FLAG_EXIT_IPV8)
    }
    this.#myFlags = [...flags].sort((a, b) => a - b)

    this.addRawHandler(0, (data, source) => this.#onCell(data, source))
    this.addSignedHandler(
      DestroyPayload,
      (peer, payload, ctx) => this.#onDestroy(peer, payload, ctx.source),
      {
        globalTime: false,
      },
    )
    this.addCellHandler(DataPayload, (s, p, c) => this.#onData(s, p, c))
    this.addCellHandler(CreatePayload, (s, p) => this.#onCreate(s, p))
    this.addCellHandler(CreatedPayload, (s, p) => this.#onCreated(s, p))
    this.addCellHandler(ExtendPayload, (s, p) => this.#onExtend(s, p))
    this.addCellHandler(ExtendedPayload, (_s, p) => this.#onExtended(p))
    this.addCellHandler(PingPayload, (s, p) => this.#onPing(s, p))
    this.addCellHandler(PongPayload, (_s, p) => this.#onPong(p))
    this.addCellHandler(TestRequestPayload, (s, p) => this.#onTestRequest(s, p))
    this.addCellHandler(TestResponsePayload, (_s, p) => this.#onTestResponse(p))
  }

  /** The flags this node advertises. */
  get peerFlags(): readonly number[] {
    return this.#myFlags
  }

  override async start(): Promise<void> {
    await super.start()
    this.tasks.every('do-circuits', 5_000, () => this.doCircuits(), { now: true })
    this.tasks.every('do-ping', this.settings.pingIntervalMs, () => this.doPing())
  }

  override async stop(): Promise<void> {
    for (const circuit of [...this.circuits.values()]) {
      if (circuit.state !== 'closing') this.#destroyCircuit(circuit, DESTROY_REASON_SHUTDOWN)
    }
    for (const route of this.relays.values())
      this.#sendDestroy(route.address, route.circuitId, DESTROY_REASON_SHUTDOWN)
    for (const exit of this.exitSockets.values()) {
      this.#sendDestroy(exit.address, exit.circuitId, DESTROY_REASON_SHUTDOWN)
      await exit.close()
    }
    for (const circuit of this.circuits.values()) this.#closeCircuit(circuit, 'shutdown')
    this.circuits.clear()
    this.relays.clear()
    this.exitSockets.clear()
    this.slots?.clear()
    await super.stop()
  }

  // --- peer flags on introductions -------------------------------------------------------------------------

  protected override introductionRequestExtraBytes(): Buffer {
    return ExtraIntroductionPayload.encode({ flags: this.#myFlags })
  }

  protected override introductionResponseExtraBytes(): Buffer {
    return ExtraIntroductionPayload.encode({ flags: this.#myFlags })
  }

  protected override onIntroductionExtraBytes(peer: Peer, extraBytes: Buffer): void {
    if (extraBytes.length === 0) {
      this.candidates.set(peer.midHex, [])
      return
    }
    try {
      this.candidates.set(peer.midHex, ExtraIntroductionPayload.decode(extraBytes).flags)
    } catch {
      this.drops.malformed += 1
    }
  }

  /** Verified peers that advertise every one of `flags`. */
  getCandidates(...flags: number[]): Peer[] {
    const out: Peer[] = []
    for (const peer of this.network.peers) {
      const theirs = this.candidates.get(peer.midHex)
      if (theirs !== undefined && flags.every((f) => theirs.includes(f))) out.push(peer)
    }
    return out
  }

  // --- circuits we originate --------------------------------------------------------------------------------

  /**
   * Keeps `count` circuits of `hops` hops (clamped to minCircuits..maxCircuits) and builds the missing ones now.
   */
  buildTunnels(hops: number, count = this.settings.maxCircuits): void {
    if (!Number.isInteger(hops) || hops < 1 || hops > MAX_HOPS) throw new TunnelError('BAD_REQUEST', { hops })
    const wanted = Math.min(Math.max(count, this.settings.minCircuits), this.settings.maxCircuits)
    this.circuitsNeeded.set(hops, wanted)
    this.doCircuits()
  }

  /** Stops keeping circuits of `hops` hops (existing ones live until they expire). */
  stopTunnels(hops: number): void {
    this.circuitsNeeded.delete(hops)
  }

  /** Ready fraction of the circuits wanted at `hops` hops. */
  tunnelsReady(hops: number): number {
    const wanted = this.circuitsNeeded.get(hops) ?? 0
    if (wanted === 0) return 1
    return Math.min(1, this.findCircuits({ hops }).length / wanted)
  }

  /** Builds missing circuits and removes idle, old or overused ones. */
  doCircuits(): void {
    if (!this.running) return
    for (const [hops, wanted] of this.circuitsNeeded) {
      const have = [...this.circuits.values()].filter(
        (c) => c.purpose === 'data' && c.goalHops === hops && c.state !== 'closing',
      ).length
      for (let i = have; i < wanted; i++) if (this.createCircuit(hops) === undefined) break
    }
    this.#doRemove()
  }

  /** Circuits in a state (default ready) and of a length. */
  findCircuits(
    filter: { hops?: number; state?: Circuit['state']; purpose?: CircuitPurpose } = {},
  ): Circuit[] {
    const state = filter.state ?? 'ready'
    const purpose = filter.purpose ?? 'data'
    return [...this.circuits.values()].filter(
      (c) =>
        c.state === state &&
        c.purpose === purpose &&
        (filter.hops === undefined || c.goalHops === filter.hops),
    )
  }

  /**
   * Resolves with a ready circuit of `hops` hops, asking for circuits of that length if none is wanted yet.
   * Rejects with `NO_CIRCUIT` after `timeoutMs` (default the circuit timeout) or when `signal` aborts.
   */
  circuit(hops: number, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Circuit> {
    const ready = this.findCircuits({ hops })
    const pick = ready[Math.floor(this.random() * ready.length)]
    if (pick !== undefined) return Promise.resolve(pick)
    if (!this.circuitsNeeded.has(hops)) this.buildTunnels(hops, this.settings.minCircuits)
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(
        () => finish(new TunnelError('NO_CIRCUIT', { hops })),
        opts.timeoutMs ?? this.settings.circuitTimeoutMs,
      )
      const onAbort = (): void => finish(new TunnelError('NO_CIRCUIT', { hops, reason: 'aborted' }))
      const off = this.tunnelEvents.on('circuit-ready', ({ circuit }) => {
        if (circuit.goalHops === hops && circuit.purpose === 'data') finish(circuit)
      })
      const finish = (result: Circuit | TunnelError): void => {
        this.clock.clearTimeout(timer)
        off()
        opts.signal?.removeEventListener('abort', onAbort)
        if (result instanceof TunnelError) reject(result)
        else resolve(result)
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Starts one circuit of `goalHops` hops; returns undefined when no first hop (or exit, for 1 hop) is known.
   * `requiredExit` makes that peer the last hop (hidden services use it to reach a rendezvous point).
   */
  createCircuit(
    goalHops: number,
    opts: { purpose?: CircuitPurpose; requiredExit?: RequiredExit } = {},
  ): Circuit | undefined {
    if (!this.running) return undefined
    if (!Number.isInteger(goalHops) || goalHops < 1 || goalHops > MAX_HOPS)
      throw new TunnelError('BAD_REQUEST', { hops: goalHops })
    let firstHops: Peer[]
    const required = opts.requiredExit
    if (goalHops === 1 && required !== undefined) {
      firstHops = [new Peer(required.publicKey, required.address, this.clock.now())]
    } else if (goalHops === 1) {
      const exits = this.getCandidates(PEER_FLAG_EXIT_BT)
      const exit = exits[Math.floor(this.random() * exits.length)]
      if (exit === undefined) return undefined
      firstHops = [exit]
    } else {
      // Least-used first hops first; exits count double so relays are preferred as first hop.
      const uses = new Map<string, number>()
      for (const c of this.circuits.values()) {
        const first = c.firstHop?.publicKey.mid.toString('hex')
        if (first !== undefined) uses.set(first, (uses.get(first) ?? 0) + 1)
      }
      for (const p of this.getCandidates(PEER_FLAG_EXIT_BT)) uses.set(p.midHex, (uses.get(p.midHex) ?? 0) + 1)
      const requiredMid = required?.publicKey.mid.toString('hex')
      const relays = this.getCandidates(PEER_FLAG_RELAY).filter((p) => p.midHex !== requiredMid)
      firstHops = shuffle(relays, this.random).sort(
        (a, b) => (uses.get(a.midHex) ?? 0) - (uses.get(b.midHex) ?? 0),
      )
    }
    const first = firstHops[0]
    if (first === undefined) return undefined
    const circuit = new Circuit(this.#newCircuitId(), goalHops, this.clock.now())
    circuit.purpose = opts.purpose ?? 'data'
    circuit.requiredExit = required
    this.circuits.set(circuit.circuitId, circuit)
    const maxTries = Math.floor(this.settings.circuitTimeoutMs / this.settings.nextHopTimeoutMs)
    this.#sendInitialCreate(circuit, firstHops, maxTries)
    return circuit
  }

  /** Sends one datagram through a ready circuit to `destination`; the exit sends it on from its own address. */
  sendData(circuit: Circuit, destination: SocketAddress, data: Uint8Array): void {
    if (circuit.state !== 'ready' || this.circuits.get(circuit.circuitId) !== circuit)
      throw new TunnelError('CIRCUIT_CLOSED', { circuitId: circuit.circuitId })
    const first = circuit.hops[0]?.address
    if (first === undefined) throw new TunnelError('CIRCUIT_CLOSED', { circuitId: circuit.circuitId })
    this.sendCell(first, DataPayload, {
      circuitId: circuit.circuitId,
      destination,
      origin: NO_ADDRESS,
      data: Buffer.isBuffer(data) ? data : Buffer.from(data),
    })
  }

  /**
   * py-ipv8's speed test: sends `requestBytes` of random data to the circuit's exit, which answers with
   * `responseBytes` (at most 65535). Resolves with the round-trip time; rejects with `NO_CIRCUIT` when no
   * answer came within `timeoutMs` (default 10 s).
   */
  speedTest(
    circuit: Circuit,
    opts: { requestBytes?: number; responseBytes?: number; timeoutMs?: number } = {},
  ): Promise<{ rttMs: number; responseBytes: number }> {
    const first = circuit.hops[0]?.address
    if (circuit.state !== 'ready' || first === undefined)
      return Promise.reject(new TunnelError('CIRCUIT_CLOSED', { circuitId: circuit.circuitId }))
    const responseSize = opts.responseBytes ?? 0
    if (!Number.isInteger(responseSize) || responseSize < 0 || responseSize > 0xffff)
      return Promise.reject(new TunnelError('BAD_REQUEST', { responseBytes: responseSize }))
    return new Promise((resolve, reject) => {
      const sentAt = this.clock.monotonic()
      const entry: SpeedTestRequest = {
        circuitId: circuit.circuitId,
        onTimeout: () =>
          reject(new TunnelError('NO_CIRCUIT', { circuitId: circuit.circuitId, reason: 'no answer' })),
        onResponse: (bytes) => resolve({ rttMs: this.clock.monotonic() - sentAt, responseBytes: bytes }),
      }
      const identifier = this.requestCache.add('test-request', entry, { timeoutMs: opts.timeoutMs ?? 10_000 })
      this.sendCell(first, TestRequestPayload, {
        circuitId: circuit.circuitId,
        identifier,
        responseSize,
        data: randomBytes(opts.requestBytes ?? 0),
      })
    })
  }

  /** Removes one of our circuits, telling the first hop unless `destroy` is false. */
  removeCircuit(circuitId: CircuitId, reason: string, destroy: number | false = false): void {
    const circuit = this.circuits.get(circuitId)
    if (circuit === undefined || circuit.state === 'closing') return
    this.requestCache.pop('retry', circuitId)
    if (destroy !== false) this.#destroyCircuit(circuit, destroy)
    this.#closeCircuit(circuit, reason)
    this.#later(`remove-circuit-${circuitId}`, () => {
      if (this.circuits.get(circuitId) === circuit) this.circuits.delete(circuitId)
    })
  }

  /** Pings every circuit's exit; replies keep the circuit alive. */
  doPing(): void {
    for (const circuit of this.circuits.values()) {
      const first = circuit.hops[0]?.address
      if ((circuit.state !== 'ready' && circuit.state !== 'extending') || first === undefined) continue
      // a joined end-to-end circuit ends at the other side, not at an exit that would answer
      if (circuit.hsKeys !== undefined || circuit.purpose === 'rp-seeder') continue
      let identifier: number
      try {
        identifier = this.requestCache.add(
          'ping',
          { onTimeout: () => {} },
          { timeoutMs: this.settings.pingIntervalMs + 5_000 },
        )
      } catch {
        return
      }
      this.sendCell(first, PingPayload, { circuitId: circuit.circuitId, identifier })
    }
  }

  /** What the debug endpoints show of our circuits. */
  circuitInfos(): CircuitInfo[] {
    return [...this.circuits.values()].map((c) => ({
      circuitId: c.circuitId,
      goalHops: c.goalHops,
      actualHops: c.hops.length,
      state: c.state,
      type: c.purpose,
      bytesUp: c.bytesUp,
      bytesDown: c.bytesDown,
      createdAtMs: c.createdAtMs,
      firstHop: c.hops[0]?.address === undefined ? undefined : formatAddress(c.hops[0].address),
      exitFlags: c.hops.at(-1)?.flags ?? [],
    }))
  }

  /** What the debug endpoints show of the relays and exits we carry for others. */
  joinedInfos(): JoinedInfo[] {
    const relays = [...this.relays].map(([circuitId, r]) => ({
      circuitId,
      role: 'relay' as const,
      bytesUp: r.bytesUp,
      bytesDown: r.bytesDown,
      createdAtMs: r.createdAtMs,
      peer: formatAddress(r.address),
    }))
    const exits = [...this.exitSockets.values()].map((e) => ({
      circuitId: e.circuitId,
      role: 'exit' as const,
      bytesUp: e.bytesUp,
      bytesDown: e.bytesDown,
      createdAtMs: e.createdAtMs,
      peer: formatAddress(e.address),
    }))
    return [...relays, ...exits]
  }

  // --- hooks for hidden services ----------------------------------------------------------------------------

  /**
   * A packet of this community that came back through one of our circuits (hidden services carry their
   * create-e2e and created-e2e this way). The plain tunnel community handles none.
   */
  protected onTunnelledPacket(circuit: Circuit, _data: Buffer, _origin: SocketAddress): void {
    log.debug('dropping tunnelled community packet', { circuitId: circuit.circuitId })
    this.drops.unexpected += 1
  }

  /**
   * Sends a packet of this community as data: through our circuit to `destination`, or from an exit back to
   * its originator as if it came from `destination`.
   */
  protected tunnelPacket(via: Circuit | ExitSocket, destination: SocketAddress, packet: Buffer): void {
    if (via instanceof ExitSocket) this.#tunnelBack(via, packet, destination)
    else this.sendData(via, destination, packet)
  }

  /**
   * Joins two exit sockets into a rendezvous relay: a cell arriving on either loses that side's layer and
   * gains the other side's, so the two originators talk through this node without it reading the payload.
   * Both exits must not have opened sockets. Returns false when they cannot be joined.
   */
  protected joinExits(a: CircuitId, b: CircuitId): boolean {
    const one = this.exitSockets.get(a)
    const two = this.exitSockets.get(b)
    if (one === undefined || two === undefined || a === b || one.enabled || two.enabled) return false
    this.exitSockets.delete(a)
    this.exitSockets.delete(b)
    void one.close()
    void two.close()
    const now = this.clock.now()
    const route = (from: ExitSocket, to: ExitSocket): RelayRoute => ({
      circuitId: to.circuitId,
      address: to.address,
      publicKey: to.publicKey,
      keys: from.keys,
      rendezvousKeys: to.keys,
      direction: FORWARD,
      createdAtMs: now,
      bytesUp: 0,
      bytesDown: 0,
      relayEarlyCount: 0,
      lastActivityMs: now,
    })
    this.relays.set(a, route(one, two))
    this.relays.set(b, route(two, one))
    return true
  }

  // --- cells ------------------------------------------------------------------------------------------------

  /**
   * A cell from the neighbour on one of this node's circuits, relay routes or exits is traffic it agreed to
   * carry: the endpoint's flood limit would otherwise cap a circuit at about 20 MB/s. Cells from any other
   * address, or under a circuit id the source is not a hop of, still count as unsolicited.
   */
  protected override isEstablishedTraffic(data: Buffer, source: SocketAddress): boolean {
    if (data.length < CELL_MESSAGE_OFFSET || data[PREFIX_LENGTH] !== 0) return false
    const circuitId = data.readUInt32BE(PREFIX_LENGTH + 1)
    const route = this.relays.get(circuitId)
    if (route !== undefined) {
      // cells under this id come from the neighbour that the reverse route sends to
      const back = this.relays.get(route.circuitId)
      return back !== undefined && sameAddress(back.address, source)
    }
    const exit = this.exitSockets.get(circuitId)
    if (exit !== undefined) return sameAddress(exit.address, source)
    const first = this.circuits.get(circuitId)?.hops[0]?.address
    return first !== undefined && sameAddress(first, source)
  }

  /** Registers the handler of a cell message id (subclasses add the hidden-service ones). */
  protected addCellHandler<T extends { circuitId: number }>(
    schema: PayloadSchema<T>,
    handler: CellHandler<T>,
  ): void {
    this.#cellHandlers.set(schema.msgId, [
      schema as unknown as PayloadSchema<{ circuitId: number }>,
      handler as CellHandler<never>,
    ])
  }

  #newCircuitId(): CircuitId {
    for (;;) {
      const id = randomInt(0, 0x100000000)
      if (!this.circuits.has(id) && !this.relays.has(id) && !this.exitSockets.has(id)) return id
    }
  }

  /** Encrypts a cell as the tables say and sends it straight to a neighbour. */
  protected sendCell<T extends { circuitId: number }>(
    to: SocketAddress,
    schema: PayloadSchema<T>,
    value: T,
  ): void {
    if (schema.msgId === DataPayload.msgId) {
      const data = value as unknown as DataPayload
      this.#sendDataCell(to, value.circuitId, data.destination, data.origin, data.data)
      return
    }
    this.#sendMessage(to, value.circuitId, schema.msgId, cellMessage(schema, value))
  }

  /**
   * A data cell from one of our circuits or an exit, built in one buffer: the payload is copied once, behind room
   * for every layer's counter and the cell header, and each layer is sealed in place.
   */
  #sendDataCell(
    to: SocketAddress,
    circuitId: CircuitId,
    destination: SocketAddress,
    origin: SocketAddress,
    data: Buffer,
  ): void {
    const circuit = this.circuits.get(circuitId)
    const exit = circuit === undefined ? this.exitSockets.get(circuitId) : undefined
    if (circuit === undefined && exit === undefined) {
      this.#sendMessage(to, circuitId, DataPayload.msgId, dataCellMessage(destination, origin, data))
      return
    }
    const header = dataCellHeader(destination, origin)
    const layers = circuit === undefined ? 1 : circuit.hops.length + (circuit.hsKeys === undefined ? 0 : 1)
    let start = CELL_MESSAGE_OFFSET + 8 * layers
    let end = start + header.length + data.length
    const packet = Buffer.allocUnsafe(end + 16 * layers)
    packet.set(header, start)
    packet.set(data, start + header.length)
    if (circuit === undefined) sealLayer(packet, start, end, (exit as ExitSocket).keys, BACKWARD)
    else {
      if (circuit.hsKeys !== undefined) {
        // end-to-end circuits carry one more layer under the session keys agreed with the other side
        sealLayer(packet, start, end, circuit.hsKeys, circuit.purpose === 'rp-seeder' ? FORWARD : BACKWARD)
        start -= 8
        end += 16
      }
      for (let i = circuit.hops.length - 1; i >= 0; i--) {
        sealLayer(packet, start, end, circuit.hops[i]?.keys as SessionKeys, FORWARD)
        start -= 8
        end += 16
      }
    }
    writeCellHeader(packet, this.prefix, circuitId, this.#relayEarly(circuit, DataPayload.msgId))
    this.#sent(to, circuitId, circuit, packet)
  }

  /** Whether our cell goes out flagged relay-early: an extend always, otherwise the first few of a circuit. */
  #relayEarly(circuit: Circuit | undefined, msgId: number): boolean {
    if (circuit === undefined) return false
    const relayEarly = msgId === ExtendPayload.msgId || circuit.relayEarlyCount < this.settings.maxRelayEarly
    if (relayEarly) circuit.relayEarlyCount += 1
    return relayEarly
  }

  /** Sends a finished cell and counts it against its circuit, relay route or exit. */
  #sent(to: SocketAddress, circuitId: CircuitId, circuit: Circuit | undefined, packet: Buffer): void {
    this.send(to, packet)
    if (circuit !== undefined) circuit.bytesUp += packet.length
    else {
      const route = this.relays.get(circuitId) ?? this.exitSockets.get(circuitId)
      if (route !== undefined) route.bytesUp += packet.length
    }
  }

  #sendMessage(to: SocketAddress, circuitId: CircuitId, msgId: number, message: Buffer): void {
    const circuit = this.circuits.get(circuitId)
    const relayEarly = this.#relayEarly(circuit, msgId)
    let packet: Buffer
    if (PLAINTEXT_MESSAGE_IDS.has(msgId)) {
      packet = encodeCell(this.prefix, { circuitId, plaintext: true, relayEarly, message })
    } else {
      let sealed: Buffer
      if (circuit !== undefined) {
        // end-to-end circuits carry one more layer under the session keys agreed with the other side
        const inner =
          circuit.hsKeys === undefined
            ? message
            : encryptLayer(message, circuit.hsKeys, circuit.purpose === 'rp-seeder' ? FORWARD : BACKWARD)
        sealed = onionEncrypt(inner, circuit.hopKeys, CELL_MESSAGE_OFFSET)
      } else {
        const exit = this.exitSockets.get(circuitId)
        const relay = this.relays.get(circuitId)
        if (exit !== undefined) sealed = encryptLayer(message, exit.keys, BACKWARD, CELL_MESSAGE_OFFSET)
        else if (relay !== undefined) {
          // only right after a created was turned into relay routes: the extended goes back one layer deep
          const back = this.relays.get(relay.circuitId)
          if (back === undefined) return
          sealed = encryptLayer(message, back.keys, back.direction, CELL_MESSAGE_OFFSET)
        } else {
          log.debug('no keys for cell', { circuitId, msgId })
          return
        }
      }
      packet = writeCellHeader(sealed, this.prefix, circuitId, relayEarly)
    }
    this.#sent(to, circuitId, circuit, packet)
  }

  #onCell(data: Buffer, source: SocketAddress): boolean {
    let cell: Cell
    try {
      cell = decodeCell(data)
    } catch {
      this.drops.malformed += 1
      return false
    }
    const circuitId = cell.circuitId
    const route = this.relays.get(circuitId)
    if (route !== undefined) return this.#relayCell(cell, route, data)

    const circuit = this.circuits.get(circuitId)
    const exit = this.exitSockets.get(circuitId)
    let message = cell.message
    if (!cell.plaintext) {
      // the datagram is ours alone: its layers are opened in place, without a buffer per layer
      try {
        if (exit !== undefined) message = openLayer(message, exit.keys, FORWARD)
        else if (circuit !== undefined && circuit.hops.length > 0) {
          message = onionOpen(message, circuit.hopKeys)
          if (circuit.hsKeys !== undefined)
            message = decryptLayer(
              message,
              circuit.hsKeys,
              circuit.purpose === 'rp-downloader' ? FORWARD : BACKWARD,
            )
        } else {
          this.drops.unknownCircuit += 1
          return false
        }
      } catch (err) {
        this.#countDecryptError(err)
        return false
      }
    }
    const msgId = message[0] as number
    if (msgId === ExtendPayload.msgId && !cell.relayEarly) {
      this.drops.relayEarly += 1
      return false
    }
    if (cell.plaintext && !PLAINTEXT_MESSAGE_IDS.has(msgId)) {
      this.drops.malformed += 1
      return false
    }
    const entry = this.#cellHandlers.get(msgId)
    if (entry === undefined) {
      this.drops.malformed += 1
      return false
    }
    let payload: { circuitId: number }
    try {
      payload =
        msgId === DataPayload.msgId
          ? decodeDataCellMessage(circuitId, message)
          : decodeCellMessage(entry[0], circuitId, message)
    } catch {
      this.drops.malformed += 1
      return false
    }
    ;(entry[1] as CellHandler<{ circuitId: number }>)(source, payload, circuitId)
    if (circuit !== undefined && this.circuits.get(circuitId) === circuit) {
      circuit.lastActivityMs = this.clock.now()
      circuit.bytesDown += data.length
    }
    if (exit !== undefined) exit.bytesDown += data.length
    return true
  }

  #relayCell(cell: Cell, next: RelayRoute, data: Buffer): boolean {
    const length = data.length
    if (cell.plaintext) {
      this.drops.malformed += 1
      return false
    }
    if (cell.relayEarly && next.relayEarlyCount >= this.settings.maxRelayEarly) {
      this.drops.relayEarly += 1
      return false
    }
    let packet: Buffer
    try {
      const rendezvous = next.rendezvousKeys
      if (rendezvous === undefined && next.direction === FORWARD) {
        // peeled in place: the plaintext stays where the ciphertext was and the new header goes over the old
        // header's tail and the spent counter, so the cell leaves from the buffer it arrived in
        const inner = openLayer(cell.message, next.keys, FORWARD)
        packet = data.subarray(8, CELL_MESSAGE_OFFSET + 8 + inner.length)
      } else {
        packet =
          rendezvous !== undefined
            ? encryptLayer(
                decryptLayer(cell.message, next.keys, FORWARD),
                rendezvous,
                BACKWARD,
                CELL_MESSAGE_OFFSET,
              )
            : encryptLayer(cell.message, next.keys, BACKWARD, CELL_MESSAGE_OFFSET)
      }
    } catch (err) {
      this.#countDecryptError(err)
      return false
    }
    const now = this.clock.now()
    const back = this.relays.get(next.circuitId)
    if (back !== undefined) {
      back.lastActivityMs = now
      back.bytesDown += length
    }
    writeCellHeader(packet, this.prefix, next.circuitId, cell.relayEarly)
    this.send(next.address, packet)
    next.bytesUp += packet.length
    next.lastActivityMs = now
    if (cell.relayEarly) next.relayEarlyCount += 1
    return true
  }

  #countDecryptError(err: unknown): void {
    if (err instanceof TunnelError && err.code === 'REPLAY') this.drops.replayed += 1
    else this.drops.decryptFailed += 1
  }

  // --- joining other nodes' circuits ------------------------------------------------------------------------

  #onCreate(source: SocketAddress, payload: CreatePayload): void {
    if (this.#myFlags.length === 0) return
    if (
      this.requestCache.has('created', payload.circuitId) ||
      this.exitSockets.has(payload.circuitId) ||
      this.relays.has(payload.circuitId)
    ) {
      this.drops.unexpected += 1
      return
    }
    // Refusals send nothing back: the initiator's create times out and it tries another peer (py-ipv8).
    if (this.relays.size + this.exitSockets.size >= this.settings.maxJoinedCircuits) {
      log.debug('too many joined circuits, refusing create', { circuitId: payload.circuitId })
      this.drops.noSlot += 1
      return
    }
    let previousKey: PublicKey
    let answer: ReturnType<typeof respondToKeyExchange>
    try {
      previousKey = PublicKey.fromBin(payload.nodePublicKey)
      answer = respondToKeyExchange(payload.key, this.key.curveSecretKey)
    } catch {
      this.drops.malformed += 1
      return
    }
    if (this.slots !== undefined) {
      const admission = this.slots.admit(payload.circuitId, () => this.initiatorBalance(payload.circuitId))
      if (!admission.admitted) {
        log.debug('no relay slot, refusing create', { circuitId: payload.circuitId })
        this.drops.noSlot += 1
        return
      }
      if (admission.evicted !== undefined) this.#evict(admission.evicted)
    }
    const keys = withReplayProtection(deriveSessionKeys(answer.shared))
    // Up to 4 relay-only peers, then up to 4 exits with the first exit listed twice to mark the boundary.
    const previousMid = previousKey.mid.toString('hex')
    const usable = (p: Peer): boolean => p.midHex !== previousMid
    let exits = this.getCandidates(PEER_FLAG_EXIT_BT, PEER_FLAG_RELAY).filter(usable).slice(0, 4)
    if (exits.length > 0) exits = [exits[0] as Peer, ...exits]
    const relays = this.getCandidates(PEER_FLAG_RELAY)
      .filter((p) => usable(p) && !(this.candidates.get(p.midHex) ?? []).includes(PEER_FLAG_EXIT_BT))
      .slice(0, 4)
    const listed = [...relays, ...exits]
    const candidates = new Map(listed.map((p) => [p.publicKey.toBin().toString('hex'), p]))
    const previous = { address: source, publicKey: previousKey }
    this.requestCache.add(
      'created',
      { onTimeout: () => {}, previous, candidates } as CreatedRequest & { onTimeout(): void },
      { number: payload.circuitId, timeoutMs: this.settings.unstableTimeoutMs },
    )
    const candidatesEnc = encryptLayer(
      CandidateList.encode({ keys: listed.map((p) => p.publicKey.toBin()) }),
      keys,
      FORWARD,
    )
    const exit = new ExitSocket(payload.circuitId, source, previousKey, keys, {
      transport: this.#exitTransport,
      bindHost: this.#exitBindHost,
      lookup: this.#exitLookup,
      isAllowed: (data) => exitAllows(data, this.#myFlags, this.prefix),
      tunnel: (socket, data, origin) => this.#tunnelBack(socket, data, origin),
      refused: () => {
        this.drops.exitRefused += 1
      },
      unresolved: () => {
        this.drops.exitUnresolved += 1
      },
      now: () => this.clock.now(),
    })
    this.exitSockets.set(payload.circuitId, exit)
    this.sendCell(source, CreatedPayload, {
      circuitId: payload.circuitId,
      identifier: payload.identifier,
      key: answer.key,
      auth: answer.auth,
      candidatesEnc,
    })
  }

  #onExtend(source: SocketAddress, payload: ExtendPayload): void {
    if (!this.#myFlags.includes(PEER_FLAG_RELAY)) return
    const request = this.requestCache.get<CreatedRequest & { onTimeout(): void }>(
      'created',
      payload.circuitId,
    )
    const exit = this.exitSockets.get(payload.circuitId)
    if (request === undefined || exit === undefined || !sameAddress(exit.address, source)) {
      this.drops.unexpected += 1
      return
    }
    const keyHex = payload.nodePublicKey.toString('hex')
    const listed = request.candidates.get(keyHex)
    let next: { address: SocketAddress; publicKey: PublicKey }
    if (listed !== undefined) next = { address: listed.address, publicKey: listed.publicKey }
    else {
      if (payload.nodeAddress.port === 0) {
        this.drops.unexpected += 1
        return
      }
      try {
        const publicKey = PublicKey.fromBin(payload.nodePublicKey)
        const known = this.network.getPeer(publicKey.mid)
        next = { address: known?.address ?? payload.nodeAddress, publicKey }
      } catch {
        this.drops.malformed += 1
        return
      }
    }
    if (next.publicKey.equals(this.key.publicKey)) {
      this.drops.unexpected += 1
      return
    }
    const toCircuitId = this.#newCircuitId()
    const cache: CreateRequest & { onTimeout(): void } = {
      onTimeout: () => {},
      extendIdentifier: payload.identifier,
      toCircuitId,
      fromCircuitId: payload.circuitId,
      previous: { address: exit.address, publicKey: exit.publicKey },
      next,
    }
    const identifier = this.requestCache.add('create', cache, { timeoutMs: this.settings.nextHopTimeoutMs })
    this.sendCell(next.address, CreatePayload, {
      circuitId: toCircuitId,
      identifier,
      nodePublicKey: this.key.publicKey.toBin(),
      key: payload.key,
    })
  }

  #onCreated(source: SocketAddress, payload: CreatedPayload): void {
    const request = this.requestCache.get<CreateRequest & { onTimeout(): void }>('create', payload.identifier)
    if (
      request !== undefined &&
      request.toCircuitId === payload.circuitId &&
      sameAddress(request.next.address, source)
    ) {
      this.requestCache.pop('create', payload.identifier)
      const exit = this.exitSockets.get(request.fromCircuitId)
      if (exit === undefined) {
        this.drops.unexpected += 1
        return
      }
      this.exitSockets.delete(request.fromCircuitId)
      void exit.close()
      const now = this.clock.now()
      const route = (
        circuitId: CircuitId,
        peer: { address: SocketAddress; publicKey: PublicKey },
        direction: typeof FORWARD | typeof BACKWARD,
      ): RelayRoute => ({
        circuitId,
        address: peer.address,
        publicKey: peer.publicKey,
        keys: exit.keys,
        direction,
        createdAtMs: now,
        bytesUp: 0,
        bytesDown: 0,
        relayEarlyCount: 0,
        lastActivityMs: now,
      })
      this.relays.set(request.toCircuitId, route(request.fromCircuitId, request.previous, BACKWARD))
      this.relays.set(request.fromCircuitId, route(request.toCircuitId, request.next, FORWARD))
      this.sendCell(request.previous.address, ExtendedPayload, {
        circuitId: request.fromCircuitId,
        identifier: request.extendIdentifier,
        key: payload.key,
        auth: payload.auth,
        candidatesEnc: payload.candidatesEnc,
      })
      return
    }
    const retry = this.requestCache.get<RetryRequest & { onTimeout(): void }>('retry', payload.circuitId)
    const circuit = this.circuits.get(payload.circuitId)
    const first = circuit?.unverifiedHop?.address
    if (
      retry === undefined ||
      retry.packetIdentifier !== payload.identifier ||
      first === undefined ||
      !sameAddress(first, source)
    ) {
      this.drops.unexpected += 1
      return
    }
    this.#oursCreatedOrExtended(retry.circuit, payload)
  }

  #onExtended(payload: ExtendedPayload): void {
    const retry = this.requestCache.get<RetryRequest & { onTimeout(): void }>('retry', payload.circuitId)
    if (retry === undefined || retry.packetIdentifier !== payload.identifier) {
      this.drops.unexpected += 1
      return
    }
    this.#oursCreatedOrExtended(retry.circuit, payload)
  }

  // --- building our circuits --------------------------------------------------------------------------------

  #sendInitialCreate(circuit: Circuit, candidates: Peer[], maxTries: number): void {
    const [first, ...alternatives] = candidates
    if (first === undefined || circuit.state === 'closing') return
    this.requestCache.pop('retry', circuit.circuitId)
    const hop: Hop = {
      publicKey: first.publicKey,
      address: first.address,
      flags: this.candidates.get(first.midHex) ?? [],
      keys: undefined,
      ephemeral: generateEphemeralKey(),
    }
    circuit.unverifiedHop = hop
    const packetIdentifier = this.#addRetry(
      circuit,
      maxTries,
      () => this.#sendInitialCreate(circuit, alternatives, maxTries - 1),
      alternatives.length > 0,
    )
    this.sendCell(first.address, CreatePayload, {
      circuitId: circuit.circuitId,
      identifier: packetIdentifier,
      nodePublicKey: this.key.publicKey.toBin(),
      key: (hop.ephemeral as { publicKey: Buffer }).publicKey,
    })
  }

  #addRetry(circuit: Circuit, maxTries: number, retry: () => void, canRetry: boolean): number {
    const packetIdentifier = Math.floor(this.random() * 0x10000)
    const entry: RetryRequest & { onTimeout(): void } = {
      circuit,
      packetIdentifier,
      onTimeout: () => {
        if (circuit.state === 'closing') return
        if (!canRetry || maxTries <= 1) {
          this.removeCircuit(circuit.circuitId, `timeout adding hop ${circuit.hops.length + 1}`)
          return
        }
        this.tasks.after(`retry-${circuit.circuitId}`, 0, retry)
      },
    }
    this.requestCache.add('retry', entry, {
      number: circuit.circuitId,
      timeoutMs: this.settings.nextHopTimeoutMs,
    })
    return packetIdentifier
  }

  #oursCreatedOrExtended(circuit: Circuit, payload: CreatedPayload | ExtendedPayload): void {
    const hop = circuit.unverifiedHop
    if (hop === undefined || hop.ephemeral === undefined) {
      this.drops.unexpected += 1
      return
    }
    try {
      const shared = completeKeyExchange(
        hop.ephemeral.secretKey,
        payload.key,
        payload.auth,
        hop.publicKey.curvePublicKey,
      )
      hop.keys = withReplayProtection(deriveSessionKeys(shared))
    } catch {
      this.drops.unexpected += 1
      this.removeCircuit(circuit.circuitId, 'key exchange failed')
      return
    }
    hop.ephemeral = undefined
    circuit.unverifiedHop = undefined
    circuit.hops.push(hop)
    const retry = this.requestCache.pop<RetryRequest & { onTimeout(): void }>('retry', circuit.circuitId)
    if (circuit.hops.length >= circuit.goalHops) {
      circuit.state = 'ready'
      circuit.lastActivityMs = this.clock.now()
      log.debug('circuit ready', { circuitId: circuit.circuitId, hops: circuit.hops.length })
      this.tunnelEvents.emit('circuit-ready', { circuit })
      return
    }
    let keys: Buffer[]
    try {
      keys = CandidateList.decode(decryptLayer(payload.candidatesEnc, hop.keys, FORWARD)).keys
    } catch {
      this.drops.malformed += 1
      keys = []
    }
    let relayKeys = keys
    let exitKeys: Buffer[] = []
    for (let i = 0; i + 1 < keys.length; i++) {
      if ((keys[i] as Buffer).equals(keys[i + 1] as Buffer)) {
        relayKeys = keys.slice(0, i)
        exitKeys = keys.slice(i + 1)
        break
      }
    }
    const becomeExit = circuit.goalHops - 1 === circuit.hops.length
    const choices = becomeExit ? exitKeys : relayKeys.length > 0 ? relayKeys : exitKeys
    const maxTries =
      retry === undefined ? 1 : Math.floor(this.settings.circuitTimeoutMs / this.settings.nextHopTimeoutMs)
    this.#sendExtend(circuit, choices, maxTries)
  }

  #sendExtend(circuit: Circuit, candidates: Buffer[], maxTries: number): void {
    if (circuit.state === 'closing') return
    const first = circuit.hops[0]?.address
    if (first === undefined) return
    const exclude = new Set([
      ...circuit.hops.map((h) => h.publicKey.toBin().toString('hex')),
      this.key.publicKey.toBin().toString('hex'),
    ])
    const usable = candidates.filter((c) => {
      if (exclude.has(c.toString('hex'))) return false
      try {
        PublicKey.fromBin(c)
        return true
      } catch {
        return false
      }
    })
    let chosen: { publicKey: PublicKey; address: SocketAddress } | undefined
    const listed = usable[0]
    const required = circuit.requiredExit
    if (required !== undefined && circuit.hops.length === circuit.goalHops - 1) {
      chosen = required
      usable.length = 0
    } else if (listed !== undefined) chosen = { publicKey: PublicKey.fromBin(listed), address: NO_ADDRESS }
    else {
      // Nobody listed: try a known exit, which we assume is reachable.
      const exits = this.getCandidates(PEER_FLAG_EXIT_BT, PEER_FLAG_RELAY).filter(
        (p) => !exclude.has(p.publicKey.toBin().toString('hex')),
      )
      const peer = exits[Math.floor(this.random() * exits.length)]
      if (peer !== undefined) chosen = { publicKey: peer.publicKey, address: peer.address }
    }
    if (chosen === undefined) {
      this.removeCircuit(circuit.circuitId, 'no candidates to extend')
      return
    }
    this.requestCache.pop('retry', circuit.circuitId)
    const mid = chosen.publicKey.mid.toString('hex')
    const hop: Hop = {
      publicKey: chosen.publicKey,
      address: undefined,
      flags: this.candidates.get(mid) ?? [],
      keys: undefined,
      ephemeral: generateEphemeralKey(),
    }
    circuit.unverifiedHop = hop
    const alternatives = usable.slice(1)
    const packetIdentifier = this.#addRetry(
      circuit,
      maxTries,
      () => this.#sendExtend(circuit, alternatives, maxTries - 1),
      true,
    )
    this.sendCell(first, ExtendPayload, {
      circuitId: circuit.circuitId,
      identifier: packetIdentifier,
      nodePublicKey: chosen.publicKey.toBin(),
      key: (hop.ephemeral as { publicKey: Buffer }).publicKey,
      nodeAddress: chosen.address,
    })
  }

  // --- data, ping, destroy ----------------------------------------------------------------------------------

  #onData(source: SocketAddress, payload: DataPayload, circuitId: CircuitId): void {
    const circuit = this.circuits.get(circuitId)
    const first = circuit?.hops[0]?.address
    if (circuit !== undefined && first !== undefined && sameAddress(first, source)) {
      circuit.lastActivityMs = this.clock.now()
      if (couldBeIpv8(payload.data) && payload.data.subarray(0, PREFIX_LENGTH).equals(this.prefix)) {
        this.onTunnelledPacket(circuit, payload.data, payload.origin)
        return
      }
      circuit.deliver(payload.data, payload.origin)
      return
    }
    const exit = this.exitSockets.get(circuitId)
    if (exit === undefined || payload.destination.port === 0) {
      this.drops.unexpected += 1
      return
    }
    if (!exit.enabled) {
      // the first data must come from the previous hop's IP
      if (source.host !== exit.address.host) {
        this.drops.unexpected += 1
        return
      }
      exit.enable()
    }
    exit.lastActivityMs = this.clock.now()
    exit.sendTo(payload.data, payload.destination)
  }

  #tunnelBack(exit: ExitSocket, data: Buffer, origin: SocketAddress): void {
    if (this.exitSockets.get(exit.circuitId) !== exit) return
    this.sendCell(exit.address, DataPayload, {
      circuitId: exit.circuitId,
      destination: NO_ADDRESS,
      origin,
      data,
    })
  }

  #onPing(source: SocketAddress, payload: PingPayload): void {
    const exit = this.exitSockets.get(payload.circuitId)
    if (exit === undefined && !this.circuits.has(payload.circuitId) && !this.relays.has(payload.circuitId))
      return
    if (exit !== undefined) exit.lastActivityMs = this.clock.now()
    this.sendCell(source, PongPayload, { circuitId: payload.circuitId, identifier: payload.identifier })
  }

  #onPong(payload: PongPayload): void {
    if (this.requestCache.pop('ping', payload.identifier) === undefined) {
      this.drops.unexpected += 1
      return
    }
    const circuit = this.circuits.get(payload.circuitId)
    if (circuit !== undefined) circuit.lastActivityMs = this.clock.now()
  }

  #onTestRequest(source: SocketAddress, payload: TestRequestPayload): void {
    if (!this.#myFlags.includes(PEER_FLAG_SPEED_TEST)) return
    const exit = this.exitSockets.get(payload.circuitId)
    if (exit === undefined) {
      this.drops.unexpected += 1
      return
    }
    exit.lastActivityMs = this.clock.now()
    this.sendCell(source, TestResponsePayload, {
      circuitId: payload.circuitId,
      identifier: payload.identifier,
      data: Buffer.alloc(payload.responseSize),
    })
  }

  #onTestResponse(payload: TestResponsePayload): void {
    const request = this.requestCache.get<SpeedTestRequest>('test-request', payload.identifier)
    if (
      request === undefined ||
      request.circuitId !== payload.circuitId ||
      !this.circuits.has(payload.circuitId)
    ) {
      this.drops.unexpected += 1
      return
    }
    this.requestCache.pop('test-request', payload.identifier)
    request.onResponse(payload.data.length)
  }

  #onDestroy(peer: Peer, payload: DestroyPayload, source: SocketAddress): void {
    const circuitId = payload.circuitId
    const key = peer.publicKey
    const next = this.relays.get(circuitId)
    const previous = next === undefined ? undefined : this.relays.get(next.circuitId)
    if (next && previous?.publicKey.equals(key)) {
      // forward the destroy to the other neighbour, drop both routes
      this.#sendDestroy(next.address, next.circuitId, payload.reason)
      this.#removeRelay(circuitId)
      this.#removeRelay(next.circuitId)
      return
    }
    const exit = this.exitSockets.get(circuitId)
    if (exit?.publicKey.equals(key)) {
      this.#removeExit(circuitId, `destroyed (${payload.reason})`)
      return
    }
    const circuit = this.circuits.get(circuitId)
    if (circuit?.firstHop?.publicKey.equals(key)) {
      this.removeCircuit(circuitId, `destroyed by ${formatAddress(source)} (${payload.reason})`)
      return
    }
    this.drops.unauthorizedDestroy += 1
  }

  #sendDestroy(to: SocketAddress, circuitId: CircuitId, reason: number): void {
    this.send(to, this.createSigned(DestroyPayload, { circuitId, reason }, { globalTime: false }))
  }

  #destroyCircuit(circuit: Circuit, reason: number): void {
    const first = circuit.hops[0]?.address ?? circuit.unverifiedHop?.address
    if (first !== undefined) this.#sendDestroy(first, circuit.circuitId, reason)
  }

  #closeCircuit(circuit: Circuit, reason: string): void {
    if (circuit.state === 'closing') return
    circuit.state = 'closing'
    circuit.closeReason = reason
    log.debug('circuit closed', { circuitId: circuit.circuitId, reason })
    this.tunnelEvents.emit('circuit-removed', { circuit, reason })
  }

  /**
   * The bandwidth balance of the initiator of a circuit we are asked to join, which decides who gets a competing
   * slot. Tribler 7.0 read it from the initiator's latest TrustChain bandwidth block, fetched with
   * balance-request cells along the circuit; later Tribler dropped both, and this node keeps no bandwidth
   * ledger, so every initiator's balance is 0: competing slots are taken first come, first served and nobody is
   * evicted.
   */
  protected initiatorBalance(_circuitId: CircuitId): number {
    return 0
  }

  /** Tears down a circuit that lost its competing slot, telling both neighbours (Tribler destroys it too). */
  #evict(circuitId: CircuitId): void {
    const next = this.relays.get(circuitId)
    if (next !== undefined) {
      const back = this.relays.get(next.circuitId)
      this.#sendDestroy(next.address, next.circuitId, DESTROY_REASON_UNKNOWN)
      if (back !== undefined) this.#sendDestroy(back.address, back.circuitId, DESTROY_REASON_UNKNOWN)
      this.#removeRelay(circuitId)
      this.#removeRelay(next.circuitId)
    }
    const exit = this.exitSockets.get(circuitId)
    if (exit !== undefined) {
      this.#sendDestroy(exit.address, exit.circuitId, DESTROY_REASON_UNKNOWN)
      this.#removeExit(circuitId, 'lost its relay slot')
    }
    log.debug('circuit evicted from its relay slot', { circuitId })
  }

  #removeRelay(circuitId: CircuitId): void {
    this.slots?.release(circuitId)
    const route = this.relays.get(circuitId)
    this.#later(`remove-relay-${circuitId}`, () => {
      if (this.relays.get(circuitId) === route) this.relays.delete(circuitId)
    })
  }

  #removeExit(circuitId: CircuitId, reason: string): void {
    this.slots?.release(circuitId)
    const exit = this.exitSockets.get(circuitId)
    if (exit === undefined) return
    log.debug('exit socket removed', { circuitId, reason })
    this.#later(`remove-exit-${circuitId}`, () => {
      if (this.exitSockets.get(circuitId) === exit) this.exitSockets.delete(circuitId)
      void exit.close()
    })
  }

  /** Runs a removal after the post-mortem delay (at once when it is 0); each name at most once. */
  #later(name: string, run: () => void): void {
    if (this.#removing.has(name)) return
    if (this.settings.removeTunnelDelayMs <= 0) {
      run()
      return
    }
    this.#removing.add(name)
    this.tasks.after(name, this.settings.removeTunnelDelayMs, () => {
      this.#removing.delete(name)
      run()
    })
  }

  #doRemove(): void {
    const now = this.clock.now()
    const s = this.settings
    for (const circuit of [...this.circuits.values()]) {
      if (circuit.state === 'ready' && now - circuit.lastActivityMs > s.maxTimeInactiveMs)
        this.removeCircuit(circuit.circuitId, 'no activity')
      else if (now - circuit.createdAtMs > s.maxTimeMs) this.removeCircuit(circuit.circuitId, 'too old')
      else if (circuit.bytesUp + circuit.bytesDown > s.maxTrafficBytes)
        this.removeCircuit(circuit.circuitId, 'traffic limit exceeded', DESTROY_REASON_SHUTDOWN)
    }
    for (const [circuitId, route] of this.relays) {
      if (
        now - route.lastActivityMs > s.maxTimeInactiveMs ||
        route.bytesUp + route.bytesDown > s.maxTrafficBytes
      )
        this.#removeRelay(circuitId)
    }
    for (const [circuitId, exit] of this.exitSockets) {
      if (now - exit.lastActivityMs > s.maxTimeInactiveMs) this.#removeExit(circuitId, 'no activity')
      else if (now - exit.createdAtMs > s.maxTimeMs) this.#removeExit(circuitId, 'too old')
      else if (exit.bytesUp + exit.bytesDown > s.maxTrafficBytes)
        this.#removeExit(circuitId, 'traffic limit exceeded')
    }
    for (const mid of [...this.candidates.keys()])
      if (this.network.getPeer(mid) === undefined) this.candidates.delete(mid)
  }
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}
