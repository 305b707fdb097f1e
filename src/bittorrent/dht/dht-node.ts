import { isIP } from 'node:net'
import type { Encodable } from '../../bencode/index.js'
import {
  type AbortOptions,
  anySignal,
  type Clock,
  errorMessage,
  fromHex,
  logger,
  type Service,
  systemClock,
  TaskScope,
  toHex,
} from '../../common/index.js'
import type { DatagramSocket, SocketAddress } from '../../net/index.js'
import { canonicalHost } from '../../net/index.js'
import { encodeCompactPeer, type HostLookup, parseCompactPeers } from '../tracker/index.js'
import {
  KRPC_METHOD_UNKNOWN,
  KRPC_PROTOCOL_ERROR,
  Krpc,
  type KrpcQuery,
  type KrpcReply,
  type QueryAnswer,
} from './krpc.js'
import { iterativeLookup, type LookupReply, type LookupResult, type RespondedNode } from './lookup.js'
import { ID_BYTES, randomNodeId } from './node-id.js'
import { PeerStore } from './peer-store.js'
import { K, RoutingTable } from './routing-table.js'
import { TOKEN_ROTATE_MS, TokenIssuer } from './tokens.js'
import { DhtError, type DhtStateStore, type DhtStats, type NodeContact, type NodeId } from './types.js'

const log = logger('bittorrent:dht')

/** The public bootstrap routers, used only when the node may reach the public network. */
export const DEFAULT_BOOTSTRAP_ROUTERS: readonly SocketAddress[] = [
  { host: 'router.bittorrent.com', port: 6881 },
  { host: 'router.utorrent.com', port: 6881 },
  { host: 'dht.transmissionbt.com', port: 6881 },
  { host: 'dht.libtorrent.org', port: 25401 },
]

/** What a {@link DhtNode} needs. */
export interface DhtNodeDeps {
  /** The socket KRPC goes through (shared with uTP and UDP trackers when `receive` is `external`). */
  socket: Pick<DatagramSocket, 'send' | 'onMessage' | 'local'>
  clock?: Clock
  /** Where our id and the routing table are saved across restarts. */
  store?: DhtStateStore
  /** Host name resolution for bootstrap routers; default the system resolver. */
  lookup?: HostLookup
}

/** Options of a {@link DhtNode}. */
export interface DhtNodeOptions {
  /** Our node id; default the saved one, else random. */
  nodeId?: Uint8Array
  /**
   * Bootstrap nodes (`host:port` or addresses). Default: the public routers when `publicNetwork` is true, none
   * otherwise. With `publicNetwork` false only IP literals are used.
   */
  bootstrap?: ReadonlyArray<string | SocketAddress>
  /** Whether the node may contact the public network (default: unless `TRIBLER_NO_PUBLIC_NETWORK=1`). */
  publicNetwork?: boolean
  /** `socket` (default): subscribe to the socket. `external`: the owner calls {@link DhtNode.handleDatagram}. */
  receive?: 'socket' | 'external'
  /** Time a query waits for its answer (default 4 s). */
  queryTimeoutMs?: number
  /** Time a whole lookup may take (default 30 s). */
  lookupTimeoutMs?: number
  /** Most queries per lookup (default 200). */
  maxLookupQueries?: number
  /** Lookup parallelism (default 3). */
  alpha?: number
  /** Incoming queries accepted per address per second (default 40). */
  maxQueriesPerSecPerAddress?: number
  /** Token secret rotation period; tokens stay valid for two (default 5 minutes). */
  tokenRotateMs?: number
  /** How long announced peers are kept (default 30 minutes). */
  peerTtlMs?: number
  /** How often buckets are checked for refresh (default 1 minute). */
  maintenanceIntervalMs?: number
  /** A bucket untouched this long is refreshed (default 15 minutes). */
  bucketRefreshMs?: number
  /** How often the routing table is saved while running (default 5 minutes). */
  saveIntervalMs?: number
  /** Sent as `v` in every message. */
  version?: Uint8Array
}

/** Result of {@link DhtNode.getPeers}. */
export interface GetPeersResult {
  readonly peers: SocketAddress[]
  /** The closest nodes that answered, with their write tokens. */
  readonly closest: RespondedNode[]
  readonly queried: number
}

/** Result of {@link DhtNode.announce}. */
export interface AnnounceResult extends GetPeersResult {
  /** Nodes that accepted our announce_peer. */
  readonly announcedTo: number
}

const DEFAULT_VERSION = Buffer.from('TS01', 'latin1')

/**
 * A BEP 5 Mainline DHT node over an injected datagram socket: answers ping, find_node, get_peers and
 * announce_peer; looks up peers and announces with iterative lookups; keeps a Kademlia routing table that is
 * saved to a {@link DhtStateStore} and restored (and pinged) on the next start.
 *
 * @example
 * ```ts
 * const dht = new DhtNode({ socket, store: fileDhtStateStore(file) }, { bootstrap: ['127.0.0.2:6881'] })
 * await dht.start()
 * await dht.bootstrap()
 * const { peers } = await dht.getPeers(infoHash, { signal })
 * await dht.announce(infoHash, 6881)
 * await dht.stop()
 * ```
 */
export class DhtNode implements Service {
  readonly name = 'dht'
  readonly #deps: DhtNodeDeps
  readonly #options: DhtNodeOptions
  readonly #clock: Clock
  readonly #krpc: Krpc
  readonly #tokens: TokenIssuer
  readonly #peers: PeerStore
  readonly #family: 4 | 6
  readonly #stopped = new AbortController()
  readonly #tasks: TaskScope
  #table: RoutingTable
  #running = false
  #bootstrapping: Promise<void> | undefined

  constructor(deps: DhtNodeDeps, options: DhtNodeOptions = {}) {
    this.#deps = deps
    this.#options = options
    this.#clock = deps.clock ?? systemClock
    if (options.nodeId !== undefined && options.nodeId.length !== ID_BYTES) {
      throw new DhtError('INVALID_ARGUMENT', { field: 'nodeId', length: options.nodeId.length })
    }
    this.#table = new RoutingTable(
      options.nodeId === undefined ? randomNodeId() : Buffer.from(options.nodeId),
    )
    this.#krpc = new Krpc(
      { socket: deps.socket, clock: this.#clock },
      {
        ...(options.queryTimeoutMs === undefined ? {} : { queryTimeoutMs: options.queryTimeoutMs }),
        ...(options.maxQueriesPerSecPerAddress === undefined
          ? {}
          : { maxQueriesPerSecPerAddress: options.maxQueriesPerSecPerAddress }),
        receive: 'external',
        version: options.version ?? DEFAULT_VERSION,
      },
    )
    this.#krpc.onQuery = (query, from) => this.#answer(query, from)
    this.#tokens = new TokenIssuer(this.#clock, options.tokenRotateMs ?? TOKEN_ROTATE_MS)
    this.#peers = new PeerStore(options.peerTtlMs === undefined ? {} : { ttlMs: options.peerTtlMs })
    this.#family = isIP(deps.socket.local.host) === 6 ? 6 : 4
    this.#tasks = new TaskScope(this.#stopped.signal, this.#clock)
    if ((options.receive ?? 'socket') === 'socket') {
      const off = deps.socket.onMessage((data, from) => this.handleDatagram(data, from))
      this.#stopped.signal.addEventListener('abort', off, { once: true })
    }
  }

  /** Our node id. */
  get id(): NodeId {
    return this.#table.ownId
  }

  /** Nodes in the routing table. */
  get tableSize(): number {
    return this.#table.size
  }

  /** Packet and query counters, hostile packets included. */
  get stats(): Readonly<DhtStats> {
    return this.#krpc.stats
  }

  /** The routing table's nodes. */
  nodes(): NodeContact[] {
    return this.#table.nodes().map(({ id, host, port }) => ({ id, host, port }))
  }

  /**
   * Takes one incoming datagram; returns true when it was KRPC. Use it when the socket's port is shared and its
   * owner dispatches datagrams (`receive: 'external'`).
   */
  handleDatagram(data: Buffer, from: SocketAddress): boolean {
    if (!this.#running) return false
    return this.#krpc.handleDatagram(data, from)
  }

  /**
   * Restores the saved id and routing table, pings the restored nodes, then bootstraps in the background
   * ({@link DhtNode.bootstrap} waits for it).
   */
  async start(): Promise<void> {
    if (this.#running) return
    if (this.#stopped.signal.aborted)
      throw new DhtError('NOT_RUNNING', { reason: 'stopped nodes do not restart' })
    const saved = await this.#deps.store?.load().catch((err: unknown) => {
      log.warn('saved DHT state ignored', { error: errorMessage(err) })
      return undefined
    })
    if (saved !== undefined && this.#options.nodeId === undefined)
      this.#table = new RoutingTable(fromHex(saved.nodeId))
    this.#running = true
    const maintenanceMs = this.#options.maintenanceIntervalMs ?? 60_000
    this.#tasks.every('maintenance', maintenanceMs, () => this.#maintain())
    this.#tasks.every('save', this.#options.saveIntervalMs ?? 5 * 60_000, () => this.save())
    const restored = (saved?.nodes ?? []).map((node) => ({ host: node.host, port: node.port }))
    log.debug('dht starting', { restored: restored.length })
    await Promise.allSettled(restored.map((address) => this.ping(address)))
    this.#bootstrapping = this.#bootstrap().catch((err: unknown) =>
      log.debug('bootstrap failed', { error: errorMessage(err) }),
    )
  }

  /** Saves the routing table and stops answering; pending lookups end. */
  async stop(): Promise<void> {
    if (!this.#running) {
      this.#stopped.abort()
      return
    }
    await this.save().catch((err: unknown) =>
      log.warn('saving DHT state failed', { error: errorMessage(err) }),
    )
    this.#running = false
    this.#stopped.abort()
    this.#krpc.close()
  }

  /** Waits for the current bootstrap, or runs one (a lookup of our own id through routers and known nodes). */
  async bootstrap(opts: AbortOptions = {}): Promise<void> {
    this.#checkRunning()
    if (this.#bootstrapping !== undefined) {
      const current = this.#bootstrapping
      this.#bootstrapping = undefined
      await current
      return
    }
    await this.#bootstrap(opts)
  }

  /** Saves our id and the good nodes now. */
  async save(): Promise<void> {
    const store = this.#deps.store
    if (store === undefined) return
    const now = this.#clock.now()
    const entries = this.#table.nodes()
    const good = entries.filter((entry) => this.#table.standing(entry, now) === 'good')
    const keep =
      good.length >= K ? good : entries.filter((entry) => this.#table.standing(entry, now) !== 'bad')
    await store.save({
      nodeId: toHex(this.#table.ownId),
      nodes: keep.map((entry) => ({ id: toHex(entry.id), host: entry.host, port: entry.port })),
    })
  }

  /** Pings an address; on an answer the node joins the routing table. */
  async ping(address: SocketAddress, opts: AbortOptions = {}): Promise<NodeContact> {
    const reply = await this.#query(address, 'ping', {}, opts.signal)
    return { id: reply.response.senderId, host: canonicalHost(address.host), port: address.port }
  }

  /** Offers a node heard of elsewhere (a BitTorrent PORT message): it is pinged and joins when it answers. */
  addNode(address: SocketAddress): void {
    if (!this.#running) return
    this.ping(address).catch(() => undefined)
  }

  /** The nodes closest to `target`, by an iterative find_node lookup. */
  async findNode(target: Uint8Array, opts: AbortOptions = {}): Promise<RespondedNode[]> {
    checkHash(target, 'target')
    const result = await this.#lookup(Buffer.from(target), 'find_node', opts)
    return result.closest
  }

  /** Peers of a torrent, by an iterative get_peers lookup; `onPeers` sees them as they arrive. */
  async getPeers(
    infoHash: Uint8Array,
    opts: AbortOptions & { onPeers?: (peers: SocketAddress[]) => void } = {},
  ): Promise<GetPeersResult> {
    checkHash(infoHash, 'infoHash')
    const result = await this.#lookup(Buffer.from(infoHash), 'get_peers', opts)
    // We may be one of the closest nodes ourselves: peers announced to us count too.
    const local = this.#peers.get(infoHash, this.#clock.now())
    const known = new Set(result.peers.map((peer) => `${peer.host}|${peer.port}`))
    const fresh = local.filter((peer) => !known.has(`${peer.host}|${peer.port}`))
    if (fresh.length > 0) opts.onPeers?.(fresh)
    return { ...result, peers: [...result.peers, ...fresh] }
  }

  /**
   * Announces that we have a torrent on `port`: a get_peers lookup, then announce_peer to the closest nodes with
   * their tokens. `impliedPort` asks them to use our UDP source port instead (BEP 5, for uTP behind NAT).
   */
  async announce(
    infoHash: Uint8Array,
    port: number,
    opts: AbortOptions & { impliedPort?: boolean; onPeers?: (peers: SocketAddress[]) => void } = {},
  ): Promise<AnnounceResult> {
    checkHash(infoHash, 'infoHash')
    if (!Number.isInteger(port) || port <= 0 || port > 0xffff)
      throw new DhtError('INVALID_ARGUMENT', { field: 'port', port })
    const result = await this.getPeers(infoHash, opts)
    // Keep ourselves in our own store too, so lookups that end at this node find us.
    const own = this.#deps.socket.local
    if (isIP(own.host) !== 0 && own.host !== '0.0.0.0' && own.host !== '::') {
      const ownPort = opts.impliedPort === true ? own.port : port
      this.#peers.add(infoHash, { host: canonicalHost(own.host), port: ownPort }, this.#clock.now())
    }
    const results = await Promise.allSettled(
      result.closest
        .filter((node) => node.token !== undefined)
        .map((node) =>
          this.#query(
            node,
            'announce_peer',
            {
              info_hash: Buffer.from(infoHash),
              port,
              token: node.token!,
              ...(opts.impliedPort === true ? { implied_port: 1 } : {}),
            },
            opts.signal,
          ),
        ),
    )
    const announcedTo = results.filter((r) => r.status === 'fulfilled').length
    log.debug('announced', { announcedTo })
    return { ...result, announcedTo }
  }

  async #bootstrap(opts: AbortOptions = {}): Promise<void> {
    const routers = await this.#routers()
    const seeds = [...this.#table.closest(this.id, K, this.#clock.now()), ...routers]
    if (seeds.length === 0) return
    await this.#lookup(this.id, 'find_node', opts, routers)
  }

  async #lookup(
    target: NodeId,
    method: 'find_node' | 'get_peers',
    opts: AbortOptions & { onPeers?: (peers: SocketAddress[]) => void },
    extraSeeds: readonly SocketAddress[] = [],
  ): Promise<LookupResult> {
    this.#checkRunning()
    const signal = anySignal(this.#stopped.signal, opts.signal, this.#options.lookupTimeoutMs ?? 30_000)
    let seeds: Array<SocketAddress & { id?: NodeId }> = this.#table.closest(target, K * 2, this.#clock.now())
    if (seeds.length < K)
      seeds = [...seeds, ...extraSeeds, ...(extraSeeds.length === 0 ? await this.#routers() : [])]
    const args: Record<string, Encodable> = method === 'find_node' ? { target } : { info_hash: target }
    return iterativeLookup(
      target,
      seeds,
      async (to, querySignal) => this.#lookupReply(await this.#query(to, method, args, querySignal)),
      {
        ...(this.#options.alpha === undefined ? {} : { alpha: this.#options.alpha }),
        maxQueries: this.#options.maxLookupQueries ?? 200,
        signal,
        ownId: this.id,
        ...(opts.onPeers === undefined ? {} : { onPeers: opts.onPeers }),
      },
    )
  }

  #lookupReply(reply: KrpcReply): LookupReply {
    const values = reply.response.values
    const nodes = this.#parseNodes(values[this.#family === 4 ? 'nodes' : 'nodes6'])
    const peers: SocketAddress[] = []
    const list = values.values
    if (Array.isArray(list)) {
      for (const item of list.slice(0, 200)) {
        if (!(item instanceof Uint8Array)) continue
        const parsed = parseCompactPeers(item, item.length === 18 ? 6 : 4)
        if (parsed !== undefined && parsed.length === 1) peers.push(parsed[0]!)
      }
    }
    const token = values.token
    return {
      id: reply.response.senderId,
      nodes,
      peers,
      ...(token instanceof Uint8Array && token.length > 0 && token.length <= 64
        ? { token: Buffer.from(token) }
        : {}),
    }
  }

  #parseNodes(value: unknown): NodeContact[] {
    if (!(value instanceof Uint8Array)) return []
    const size = this.#family === 4 ? 26 : 38
    const nodes: NodeContact[] = []
    for (let offset = 0; offset + size <= value.length && nodes.length < 64; offset += size) {
      const address = parseCompactPeers(value.subarray(offset + ID_BYTES, offset + size), this.#family)?.[0]
      if (address === undefined) continue
      nodes.push({ id: Buffer.from(value.subarray(offset, offset + ID_BYTES)), ...address })
    }
    return nodes
  }

  #encodeNodes(nodes: readonly NodeContact[]): Buffer {
    const parts: Buffer[] = []
    for (const node of nodes) {
      const address = encodeCompactPeer(node)
      if (address === undefined || address.length !== (this.#family === 4 ? 6 : 18)) continue
      parts.push(node.id, address)
    }
    return Buffer.concat(parts)
  }

  /** Sends a query (our id added), and keeps the routing table informed of the answer or its absence. */
  async #query(
    to: SocketAddress,
    method: string,
    args: Record<string, Encodable>,
    signal?: AbortSignal,
  ): Promise<KrpcReply> {
    this.#checkRunning()
    try {
      const reply = await this.#krpc.query(to, method, { id: this.id, ...args }, { signal })
      const result = this.#table.insert(
        { id: reply.response.senderId, host: to.host, port: to.port },
        { responded: true, nowMs: this.#clock.now() },
      )
      if (result.ping !== undefined) this.#checkNode(result.ping)
      return reply
    } catch (err) {
      if (err instanceof DhtError && err.code === 'TIMEOUT') {
        const host = canonicalHost(to.host)
        const entry = this.#table.nodes().find((node) => node.host === host && node.port === to.port)
        if (entry !== undefined) this.#table.failed(entry.id, this.#clock.now())
      }
      throw err
    }
  }

  /** Pings a questionable node; the routing table learns whether it is still there. */
  #checkNode(node: NodeContact): void {
    this.#query(node, 'ping', {}).catch(() => undefined)
  }

  #answer(query: KrpcQuery, from: SocketAddress): QueryAnswer | undefined {
    if (!this.#running || from.port === 0) return undefined
    const now = this.#clock.now()
    if (!query.readOnly && !query.senderId.equals(this.id)) {
      const result = this.#table.insert(
        { id: query.senderId, host: from.host, port: from.port },
        { responded: false, nowMs: now },
      )
      if (result.ping !== undefined) this.#checkNode(result.ping)
    }
    const nodesKey = this.#family === 4 ? 'nodes' : 'nodes6'
    switch (query.method) {
      case 'ping':
        return { values: { id: this.id } }
      case 'find_node': {
        const target = query.args.target
        if (!(target instanceof Uint8Array) || target.length !== ID_BYTES) {
          return { error: KRPC_PROTOCOL_ERROR, reason: 'bad target' }
        }
        return { values: { id: this.id, [nodesKey]: this.#encodeNodes(this.#table.closest(target, K, now)) } }
      }
      case 'get_peers': {
        const infoHash = query.args.info_hash
        if (!(infoHash instanceof Uint8Array) || infoHash.length !== ID_BYTES) {
          return { error: KRPC_PROTOCOL_ERROR, reason: 'bad info_hash' }
        }
        const peers = this.#peers
          .get(infoHash, now)
          .map((peer) => encodeCompactPeer(peer))
          .filter((peer): peer is Buffer => peer !== undefined)
        return {
          values: {
            id: this.id,
            token: this.#tokens.issue(canonicalHost(from.host)),
            [nodesKey]: this.#encodeNodes(this.#table.closest(infoHash, K, now)),
            ...(peers.length > 0 ? { values: peers } : {}),
          },
        }
      }
      case 'announce_peer': {
        const { info_hash: infoHash, token, port, implied_port: impliedPort } = query.args
        if (
          !(infoHash instanceof Uint8Array) ||
          infoHash.length !== ID_BYTES ||
          !(token instanceof Uint8Array)
        ) {
          return { error: KRPC_PROTOCOL_ERROR, reason: 'bad arguments' }
        }
        const peerPort = impliedPort === 1 ? from.port : port
        if (typeof peerPort !== 'number' || peerPort <= 0 || peerPort > 0xffff) {
          return { error: KRPC_PROTOCOL_ERROR, reason: 'bad port' }
        }
        if (!this.#tokens.check(token, canonicalHost(from.host)))
          return { error: KRPC_PROTOCOL_ERROR, reason: 'bad token' }
        this.#peers.add(infoHash, { host: canonicalHost(from.host), port: peerPort }, now)
        return { values: { id: this.id } }
      }
      default:
        return { error: KRPC_METHOD_UNKNOWN, reason: 'method unknown' }
    }
  }

  async #maintain(): Promise<void> {
    const now = this.#clock.now()
    this.#peers.expire(now)
    if (this.#table.size === 0) {
      await this.#bootstrap()
      return
    }
    const targets = this.#table.refreshTargets(now, this.#options.bucketRefreshMs ?? 15 * 60_000)
    for (const target of targets) await this.#lookup(target, 'find_node', {}).catch(() => undefined)
  }

  async #routers(): Promise<SocketAddress[]> {
    const publicNetwork = this.#options.publicNetwork ?? process.env.TRIBLER_NO_PUBLIC_NETWORK !== '1'
    const configured = this.#options.bootstrap ?? (publicNetwork ? DEFAULT_BOOTSTRAP_ROUTERS : [])
    const out: SocketAddress[] = []
    for (const item of configured) {
      const address = typeof item === 'string' ? parseHostPort(item) : item
      if (address === undefined) continue
      if (isIP(address.host) !== 0) {
        out.push({ host: canonicalHost(address.host), port: address.port })
        continue
      }
      if (!publicNetwork) continue
      try {
        const resolve = this.#deps.lookup ?? defaultLookup
        const hosts = (await resolve(address.host)).filter((host) => isIP(host) === this.#family)
        if (hosts[0] !== undefined) out.push({ host: canonicalHost(hosts[0]), port: address.port })
      } catch (err) {
        log.debug('router lookup failed', { host: address.host, error: errorMessage(err) })
      }
    }
    return out
  }

  #checkRunning(): void {
    if (!this.#running) throw new DhtError('NOT_RUNNING', {})
  }
}

async function defaultLookup(host: string): Promise<string[]> {
  const { lookup } = await import('node:dns/promises')
  return (await lookup(host, { all: true })).map((r) => r.address)
}

function checkHash(hash: Uint8Array, field: string): void {
  if (hash.length !== ID_BYTES) throw new DhtError('INVALID_ARGUMENT', { field, length: hash.length })
}

/** Parses `host:port` or `[v6]:port`. */
export function parseHostPort(text: string): SocketAddress | undefined {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text)
  if (match === null) return undefined
  const port = Number(match[2])
  if (!Number.isInteger(port) || port <= 0 || port > 0xffff) return undefined
  return { host: match[1]!, port }
}
