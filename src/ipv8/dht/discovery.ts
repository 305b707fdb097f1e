import type { SocketAddress } from '../../net/index.js'
import type { CommunityDeps, Peer } from '../community/index.js'
import { DHTCommunity, type DhtSettings, entryNode, nodeEntry } from './community.js'
import {
  ConnectPeerRequestPayload,
  ConnectPeerResponsePayload,
  type PingRequestPayload,
  type PingResponsePayload,
  StorePeerRequestPayload,
  StorePeerResponsePayload,
} from './payloads.js'
import { DhtNode } from './routing.js'
import {
  DhtError,
  MAX_NODES_IN_FIND,
  MAX_PEER_KEYS,
  MAX_PEERS_PER_KEY,
  PING_INTERVAL_MS,
  REQUEST_TIMEOUT_MS,
  TARGET_NODES,
} from './types.js'

/** A stored peer that has not queried us for this long is forgotten. */
const STORED_PEER_TIMEOUT_MS = 60_000

/**
 * py-ipv8's DHTDiscoveryCommunity: the DHT plus peer storage, so peers behind a NAT can be reached. Every node
 * asks the nodes closest to its own mid to store it (store-peer, every 30 s until 4 do) and keeps pinging them;
 * a node looking for a mid asks those nodes to puncture it towards the asker (connect-peer) and gets their list.
 *
 * @example
 * ```ts
 * const dht = new DHTDiscoveryCommunity({ endpoint, key })
 * await dht.start()
 * const nodes = await dht.connectPeer(otherMid)
 * ```
 */
export class DHTDiscoveryCommunity extends DHTCommunity {
  /** Peers stored here: their mid (hex) to the nodes (addresses) they stored from. */
  readonly #store = new Map<string, DhtNode[]>()
  /** Nodes that store us, per key (our mid, hex). */
  readonly #storeForMe = new Map<string, DhtNode[]>()

  constructor(deps: CommunityDeps, settings: DhtSettings = {}) {
    super(deps, settings)
    this.addDhtHandler(StorePeerRequestPayload, (peer, p, source) =>
      this.#onStorePeerRequest(peer, p, source),
    )
    this.addDhtHandler(StorePeerResponsePayload, (peer, p) => this.#onStorePeerResponse(peer, p))
    this.addDhtHandler(ConnectPeerRequestPayload, (peer, p, source) =>
      this.#onConnectPeerRequest(peer, p, source),
    )
    this.addDhtHandler(ConnectPeerResponsePayload, (peer, p) => {
      const entry = this.take<DhtNode[]>('connect-peer', peer, p.identifier)
      entry?.resolve(p.nodes.flatMap((n) => entryNode(n) ?? []))
    })
  }

  override async start(): Promise<void> {
    await super.start()
    this.tasks.every('store-peer', 30_000, () => void this.storePeer().catch(() => []))
    this.tasks.every('ping-all', 10_000, () => this.#pingAll())
  }

  /** The nodes stored under a mid. */
  storedPeers(mid: Uint8Array): readonly DhtNode[] {
    return this.#store.get(Buffer.from(mid).toString('hex')) ?? []
  }

  /** The nodes that store us. */
  get storingUs(): readonly DhtNode[] {
    return this.#storeForMe.get(this.myMid.toString('hex')) ?? []
  }

  /** Counts for statistics: peers stored here and nodes storing us, per key. */
  peerStoreCounts(): { stored: Record<string, number>; storeForMe: Record<string, number> } {
    const count = (m: Map<string, DhtNode[]>): Record<string, number> =>
      Object.fromEntries([...m].map(([k, v]) => [k, v.length]))
    return { stored: count(this.#store), storeForMe: count(this.#storeForMe) }
  }

  protected override onPingRequest(peer: Peer, payload: PingRequestPayload, source: SocketAddress): void {
    super.onPingRequest(peer, payload, source)
    const node = find(this.#store, peer)
    node?.queried(this.clock.now())
  }

  protected override onPingResponse(peer: Peer, payload: PingResponsePayload): void {
    super.onPingResponse(peer, payload)
    const node = find(this.#storeForMe, peer)
    if (node !== undefined) node.lastResponseMs = this.clock.now()
  }

  /** Asks the nodes closest to our mid to store us, unless half the target already do. */
  async storePeer(): Promise<DhtNode[]> {
    const key = this.myMid
    if ((this.#storeForMe.get(key.toString('hex'))?.length ?? 0) >= TARGET_NODES / 2) return []
    const nodes = await this.findNodes(key)
    return this.#sendStorePeer(key, nodes.slice(0, TARGET_NODES))
  }

  async #sendStorePeer(key: Buffer, nodes: DhtNode[]): Promise<DhtNode[]> {
    const storing = this.#storeForMe.get(key.toString('hex')) ?? []
    // fresh objects: the routing table's nodes keep their own statistics
    const fresh = nodes
      .filter((n) => !storing.some((s) => s.mid.equals(n.mid)))
      .map((n) => new DhtNode(n.publicKey, n.address))
    if (fresh.length === 0) throw new DhtError('NO_NODES', { reason: 'no nodes to store us' })
    const requests: Promise<DhtNode | undefined>[] = []
    for (const node of fresh) {
      const token = this.tokenOf(node)
      if (token === undefined) continue
      requests.push(
        this.request<DhtNode>('store-peer', node, REQUEST_TIMEOUT_MS, (identifier) =>
          this.sendDht(node.address, StorePeerRequestPayload, { identifier, token, target: key }),
        ),
      )
    }
    if (requests.length === 0) throw new DhtError('NOT_STORED', { reason: 'no token' })
    return (await Promise.all(requests)).filter((n): n is DhtNode => n !== undefined)
  }

  /**
   * Finds the nodes a peer can be reached at: those stored here, else (after pinging `peer` directly, when
   * given) the peer itself when the lookup of its mid reached it, else the ones the nodes storing it return,
   * after they punctured it towards us.
   */
  async connectPeer(
    mid: Uint8Array,
    peer?: { publicKey: DhtNode['publicKey']; address: SocketAddress },
  ): Promise<DhtNode[]> {
    const stored = this.#store.get(Buffer.from(mid).toString('hex'))
    if (stored !== undefined && stored.length > 0) return stored
    if (peer !== undefined) {
      const node = new DhtNode(peer.publicKey, peer.address)
      if ((await this.ping(node)) !== undefined) return [node]
    }
    const nodes = (await this.findNodes(mid))
      .slice(0, TARGET_NODES)
      .map((n) => new DhtNode(n.publicKey, n.address))
    if (nodes.length === 0) throw new DhtError('NO_NODES', { reason: 'no nodes to ask' })
    // the lookup may have met the peer itself: then it only has to answer a ping
    const itself = nodes.find((n) => n.mid.equals(mid))
    if (itself !== undefined && (await this.ping(itself)) !== undefined) return [itself]
    const lists = await Promise.all(
      nodes.map((node) =>
        this.request<DhtNode[]>('connect-peer', node, REQUEST_TIMEOUT_MS, (identifier) =>
          this.sendDht(node.address, ConnectPeerRequestPayload, {
            identifier,
            lanAddress: this.myLanAddress,
            target: Buffer.from(mid),
          }),
        ),
      ),
    )
    const out = new Map<string, DhtNode>()
    for (const list of lists) for (const n of list ?? []) out.set(n.idHex, n)
    if (out.size === 0) throw new DhtError('NO_NODES', { reason: 'peer not found' })
    return [...out.values()]
  }

  #onStorePeerRequest(peer: Peer, payload: StorePeerRequestPayload, source: SocketAddress): void {
    const node = new DhtNode(peer.publicKey, source)
    node.queried(this.clock.now())
    if (!this.checkToken(node, payload.token)) {
      this.dhtDrops.badToken += 1
      return
    }
    if (!payload.target.equals(peer.mid)) {
      this.dhtDrops.wrongKey += 1
      return
    }
    const key = payload.target.toString('hex')
    let list = this.#store.get(key)
    if (list === undefined) {
      if (this.#store.size >= MAX_PEER_KEYS) {
        this.dhtDrops.storeFull += 1
        return
      }
      list = []
      this.#store.set(key, list)
    }
    const at = list.findIndex((n) => n.idHex === node.idHex)
    if (at >= 0) list[at] = node
    else {
      list.push(node)
      if (list.length > MAX_PEERS_PER_KEY) list.shift()
    }
    this.sendDht(source, StorePeerResponsePayload, { identifier: payload.identifier })
  }

  #onStorePeerResponse(peer: Peer, payload: StorePeerResponsePayload): void {
    const node = this.answered('store-peer', peer, payload.identifier)
    if (node === undefined) return
    const key = this.myMid.toString('hex')
    const list = this.#storeForMe.get(key) ?? []
    this.#storeForMe.set(key, list)
    if (!list.some((n) => n.idHex === node.idHex) && list.length < MAX_PEERS_PER_KEY) list.push(node)
  }

  #onConnectPeerRequest(_peer: Peer, payload: ConnectPeerRequestPayload, source: SocketAddress): void {
    const nodes = (this.#store.get(payload.target.toString('hex')) ?? []).slice(0, MAX_NODES_IN_FIND)
    for (const node of nodes)
      this.sendPunctureRequest(node.address, payload.lanAddress, source, payload.identifier)
    this.sendDht(source, ConnectPeerResponsePayload, {
      identifier: payload.identifier,
      nodes: nodes.map(nodeEntry),
    })
  }

  #pingAll(): void {
    const now = this.clock.now()
    for (const [key, nodes] of this.#storeForMe) {
      const kept = nodes.filter((n) => n.status(now) !== 'bad')
      this.#storeForMe.set(key, kept)
      for (const node of kept) if (node.lastPingSentMs + PING_INTERVAL_MS <= now) void this.ping(node)
    }
    for (const [key, nodes] of this.#store) {
      const kept = nodes.filter((n) => now <= n.lastQueryMs + STORED_PEER_TIMEOUT_MS)
      if (kept.length === 0) this.#store.delete(key)
      else this.#store.set(key, kept)
    }
  }
}

function find(map: Map<string, DhtNode[]>, peer: Peer): DhtNode | undefined {
  for (const nodes of map.values()) for (const node of nodes) if (node.mid.equals(peer.mid)) return node
  return undefined
}
