import type { SocketAddress } from '../../net/index.js'
import { compareDistance } from './node-id.js'
import type { NodeContact, NodeId } from './types.js'

/** What one lookup query returned. */
export interface LookupReply {
  readonly id: NodeId
  readonly nodes: readonly NodeContact[]
  readonly peers?: readonly SocketAddress[]
  readonly token?: Buffer
}

/** A node that answered during a lookup, with the write token it gave. */
export interface RespondedNode extends NodeContact {
  readonly token?: Buffer
}

/** The outcome of an iterative lookup. */
export interface LookupResult {
  /** The closest nodes that answered, closest first (at most `k`). */
  readonly closest: RespondedNode[]
  /** Peers found (get_peers), without duplicates. */
  readonly peers: SocketAddress[]
  /** Queries sent. */
  readonly queried: number
}

/** Options of {@link iterativeLookup}. */
export interface LookupOptions {
  /** Queries in flight at once (Kademlia's alpha, default 3). */
  alpha?: number
  /** Size of the result set (default 8). */
  k?: number
  /** Most queries sent in one lookup (default 200). */
  maxQueries?: number
  signal?: AbortSignal | undefined
  /** Called with every batch of new peers, as they arrive. */
  onPeers?: (peers: SocketAddress[]) => void
  /** Our own id: never queried. */
  ownId?: NodeId
}

interface Candidate {
  readonly address: SocketAddress
  id: NodeId | undefined
  state: 'new' | 'pending' | 'responded' | 'failed'
  token?: Buffer
}

const addressKey = (a: SocketAddress): string => `${a.host}|${a.port}`

/**
 * A Kademlia iterative lookup: queries the closest known nodes, alpha at a time, closest first, adding the nodes
 * they return, until the `k` closest nodes seen have all answered (or failed), or the query budget is spent.
 * Seeds without an id (bootstrap routers) are queried when fewer than `k` nodes with ids are known.
 *
 * @example
 * ```ts
 * const result = await iterativeLookup(infoHash, seeds, (to, signal) => getPeers(to, infoHash, signal))
 * ```
 */
export function iterativeLookup(
  target: NodeId,
  seeds: ReadonlyArray<SocketAddress & { id?: NodeId | undefined }>,
  query: (to: SocketAddress, signal: AbortSignal | undefined) => Promise<LookupReply>,
  options: LookupOptions = {},
): Promise<LookupResult> {
  const alpha = options.alpha ?? 3
  const k = options.k ?? 8
  const maxQueries = options.maxQueries ?? 200
  const candidates = new Map<string, Candidate>()
  const peers = new Map<string, SocketAddress>()
  let inFlight = 0
  let queried = 0

  const offer = (address: SocketAddress, id: NodeId | undefined): void => {
    if (id !== undefined && options.ownId?.equals(id) === true) return
    const key = addressKey(address)
    const existing = candidates.get(key)
    if (existing !== undefined) {
      if (existing.id === undefined && id !== undefined && existing.state === 'new') existing.id = id
      return
    }
    candidates.set(key, { address: { host: address.host, port: address.port }, id, state: 'new' })
  }
  for (const seed of seeds) offer(seed, seed.id)

  const ranked = (): Candidate[] => {
    const live = [...candidates.values()].filter((c) => c.state !== 'failed')
    const withId = live
      .filter((c) => c.id !== undefined)
      .sort((a, b) => compareDistance(target, a.id!, b.id!))
    return [...withId, ...live.filter((c) => c.id === undefined)].slice(0, k)
  }

  return new Promise((resolve) => {
    let finished = false
    const finish = (): void => {
      if (finished) return
      finished = true
      options.signal?.removeEventListener('abort', onAbort)
      const closest = ranked()
        .filter((c) => c.state === 'responded' && c.id !== undefined)
        .map((c) => ({ ...c.address, id: c.id!, ...(c.token === undefined ? {} : { token: c.token }) }))
      resolve({ closest, peers: [...peers.values()], queried })
    }
    const onAbort = (): void => finish()
    options.signal?.addEventListener('abort', onAbort, { once: true })

    const pump = (): void => {
      if (finished) return
      if (options.signal?.aborted === true) {
        finish()
        return
      }
      for (const candidate of ranked()) {
        if (inFlight >= alpha || queried >= maxQueries) break
        if (candidate.state !== 'new') continue
        launch(candidate)
      }
      if (inFlight === 0) finish()
    }

    const launch = (candidate: Candidate): void => {
      candidate.state = 'pending'
      inFlight += 1
      queried += 1
      query(candidate.address, options.signal).then(
        (reply) => {
          inFlight -= 1
          // A node that answers with another id than advertised is a different node: keep what it says it is.
          candidate.id = reply.id
          candidate.state = 'responded'
          if (reply.token !== undefined) candidate.token = reply.token
          for (const node of reply.nodes) offer(node, node.id)
          if (reply.peers !== undefined && reply.peers.length > 0) {
            const fresh = reply.peers.filter((p) => !peers.has(addressKey(p)))
            for (const peer of fresh) peers.set(addressKey(peer), peer)
            if (fresh.length > 0) options.onPeers?.(fresh)
          }
          pump()
        },
        () => {
          inFlight -= 1
          candidate.state = 'failed'
          pump()
        },
      )
    }

    pump()
  })
}
