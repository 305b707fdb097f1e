import { randomBytes } from 'node:crypto'
import { canonicalHost } from '../../net/index.js'
import { bigIntToId, compareDistance, ID_BITS, idToBigInt } from './node-id.js'
import type { NodeContact, NodeId } from './types.js'

/** Nodes per bucket (BEP 5's K). */
export const K = 8
/** A node that answered within this time is good (BEP 5: 15 minutes). */
export const GOOD_NODE_MS = 15 * 60 * 1000
/** Failed queries in a row after which a node is bad. */
const BAD_AFTER_FAILURES = 2

/** One node in the table. */
export interface RoutingEntry extends NodeContact {
  /** Last time (ms) we heard anything from it. */
  lastSeenMs: number
  /** Last time (ms) it answered one of our queries; -Infinity when it never did. */
  lastResponseMs: number
  /** Queries in a row it did not answer. */
  failures: number
}

/** A node's standing (BEP 5). */
export type NodeStanding = 'good' | 'questionable' | 'bad'

interface Bucket {
  /** Range of ids [min, max). */
  readonly min: bigint
  readonly max: bigint
  nodes: RoutingEntry[]
  /** Nodes that would join if a member goes bad, most recently seen last. */
  replacements: RoutingEntry[]
  lastChangedMs: number
}

/** What happened to a node offered to the table. */
export interface InsertResult {
  readonly added: boolean
  /** When the bucket is full of nodes not known to be bad: the questionable node to ping. */
  readonly ping?: RoutingEntry
}

/**
 * A Kademlia routing table (BEP 5): 160-bit ids, buckets of {@link K} nodes covering the id space, only the bucket
 * holding our own id splits. Nodes are good, questionable or bad; a full bucket keeps a replacement cache that
 * takes the place of nodes that go bad.
 *
 * @example
 * ```ts
 * const table = new RoutingTable(myId)
 * table.insert({ id, host, port }, { responded: true, nowMs })
 * const closest = table.closest(target, 8)
 * ```
 */
export class RoutingTable {
  readonly ownId: NodeId
  readonly #ownNumber: bigint
  #buckets: Bucket[]

  constructor(ownId: NodeId) {
    this.ownId = ownId
    this.#ownNumber = idToBigInt(ownId)
    this.#buckets = [{ min: 0n, max: 1n << BigInt(ID_BITS), nodes: [], replacements: [], lastChangedMs: 0 }]
  }

  /** Number of nodes in the table (not counting replacements). */
  get size(): number {
    return this.#buckets.reduce((sum, bucket) => sum + bucket.nodes.length, 0)
  }

  get bucketCount(): number {
    return this.#buckets.length
  }

  /** All nodes, bucket by bucket. */
  nodes(): RoutingEntry[] {
    return this.#buckets.flatMap((bucket) => bucket.nodes)
  }

  /** A node's standing at `nowMs`. */
  standing(entry: RoutingEntry, nowMs: number): NodeStanding {
    if (entry.failures >= BAD_AFTER_FAILURES) return 'bad'
    if (nowMs - entry.lastResponseMs < GOOD_NODE_MS) return 'good'
    return 'questionable'
  }

  /** The entry with this id, if present. */
  get(id: Uint8Array): RoutingEntry | undefined {
    return this.#bucketOf(idToBigInt(id)).nodes.find((entry) => entry.id.equals(id))
  }

  /**
   * Offers a node we heard from: `responded` when it answered our query (only those become good). A known id at
   * a new address is ignored unless the old entry is bad, so nobody can redirect a good node's traffic.
   */
  insert(contact: NodeContact, opts: { responded: boolean; nowMs: number }): InsertResult {
    if (contact.id.equals(this.ownId) || contact.port <= 0 || contact.port > 0xffff) return { added: false }
    const host = canonicalHost(contact.host)
    const number = idToBigInt(contact.id)
    for (;;) {
      const bucket = this.#bucketOf(number)
      const existing = bucket.nodes.find((entry) => entry.id.equals(contact.id))
      if (existing !== undefined) {
        const moved = existing.host !== host || existing.port !== contact.port
        if (moved && this.standing(existing, opts.nowMs) !== 'bad') return { added: false }
        if (moved) Object.assign(existing, { host, port: contact.port })
        existing.lastSeenMs = opts.nowMs
        if (opts.responded) {
          existing.lastResponseMs = opts.nowMs
          existing.failures = 0
        }
        bucket.lastChangedMs = opts.nowMs
        return { added: false }
      }
      if (bucket.nodes.some((entry) => entry.host === host && entry.port === contact.port))
        return { added: false }
      const entry: RoutingEntry = {
        id: Buffer.from(contact.id),
        host,
        port: contact.port,
        lastSeenMs: opts.nowMs,
        lastResponseMs: opts.responded ? opts.nowMs : Number.NEGATIVE_INFINITY,
        failures: 0,
      }
      if (bucket.nodes.length < K) {
        bucket.nodes.push(entry)
        bucket.lastChangedMs = opts.nowMs
        return { added: true }
      }
      if (this.#canSplit(bucket)) {
        this.#split(bucket)
        continue
      }
      const badIndex = bucket.nodes.findIndex((node) => this.standing(node, opts.nowMs) === 'bad')
      if (badIndex >= 0) {
        bucket.nodes[badIndex] = entry
        bucket.lastChangedMs = opts.nowMs
        return { added: true }
      }
      if (opts.responded) this.#addReplacement(bucket, entry)
      const questionable = bucket.nodes
        .filter((node) => this.standing(node, opts.nowMs) === 'questionable')
        .sort((a, b) => a.lastSeenMs - b.lastSeenMs)[0]
      return questionable === undefined ? { added: false } : { added: false, ping: questionable }
    }
  }

  /** Records a query the node did not answer; a node that goes bad gives its place to a replacement. */
  failed(id: Uint8Array, nowMs: number): void {
    const bucket = this.#bucketOf(idToBigInt(id))
    const index = bucket.nodes.findIndex((entry) => entry.id.equals(id))
    if (index < 0) return
    const entry = bucket.nodes[index]!
    entry.failures += 1
    if (this.standing(entry, nowMs) !== 'bad') return
    const replacement = bucket.replacements.pop()
    if (replacement === undefined) return
    bucket.nodes[index] = replacement
    bucket.lastChangedMs = nowMs
  }

  /** Removes a node (for example one that answered with a different id). */
  remove(id: Uint8Array): void {
    const bucket = this.#bucketOf(idToBigInt(id))
    bucket.nodes = bucket.nodes.filter((entry) => !entry.id.equals(id))
  }

  /** The `count` non-bad nodes closest to `target` by XOR distance. */
  closest(target: Uint8Array, count: number, nowMs: number): RoutingEntry[] {
    return this.nodes()
      .filter((entry) => this.standing(entry, nowMs) !== 'bad')
      .sort((a, b) => compareDistance(target, a.id, b.id))
      .slice(0, count)
  }

  /** Random targets in every bucket not changed for `idleMs`, for bucket refresh (BEP 5: 15 minutes). */
  refreshTargets(nowMs: number, idleMs: number): NodeId[] {
    return this.#buckets
      .filter((bucket) => nowMs - bucket.lastChangedMs >= idleMs)
      .map((bucket) => {
        const span = bucket.max - bucket.min
        const offset = idToBigInt(randomBytes(20)) % span
        bucket.lastChangedMs = nowMs
        return bigIntToId(bucket.min + offset)
      })
  }

  #bucketOf(number: bigint): Bucket {
    for (const bucket of this.#buckets) if (number >= bucket.min && number < bucket.max) return bucket
    // The buckets always cover the whole id space.
    throw new Error('routing table does not cover id')
  }

  #canSplit(bucket: Bucket): boolean {
    return (
      this.#ownNumber >= bucket.min && this.#ownNumber < bucket.max && bucket.max - bucket.min > BigInt(K)
    )
  }

  #split(bucket: Bucket): void {
    const middle = bucket.min + (bucket.max - bucket.min) / 2n
    const low: Bucket = {
      min: bucket.min,
      max: middle,
      nodes: [],
      replacements: [],
      lastChangedMs: bucket.lastChangedMs,
    }
    const high: Bucket = {
      min: middle,
      max: bucket.max,
      nodes: [],
      replacements: [],
      lastChangedMs: bucket.lastChangedMs,
    }
    for (const entry of bucket.nodes) (idToBigInt(entry.id) < middle ? low : high).nodes.push(entry)
    for (const entry of bucket.replacements)
      (idToBigInt(entry.id) < middle ? low : high).replacements.push(entry)
    const index = this.#buckets.indexOf(bucket)
    this.#buckets.splice(index, 1, low, high)
  }

  #addReplacement(bucket: Bucket, entry: RoutingEntry): void {
    bucket.replacements = bucket.replacements.filter((r) => !r.id.equals(entry.id))
    bucket.replacements.push(entry)
    if (bucket.replacements.length > K) bucket.replacements.shift()
  }
}
