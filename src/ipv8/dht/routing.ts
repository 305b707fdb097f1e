import { isIPv4 } from 'node:net'
import { crc32 } from 'node:zlib'
import type { SocketAddress } from '../../net/index.js'
import type { PublicKey } from '../keys/index.js'
import { Writer, writeIpv6 } from '../serialization/index.js'
import { MAX_BUCKET_SIZE, NODE_GOOD_MS, NODE_LIMIT_INTERVAL_MS, NODE_LIMIT_QUERIES } from './types.js'

const IPV4_MASK = [0x03, 0x0f, 0x3f, 0xff]
const IPV6_MASK = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff]

function ipv6Bytes(host: string): Buffer {
  const w = new Writer(16)
  writeIpv6(w, host)
  return w.toBuffer()
}

/**
 * A node's DHT id, as py-ipv8 computes it (after libtorrent's DHT security extension): the first 3 bytes of the
 * CRC-32 of the masked IP address, then the first 17 bytes of the member id. A node cannot pick its place in the
 * key space without also controlling addresses.
 */
export function calcNodeId(address: SocketAddress, mid: Uint8Array): Buffer {
  let masked: Buffer
  if (isIPv4(address.host)) {
    const parts = address.host.split('.').map(Number)
    masked = Buffer.from(IPV4_MASK.map((m, i) => (parts[i] ?? 0) & m))
  } else {
    const bin = ipv6Bytes(address.host)
    masked = Buffer.from(IPV6_MASK.map((m, i) => (bin[i] ?? 0) & m))
  }
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(masked) >>> 0)
  return Buffer.concat([crc.subarray(0, 3), Buffer.from(mid).subarray(0, 17)])
}

/** XOR distance of two 20-byte ids, as bytes (compare with {@link Buffer.compare}). */
export function distance(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(20)
  for (let i = 0; i < 20; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0)
  return out
}

/** Whether `a` is strictly closer to `target` than `b`. */
export function closer(a: Uint8Array, b: Uint8Array, target: Uint8Array): boolean {
  return Buffer.compare(distance(a, target), distance(b, target)) < 0
}

/** The id as 160 '0'/'1' characters. */
export function idBits(id: Uint8Array): string {
  let out = ''
  for (let i = 0; i < 20; i++) out += (id[i] ?? 0).toString(2).padStart(8, '0')
  return out
}

/** How a node has been answering (BEP 5's good, questionable and bad). */
export type NodeStatus = 'good' | 'unknown' | 'bad'

/** A member of the DHT: its key, address and id, and how it has been answering and asking. */
export class DhtNode {
  readonly publicKey: PublicKey
  readonly mid: Buffer
  address: SocketAddress
  readonly id: Buffer
  /** When it last answered one of our requests (clock ms, 0: never). */
  lastResponseMs = 0
  /** When it sent its last queries (clock ms), at most {@link NODE_LIMIT_QUERIES}. */
  readonly lastQueriesMs: number[] = []
  lastPingSentMs = 0
  /** Requests in a row it did not answer. */
  failed = 0
  rttMs = 0

  constructor(publicKey: PublicKey, address: SocketAddress) {
    this.publicKey = publicKey
    this.mid = publicKey.mid
    this.address = address
    this.id = calcNodeId(address, this.mid)
  }

  get idHex(): string {
    return this.id.toString('hex')
  }

  /** Records a query it sent. */
  queried(nowMs: number): void {
    this.lastQueriesMs.push(nowMs)
    if (this.lastQueriesMs.length > NODE_LIMIT_QUERIES) this.lastQueriesMs.shift()
  }

  get lastQueryMs(): number {
    return this.lastQueriesMs.at(-1) ?? 0
  }

  /** Whether it asked too much lately: its queries are dropped. */
  blocked(nowMs: number): boolean {
    if (this.lastQueriesMs.length < NODE_LIMIT_QUERIES) return false
    return nowMs - (this.lastQueriesMs[0] ?? 0) < NODE_LIMIT_INTERVAL_MS
  }

  status(nowMs: number): NodeStatus {
    if (this.failed >= 2) return 'bad'
    if (
      nowMs - this.lastResponseMs < NODE_GOOD_MS ||
      (this.lastResponseMs > 0 && nowMs - this.lastQueryMs < NODE_GOOD_MS)
    )
      return 'good'
    return 'unknown'
  }
}

/** Nodes whose ids share a prefix (bits, as '0'/'1'). */
export class Bucket {
  readonly prefix: string
  readonly nodes = new Map<string, DhtNode>()
  /** When a node was last added or updated (clock ms). */
  lastChangedMs = 0

  constructor(prefix: string) {
    this.prefix = prefix
  }

  owns(id: Uint8Array): boolean {
    return idBits(id).startsWith(this.prefix)
  }

  /** A random id inside this bucket, to refresh it with a lookup. */
  randomId(random: () => number): Buffer {
    const bits = [...idBits(Buffer.from(Array.from({ length: 20 }, () => Math.floor(random() * 256))))]
    for (let i = 0; i < this.prefix.length; i++) bits[i] = this.prefix[i] as string
    const out = Buffer.alloc(20)
    for (let i = 0; i < 20; i++) out[i] = Number.parseInt(bits.slice(i * 8, i * 8 + 8).join(''), 2)
    return out
  }

  /** Adds or refreshes a node; when full, a bad node (or one twice as slow) makes room. False when no room. */
  add(node: DhtNode, nowMs: number): boolean {
    if (!this.owns(node.id)) return false
    const known = this.nodes.get(node.idHex)
    if (known !== undefined) {
      known.address = node.address
      this.lastChangedMs = nowMs
      return true
    }
    if (this.nodes.size >= MAX_BUCKET_SIZE) {
      for (const n of this.nodes.values())
        if (n.status(nowMs) === 'bad') {
          this.nodes.delete(n.idHex)
          break
        }
    }
    if (this.nodes.size >= MAX_BUCKET_SIZE && node.rttMs > 0) {
      for (const n of this.nodes.values())
        if (n.rttMs / node.rttMs >= 2) {
          this.nodes.delete(n.idHex)
          break
        }
    }
    if (this.nodes.size >= MAX_BUCKET_SIZE) return false
    this.nodes.set(node.idHex, node)
    this.lastChangedMs = nowMs
    return true
  }
}

/**
 * Kademlia's routing table: buckets of at most K ({@link MAX_BUCKET_SIZE}) nodes, where only the bucket holding our
 * own id splits. It therefore holds at most 161·K nodes, most of them close to us.
 */
export class RoutingTable {
  readonly myNodeId: Buffer
  #buckets: Bucket[] = [new Bucket('')]

  constructor(myNodeId: Uint8Array) {
    this.myNodeId = Buffer.from(myNodeId)
  }

  get buckets(): readonly Bucket[] {
    return this.#buckets
  }

  get size(): number {
    let n = 0
    for (const b of this.#buckets) n += b.nodes.size
    return n
  }

  bucketOf(id: Uint8Array): Bucket {
    const bits = idBits(id)
    for (const b of this.#buckets) if (bits.startsWith(b.prefix)) return b
    return this.#buckets[0] as Bucket
  }

  /** Adds (or refreshes) a node, splitting our own bucket when full; returns the node kept, or undefined. */
  add(node: DhtNode, nowMs: number): DhtNode | undefined {
    for (;;) {
      const bucket = this.bucketOf(node.id)
      if (bucket.add(node, nowMs)) return bucket.nodes.get(node.idHex)
      if (!bucket.owns(this.myNodeId) || bucket.prefix.length >= 160) return undefined
      const zero = new Bucket(`${bucket.prefix}0`)
      const one = new Bucket(`${bucket.prefix}1`)
      for (const n of bucket.nodes.values()) (zero.owns(n.id) ? zero : one).add(n, nowMs)
      zero.lastChangedMs = bucket.lastChangedMs
      one.lastChangedMs = bucket.lastChangedMs
      this.#buckets = this.#buckets.filter((b) => b !== bucket).concat(zero, one)
    }
  }

  has(id: Uint8Array): boolean {
    return this.get(id) !== undefined
  }

  get(id: Uint8Array): DhtNode | undefined {
    return this.bucketOf(id).nodes.get(Buffer.from(id).toString('hex'))
  }

  remove(node: DhtNode): boolean {
    return this.bucketOf(node.id).nodes.delete(node.idHex)
  }

  /** Removes the nodes that stopped answering and returns them. */
  removeBadNodes(nowMs: number): DhtNode[] {
    const removed: DhtNode[] = []
    for (const b of this.#buckets)
      for (const [id, n] of b.nodes)
        if (n.status(nowMs) === 'bad') {
          b.nodes.delete(id)
          removed.push(n)
        }
    return removed
  }

  /** Every node. */
  *nodes(): IterableIterator<DhtNode> {
    for (const b of this.#buckets) yield* b.nodes.values()
  }

  /** The `max` nodes closest to `target` that are not bad (and not `exclude`), closest first. */
  closestNodes(target: Uint8Array, nowMs: number, max = 8, exclude?: DhtNode): DhtNode[] {
    const out: { node: DhtNode; d: Buffer }[] = []
    for (const node of this.nodes()) {
      if (node.status(nowMs) === 'bad' || (exclude !== undefined && node.id.equals(exclude.id))) continue
      out.push({ node, d: distance(node.id, target) })
    }
    out.sort((a, b) => Buffer.compare(a.d, b.d))
    return out.slice(0, max).map((e) => e.node)
  }
}
