import { createHash, randomBytes } from 'node:crypto'
import { isIPv4 } from 'node:net'
import { logger } from '../../common/index.js'
import { formatAddress, type SocketAddress } from '../../net/index.js'
import {
  Community,
  type CommunityDeps,
  type CommunitySettings,
  NewPunctureRequestPayload,
  Peer,
  PunctureRequestPayload,
} from '../community/index.js'
import { RandomWalk, type WalkStrategy } from '../discovery/index.js'
import { PublicKey } from '../keys/index.js'
import type { PayloadSchema } from '../serialization/index.js'
import {
  FindRequestPayload,
  FindResponsePayload,
  type NodeEntry,
  PingRequestPayload,
  PingResponsePayload,
  SignedStrValue,
  StoreRequestPayload,
  StoreResponsePayload,
  StrValue,
} from './payloads.js'
import { closer, DhtNode, distance, RoutingTable } from './routing.js'
import { ValueStore } from './storage.js'
import {
  BUCKET_REFRESH_MS,
  DHT_COMMUNITY_ID,
  DHT_ENTRY_STR,
  DHT_ENTRY_STR_SIGNED,
  type DhtDropCounters,
  DhtError,
  type DhtStatistics,
  type DhtValue,
  FIND_TIMEOUT_MS,
  MAX_CRAWL_NODES,
  MAX_CRAWL_REQUESTS,
  MAX_CRAWL_TASKS,
  MAX_ENTRY_AGE_MS,
  MAX_ENTRY_SIZE,
  MAX_NODES_IN_FIND,
  MAX_TOKENS,
  MAX_VALUES_IN_FIND,
  MAX_VALUES_IN_STORE,
  PING_INTERVAL_MS,
  REQUEST_TIMEOUT_MS,
  TARGET_NODES,
  TOKEN_EXPIRATION_MS,
  TOKEN_ROTATION_MS,
} from './types.js'

const log = logger('ipv8:dht')
const NO_GLOBAL_TIME = { globalTime: false } as const

/** The address family of a routing table: py-ipv8 keeps one table and one store per family. */
type Family = 'v4' | 'v6'

function familyOf(address: SocketAddress): Family {
  return isIPv4(address.host) ? 'v4' : 'v6'
}

/** What a find-request brought back: values, or nodes closer to the target. */
interface FindResult {
  readonly values?: Buffer[]
  readonly nodes?: DhtNode[]
}

interface PendingRequest<T> {
  readonly node: DhtNode
  readonly sentMs: number
  resolve(value: T | undefined): void
  onTimeout(): void
}

/** One lookup: the nodes still to ask, those asked, and what they answered (py-ipv8's `Crawl`). */
interface Crawl {
  readonly target: Buffer
  readonly table: RoutingTable
  readonly forceNodes: boolean
  readonly offset: number
  todo: { node: DhtNode; puncture: DhtNode | undefined }[]
  readonly tried: Map<string, DhtNode>
  readonly responses: { sender: DhtNode; result: FindResult }[]
}

/** Settings of a {@link DHTCommunity}. */
export interface DhtSettings extends CommunitySettings {
  /** How often every node in the routing table is pinged (default 25 s). */
  pingIntervalMs?: number
}

/**
 * py-ipv8's DHTCommunity (spec §6): a Kademlia DHT over IPv8. Node ids are derived from the member id and the
 * masked IP address; the routing table keeps K = 8 nodes per bucket; lookups ask the 8 closest known nodes and
 * follow closer ones (at most 4 at a time and 24 in all); values live up to an hour on the 8 nodes closest to
 * their key and are only accepted with a token the storing node got from a recent find-response, so a sender
 * cannot store from a spoofed address. Every message is signed, without a global time.
 *
 * @example
 * ```ts
 * const dht = new DHTCommunity({ endpoint, key })
 * await dht.start()
 * await dht.storeValue(key20, Buffer.from('hello'))
 * const values = await dht.findValues(key20)
 * ```
 */
export class DHTCommunity extends Community {
  readonly dhtDrops: DhtDropCounters = {
    rateLimited: 0,
    badToken: 0,
    badValue: 0,
    storeFull: 0,
    unknownRequest: 0,
    wrongKey: 0,
  }
  readonly #tables = new Map<Family, RoutingTable>()
  readonly #stores = new Map<Family, ValueStore>()
  /** Tokens other nodes gave us, by their node id (hex). */
  readonly #tokens = new Map<string, { atMs: number; token: Buffer }>()
  /** Our token secrets, the newest last; tokens made with either are accepted. */
  #secrets: Buffer[] = []
  readonly #pingIntervalMs: number

  constructor(deps: CommunityDeps, settings: DhtSettings = {}, communityId: Uint8Array = DHT_COMMUNITY_ID) {
    super(deps, communityId, {
      strategies: (c) => [new RandomWalk(c, { targetPeers: 20 }), new PingChurn(c as DHTCommunity)],
      ...settings,
    })
    this.#pingIntervalMs = settings.pingIntervalMs ?? PING_INTERVAL_MS
    this.#rotateToken()
    this.addDhtHandler(PingRequestPayload, (peer, p, source) => this.onPingRequest(peer, p, source))
    this.addDhtHandler(PingResponsePayload, (peer, p) => this.onPingResponse(peer, p))
    this.addDhtHandler(StoreRequestPayload, (peer, p, source) => this.#onStoreRequest(peer, p, source))
    this.addDhtHandler(StoreResponsePayload, (peer, p) => this.answered('store', peer, p.identifier))
    this.addDhtHandler(FindRequestPayload, (peer, p, source) => this.#onFindRequest(peer, p, source))
    this.addDhtHandler(FindResponsePayload, (peer, p) => this.#onFindResponse(peer, p))
  }

  override async start(): Promise<void> {
    await super.start()
    this.tasks.every('token-rotation', TOKEN_ROTATION_MS, () => this.#rotateToken())
    this.tasks.every('node-maintenance', 60_000, () => void this.#refreshBuckets())
    this.tasks.every('value-maintenance', 60_000, () => this.#cleanUp())
  }

  /** Handles a DHT message: signed, no global time. */
  protected addDhtHandler<T>(
    schema: PayloadSchema<T>,
    handler: (peer: Peer, payload: T, source: SocketAddress) => void,
  ): void {
    this.addSignedHandler(schema, (peer, payload, ctx) => handler(peer, payload, ctx.source), NO_GLOBAL_TIME)
  }

  /** Signs and sends a DHT message (no global time). */
  protected sendDht<T>(to: SocketAddress, schema: PayloadSchema<T>, value: T): void {
    this.send(to, this.createSigned(schema, value, NO_GLOBAL_TIME))
  }

  // --- routing table ------------------------------------------------------------------------------------------

  /** Our node id as nodes of `address`'s family see it. */
  myNodeId(address: SocketAddress = this.myWanAddress): Buffer {
    return new DhtNode(this.key.publicKey, this.#ownAddress(familyOf(address))).id
  }

  #ownAddress(family: Family): SocketAddress {
    const wan = this.myWanAddress
    if (familyOf(wan) === family) return wan
    return family === 'v4' ? { host: '0.0.0.0', port: 0 } : { host: '::', port: 0 }
  }

  /** The routing table of `address`'s family (made on first use). */
  routingTable(address: SocketAddress): RoutingTable {
    const family = familyOf(address)
    let table = this.#tables.get(family)
    if (table === undefined) {
      table = new RoutingTable(this.myNodeId(address))
      this.#tables.set(family, table)
    }
    return table
  }

  /** Every routing table (one per address family in use). */
  get routingTables(): readonly RoutingTable[] {
    return [...this.#tables.values()]
  }

  #store(address: SocketAddress): ValueStore {
    const family = familyOf(address)
    let store = this.#stores.get(family)
    if (store === undefined) {
      store = new ValueStore()
      this.#stores.set(family, store)
    }
    return store
  }

  /** The node of a peer that sent us a query, added to the routing table; undefined while it is rate limited. */
  #requestingNode(peer: Peer, source: SocketAddress): DhtNode | undefined {
    const now = this.clock.now()
    const table = this.routingTable(source)
    const node = new DhtNode(peer.publicKey, source)
    const known = table.get(node.id)
    if (known?.blocked(now) === true) {
      this.dhtDrops.rateLimited += 1
      return undefined
    }
    const kept = table.add(node, now) ?? known ?? node
    kept.queried(now)
    return kept
  }

  /** A peer introduced itself or answered our introduction: make it a node and ping it if it is new. */
  #onNodeDiscovered(peer: Peer): void {
    if (this.network.isBlacklisted(peer.address) || peer.mid.equals(this.myMid)) return
    const node = new DhtNode(peer.publicKey, peer.address)
    const table = this.routingTable(peer.address)
    const existed = table.has(node.id)
    const kept = table.add(node, this.clock.now())
    if (!existed && kept !== undefined) void this.ping(kept)
  }

  protected override introductionRequestCallback(peer: Peer): void {
    this.#onNodeDiscovered(peer)
  }

  protected override introductionResponseCallback(peer: Peer): void {
    this.#onNodeDiscovered(peer)
  }

  /** One PingChurn step: drop bad nodes, keep the peer table and the routing tables in step, ping due nodes. */
  churn(): void {
    if (!this.running || this.#tables.size === 0) return
    const now = this.clock.now()
    for (const table of this.#tables.values())
      for (const node of table.removeBadNodes(now)) {
        const peer = this.network.getPeer(node.mid)
        if (peer !== undefined) this.removePeer(peer, 'unreachable')
      }
    for (const peer of this.network.peers) {
      if (this.network.isBlacklisted(peer.address)) continue
      const node = new DhtNode(peer.publicKey, peer.address)
      const table = this.routingTable(peer.address)
      if (!table.has(node.id) && table.add(node, now) === undefined) this.removePeer(peer, 'replaced')
    }
    for (const table of this.#tables.values())
      for (const node of table.nodes()) {
        if (this.network.getPeer(node.mid) === undefined && this.network.size < this.maxPeers) {
          const added = this.network.addVerifiedPeer(new Peer(node.publicKey, node.address, now))
          if (added?.added === true) this.events.emit('peer-added', { peer: added.peer })
        }
        if (node.lastPingSentMs + this.#pingIntervalMs <= now) void this.ping(node)
      }
  }

  // --- requests -----------------------------------------------------------------------------------------------

  protected request<T>(
    kind: string,
    node: DhtNode,
    timeoutMs: number,
    send: (identifier: number) => void,
  ): Promise<T | undefined> {
    if (!this.running) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const entry: PendingRequest<T> = {
        node,
        sentMs: this.clock.now(),
        resolve,
        onTimeout: () => {
          node.failed += 1
          resolve(undefined)
        },
      }
      let identifier: number
      try {
        identifier = this.requestCache.add(kind, entry, { timeoutMs })
      } catch {
        resolve(undefined)
        return
      }
      send(identifier)
    })
  }

  /** Takes the request an answer belongs to; the answer must come from the node that was asked. */
  protected take<T>(kind: string, peer: Peer, identifier: number): PendingRequest<T> | undefined {
    const entry = this.requestCache.get<PendingRequest<T>>(kind, identifier)
    if (entry === undefined || !entry.node.mid.equals(peer.mid)) {
      this.dhtDrops.unknownRequest += 1
      return undefined
    }
    this.requestCache.pop(kind, identifier)
    const now = this.clock.now()
    entry.node.lastResponseMs = now
    entry.node.failed = 0
    entry.node.rttMs = now - entry.sentMs
    return entry
  }

  /** Resolves the request an answer belongs to with the node that answered. */
  protected answered(kind: string, peer: Peer, identifier: number): DhtNode | undefined {
    const entry = this.take<DhtNode>(kind, peer, identifier)
    entry?.resolve(entry.node)
    return entry?.node
  }

  /** Pings a node; resolves with it when it answers, undefined when it does not. */
  ping(node: DhtNode): Promise<DhtNode | undefined> {
    node.lastPingSentMs = this.clock.now()
    return this.request<DhtNode>('ping', node, REQUEST_TIMEOUT_MS, (identifier) =>
      this.sendDht(node.address, PingRequestPayload, { identifier }),
    )
  }

  protected onPingRequest(peer: Peer, payload: PingRequestPayload, source: SocketAddress): void {
    if (this.#requestingNode(peer, source) === undefined) return
    this.sendDht(source, PingResponsePayload, { identifier: payload.identifier })
  }

  protected onPingResponse(peer: Peer, payload: PingResponsePayload): void {
    this.answered('ping', peer, payload.identifier)
  }

  // --- values -------------------------------------------------------------------------------------------------

  /** A value as stored: `0x00 || data`, or signed by us with the current time as its version. */
  serializeValue(data: Uint8Array, sign = false): Buffer {
    if (!sign)
      return Buffer.concat([Buffer.from([DHT_ENTRY_STR]), StrValue.encode({ data: Buffer.from(data) })])
    const body = Buffer.concat([
      Buffer.from([DHT_ENTRY_STR_SIGNED]),
      SignedStrValue.encode({
        data: Buffer.from(data),
        version: Math.floor(this.clock.now() / 1000) >>> 0,
        publicKey: this.key.publicKey.toBin(),
      }),
    ])
    return Buffer.concat([body, this.key.sign(body)])
  }

  /** Parses a stored value; undefined when it is malformed or its signature does not verify. */
  unserializeValue(
    value: Buffer,
  ): { data: Buffer; publicKey: Buffer | undefined; version: number } | undefined {
    try {
      if (value[0] === DHT_ENTRY_STR)
        return { ...StrValue.decode(value, 1), publicKey: undefined, version: 0 }
      if (value[0] !== DHT_ENTRY_STR_SIGNED || value.length < 8) return undefined
      // the key sits after the data and version; read it first to learn the signature length
      const dataLength = value.readUInt16BE(1)
      const keyAt = 3 + dataLength + 4
      const key = PublicKey.fromBin(value.subarray(keyAt + 2, keyAt + 2 + value.readUInt16BE(keyAt)))
      const sigAt = value.length - key.signatureLength
      const parsed = SignedStrValue.decode(value, 1, sigAt)
      if (!key.verify(value.subarray(0, sigAt), value.subarray(sigAt))) return undefined
      return { data: parsed.data, publicKey: parsed.publicKey, version: parsed.version }
    } catch {
      return undefined
    }
  }

  #addValue(key: Buffer, value: Buffer, store: ValueStore, maxAgeMs: number): boolean {
    const parsed = this.unserializeValue(value)
    if (parsed === undefined) {
      this.dhtDrops.badValue += 1
      return false
    }
    const id =
      parsed.publicKey === undefined ? undefined : createHash('sha1').update(parsed.publicKey).digest()
    const result = store.put(key, value, {
      nowMs: this.clock.now(),
      maxAgeMs,
      version: parsed.version,
      ...(id !== undefined && { id }),
    })
    if (result === 'full') this.dhtDrops.storeFull += 1
    return result === 'stored'
  }

  /**
   * Stores `data` under the 20-byte `key` on the nodes closest to it (and here, when we are among them).
   * Resolves with the nodes that confirmed; rejects with a {@link DhtError} when none did.
   */
  async storeValue(key: Uint8Array, data: Uint8Array, opts: { sign?: boolean } = {}): Promise<DhtNode[]> {
    const target = Buffer.from(key)
    if (target.length !== 20) throw new DhtError('BAD_VALUE', { reason: 'key must be 20 bytes' })
    const value = this.serializeValue(data, opts.sign ?? false)
    if (value.length > MAX_ENTRY_SIZE) throw new DhtError('BAD_VALUE', { length: value.length })
    const nodes = await this.findNodes(target)
    const stored = await this.storeOnNodes(target, [value], nodes.slice(0, TARGET_NODES))
    if (stored.length === 0) throw new DhtError('NOT_STORED', { key: target.toString('hex') })
    return stored
  }

  /** Sends store-requests for serialized values to nodes we hold a fresh token of; resolves with those that confirmed. */
  async storeOnNodes(key: Buffer, values: Buffer[], nodes: DhtNode[]): Promise<DhtNode[]> {
    const first = nodes[0]
    if (first === undefined) throw new DhtError('NO_NODES', { key: key.toString('hex') })
    const batch = values.slice(0, MAX_VALUES_IN_STORE)
    // keep a copy ourselves when we are among the closest nodes
    const farthest = nodes.reduce((a, b) => (closer(a.id, b.id, key) ? b : a))
    if (nodes.length < TARGET_NODES || closer(this.myNodeId(first.address), farthest.id, key)) {
      const store = this.#store(first.address)
      for (const value of [...batch].reverse()) this.#addValue(key, value, store, MAX_ENTRY_AGE_MS)
    }
    const now = this.clock.now()
    const requests: Promise<DhtNode | undefined>[] = []
    for (const node of nodes) {
      const token = this.#tokens.get(node.idHex)
      if (token === undefined || token.atMs + TOKEN_EXPIRATION_MS <= now) continue
      requests.push(
        this.request<DhtNode>('store', node, REQUEST_TIMEOUT_MS, (identifier) =>
          this.sendDht(node.address, StoreRequestPayload, {
            identifier,
            token: token.token,
            target: key,
            values: batch,
          }),
        ),
      )
    }
    if (requests.length === 0) throw new DhtError('NOT_STORED', { reason: 'no token' })
    return (await Promise.all(requests)).filter((n): n is DhtNode => n !== undefined)
  }

  #onStoreRequest(peer: Peer, payload: StoreRequestPayload, source: SocketAddress): void {
    const node = this.#requestingNode(peer, source)
    if (node === undefined) return
    if (
      payload.values.length > MAX_VALUES_IN_STORE ||
      payload.values.some((v) => v.length > MAX_ENTRY_SIZE || v.length === 0)
    ) {
      this.dhtDrops.badValue += 1
      return
    }
    if (!this.checkToken(node, payload.token)) {
      this.dhtDrops.badToken += 1
      return
    }
    // the more known nodes are closer to the key than we are, the shorter we keep it (against over-caching)
    const now = this.clock.now()
    const table = this.routingTable(source)
    const myId = this.myNodeId(source)
    let numCloser = 0
    for (const n of table.closestNodes(payload.target, now, 20))
      if (closer(n.id, myId, payload.target)) numCloser += 1
    const maxAgeMs = Math.floor(MAX_ENTRY_AGE_MS / 2 ** Math.max(0, numCloser - TARGET_NODES + 1))
    const store = this.#store(source)
    for (const value of payload.values) this.#addValue(payload.target, value, store, maxAgeMs)
    this.sendDht(source, StoreResponsePayload, { identifier: payload.identifier })
  }

  // --- lookups ------------------------------------------------------------------------------------------------

  /** Finds the values stored under `key`: signed ones once per signer (the newest version), plain ones as found. */
  async findValues(key: Uint8Array, offset = 0): Promise<DhtValue[]> {
    const values = (await this.#find(Buffer.from(key), false, offset)).values
    const signed = new Map<string, { version: number; data: Buffer; publicKey: Buffer }>()
    const plain: DhtValue[] = []
    for (const value of values) {
      const parsed = this.unserializeValue(value)
      if (parsed === undefined) continue
      if (parsed.publicKey === undefined) {
        plain.push({ data: parsed.data, publicKey: undefined })
        continue
      }
      const pk = parsed.publicKey.toString('hex')
      const known = signed.get(pk)
      if (known === undefined || parsed.version > known.version)
        signed.set(pk, { version: parsed.version, data: parsed.data, publicKey: parsed.publicKey })
    }
    return [...[...signed.values()].map((s) => ({ data: s.data, publicKey: s.publicKey })), ...plain]
  }

  /** Finds the nodes closest to `key`, closest first. */
  async findNodes(key: Uint8Array): Promise<DhtNode[]> {
    return (await this.#find(Buffer.from(key), true, 0)).nodes
  }

  async #find(
    target: Buffer,
    forceNodes: boolean,
    offset: number,
  ): Promise<{ values: Buffer[]; nodes: DhtNode[] }> {
    if (target.length !== 20) throw new DhtError('BAD_VALUE', { reason: 'key must be 20 bytes' })
    if (!this.running) throw new DhtError('NOT_RUNNING', {})
    const now = this.clock.now()
    const crawls: Crawl[] = []
    for (const table of this.#tables.values()) {
      const closest = table.closestNodes(target, now, MAX_CRAWL_NODES)
      if (closest.length === 0) continue
      crawls.push({
        target,
        table,
        forceNodes,
        offset,
        todo: closest.map((node) => ({ node, puncture: undefined })),
        tried: new Map(),
        responses: [],
      })
    }
    if (crawls.length === 0) throw new DhtError('NO_NODES', { target: target.toString('hex') })
    const results = await Promise.all(crawls.map((crawl) => this.#crawl(crawl)))
    return { values: results.flatMap((r) => r.values), nodes: results.flatMap((r) => r.nodes) }
  }

  async #crawl(crawl: Crawl): Promise<{ values: Buffer[]; nodes: DhtNode[] }> {
    const inflight = new Set<Promise<void>>()
    for (;;) {
      while (crawl.tried.size < MAX_CRAWL_REQUESTS && inflight.size < MAX_CRAWL_TASKS) {
        const next = crawl.todo.shift()
        if (next === undefined) break
        // counted as tried at once, so no node is asked twice
        crawl.tried.set(next.node.idHex, next.node)
        const task: Promise<void> = this.#contact(crawl, next.node, next.puncture).finally(() =>
          inflight.delete(task),
        )
        inflight.add(task)
      }
      if (inflight.size === 0) break
      await Promise.race(inflight)
    }
    const byDistance = (a: DhtNode, b: DhtNode): number =>
      Buffer.compare(distance(a.id, crawl.target), distance(b.id, crawl.target))
    if (crawl.forceNodes) return { values: [], nodes: [...crawl.tried.values()].sort(byDistance) }
    // one value of each answer in turn, first of each, then second of each, ... without duplicates
    const lists = crawl.responses.flatMap((r) => (r.result.values === undefined ? [] : [r.result.values]))
    const values: Buffer[] = []
    const seen = new Set<string>()
    const longest = Math.max(0, ...lists.map((l) => l.length))
    for (let i = 0; i < longest; i++)
      for (const list of lists) {
        const value = list[i]
        if (value === undefined || seen.has(value.toString('hex'))) continue
        seen.add(value.toString('hex'))
        values.push(value)
      }
    // cache the values on the closest node asked that did not have them
    const candidate = crawl.responses
      .filter((r) => r.result.values === undefined)
      .map((r) => r.sender)
      .sort(byDistance)[0]
    if (candidate !== undefined && values.length > 0)
      await this.storeOnNodes(crawl.target, values, [candidate]).catch(() => [])
    return { values, nodes: [] }
  }

  async #contact(crawl: Crawl, node: DhtNode, puncture: DhtNode | undefined): Promise<void> {
    // have the node that told us about this one open its NAT towards us first
    if (puncture !== undefined) await this.#findRequest(puncture, node.id, crawl.forceNodes, 0)
    const result = await this.#findRequest(node, crawl.target, crawl.forceNodes, crawl.offset)
    if (result === undefined) return
    crawl.table.add(node, this.clock.now())
    crawl.responses.push({ sender: node, result })
    for (const [index, found] of (result.nodes ?? []).entries()) {
      if (crawl.tried.has(found.idHex) || found.mid.equals(this.myMid)) continue
      const fourth = crawl.todo[3]
      if (fourth !== undefined && closer(fourth.node.id, found.id, crawl.target)) continue
      const existing = crawl.todo.find((t) => t.node.idHex === found.idHex)
      if (existing !== undefined) {
        existing.puncture = index === 0 ? undefined : node
        continue
      }
      crawl.todo.push({ node: found, puncture: index === 0 ? undefined : node })
      crawl.todo.sort((a, b) =>
        Buffer.compare(distance(a.node.id, crawl.target), distance(b.node.id, crawl.target)),
      )
    }
  }

  #findRequest(
    node: DhtNode,
    target: Buffer,
    forceNodes: boolean,
    offset: number,
  ): Promise<FindResult | undefined> {
    return this.request<FindResult>('find', node, FIND_TIMEOUT_MS, (identifier) =>
      this.sendDht(node.address, FindRequestPayload, {
        identifier,
        lanAddress: this.myLanAddress,
        target,
        offset,
        forceNodes,
      }),
    ).then((result) => {
      if (result === undefined) return undefined
      return forceNodes ? { nodes: result.nodes ?? [] } : result
    })
  }

  #onFindRequest(peer: Peer, payload: FindRequestPayload, source: SocketAddress): void {
    const node = this.#requestingNode(peer, source)
    if (node === undefined) return
    const now = this.clock.now()
    const values = payload.forceNodes
      ? []
      : this.#store(source).get(payload.target, now, payload.offset, MAX_VALUES_IN_FIND)
    let nodes: DhtNode[] = []
    if (payload.forceNodes || values.length === 0) {
      nodes = this.routingTable(source).closestNodes(payload.target, now, MAX_NODES_IN_FIND, node)
      const closest = nodes[0]
      if (closest !== undefined)
        this.sendPunctureRequest(closest.address, payload.lanAddress, source, payload.identifier)
    }
    this.sendDht(source, FindResponsePayload, {
      identifier: payload.identifier,
      token: this.#token(node),
      values,
      nodes: nodes.map(nodeEntry),
    })
  }

  #onFindResponse(peer: Peer, payload: FindResponsePayload): void {
    const entry = this.take<FindResult>('find', peer, payload.identifier)
    if (entry === undefined) return
    this.#rememberToken(entry.node, payload.token)
    const nodes = payload.nodes.flatMap((n) => {
      const node = entryNode(n)
      return node === undefined || node.mid.equals(this.myMid) ? [] : [node]
    })
    entry.resolve(payload.values.length > 0 ? { values: payload.values } : { nodes })
  }

  /** Asks the node at `to` to puncture its NAT towards a requester (lan, wan). */
  protected sendPunctureRequest(
    to: SocketAddress,
    lan: SocketAddress,
    wan: SocketAddress,
    identifier: number,
  ): void {
    const id = identifier & 0xffff
    const packet =
      isIPv4(lan.host) && isIPv4(wan.host) && isIPv4(to.host)
        ? this.createUnsigned(PunctureRequestPayload, {
            lanWalkerAddress: lan,
            wanWalkerAddress: wan,
            identifier: id,
          })
        : this.createUnsigned(NewPunctureRequestPayload, {
            lanWalkerAddress: lan,
            wanWalkerAddress: wan,
            identifier: id,
          })
    this.send(to, packet)
  }

  // --- tokens -------------------------------------------------------------------------------------------------

  #rotateToken(): void {
    this.#secrets = [...this.#secrets.slice(-1), randomBytes(16)]
  }

  #tokenWith(node: DhtNode, secret: Buffer): Buffer {
    return createHash('sha1')
      .update(`${node.mid.toString('hex')}@${formatAddress(node.address)}`)
      .update(secret)
      .digest()
  }

  #token(node: DhtNode): Buffer {
    return this.#tokenWith(node, this.#secrets.at(-1) as Buffer)
  }

  /** Whether `token` is one we handed to this node (at its address) within the last two secrets. */
  protected checkToken(node: DhtNode, token: Buffer): boolean {
    return this.#secrets.some((secret) => this.#tokenWith(node, secret).equals(token))
  }

  #rememberToken(node: DhtNode, token: Buffer): void {
    this.#tokens.delete(node.idHex)
    // a copy: the received token is a view into its datagram's receive buffer
    this.#tokens.set(node.idHex, { atMs: this.clock.now(), token: Buffer.from(token) })
    if (this.#tokens.size > MAX_TOKENS) {
      const oldest = this.#tokens.keys().next().value
      if (oldest !== undefined) this.#tokens.delete(oldest)
    }
  }

  /** A fresh token this node gave us, if any. */
  protected tokenOf(node: DhtNode): Buffer | undefined {
    return this.#tokens.get(node.idHex)?.token
  }

  // --- maintenance --------------------------------------------------------------------------------------------

  async #refreshBuckets(): Promise<void> {
    const now = this.clock.now()
    const prefixes = new Map<string, { id: Buffer; buckets: { lastChangedMs: number }[] }>()
    for (const table of this.#tables.values())
      for (const bucket of table.buckets) {
        if (now - bucket.lastChangedMs <= BUCKET_REFRESH_MS) continue
        let entry = prefixes.get(bucket.prefix)
        if (entry === undefined) {
          entry = { id: bucket.randomId(this.random), buckets: [] }
          prefixes.set(bucket.prefix, entry)
        }
        entry.buckets.push(bucket)
      }
    // one lookup per prefix: a lookup crawls every table
    for (const { id, buckets } of prefixes.values()) {
      await this.findValues(id).catch(() => [])
      for (const bucket of buckets) bucket.lastChangedMs = now
    }
  }

  #cleanUp(): void {
    const now = this.clock.now()
    for (const store of this.#stores.values()) store.clean(now)
    for (const [id, token] of this.#tokens)
      if (token.atMs + TOKEN_EXPIRATION_MS <= now) this.#tokens.delete(id)
  }

  /** Routing table and store sizes, for `GET /ipv8/dht/statistics`. */
  dhtStatistics(): DhtStatistics {
    let valuesInStore = 0
    let keysInStore = 0
    for (const store of this.#stores.values()) {
      valuesInStore += store.size
      keysInStore += store.keys
    }
    const tables = [...this.#tables.values()]
    return {
      nodeId: this.myNodeId(),
      routingTableSize: tables.reduce((n, t) => n + t.size, 0),
      routingTableBuckets: tables.reduce((n, t) => n + t.buckets.length, 0),
      keysInStore,
      valuesInStore,
      tokens: this.#tokens.size,
    }
  }

  override async stop(): Promise<void> {
    log.debug('DHT stopping', { nodes: this.dhtStatistics().routingTableSize })
    await super.stop()
  }
}

/** A node as it goes on the wire. */
export function nodeEntry(node: DhtNode): NodeEntry {
  return { address: node.address, publicKey: node.publicKey.toBin() }
}

/** A node from the wire; undefined when its key does not parse. */
export function entryNode(entry: NodeEntry): DhtNode | undefined {
  try {
    return new DhtNode(PublicKey.fromBin(entry.publicKey), entry.address)
  } catch {
    return undefined
  }
}

/**
 * py-ipv8's PingChurn: every walker tick it drops nodes that stopped answering, keeps the peer table and the
 * routing table in step and pings every node at most once per ping interval.
 */
export class PingChurn implements WalkStrategy {
  readonly targetPeers = -1
  readonly #overlay: DHTCommunity

  constructor(overlay: DHTCommunity) {
    this.#overlay = overlay
  }

  takeStep(): void {
    this.#overlay.churn()
  }
}
