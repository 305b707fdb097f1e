import { TriblerError } from '../../common/index.js'

/** The DHTCommunity id (DHTDiscoveryCommunity shares it). */
export const DHT_COMMUNITY_ID = Buffer.from('8d0be1845d74d175f178197cad001591d04d73cc', 'hex')

/** Nodes a bucket holds (Kademlia's K). */
export const MAX_BUCKET_SIZE = 8
/** A node that sent this many queries within {@link NODE_LIMIT_INTERVAL_MS} is ignored until it slows down. */
export const NODE_LIMIT_QUERIES = 10
export const NODE_LIMIT_INTERVAL_MS = 5_000
/** A node counts as good while it answered within this time (BEP 5). */
export const NODE_GOOD_MS = 15 * 60_000
/** A bucket untouched for this long is refreshed with a lookup of a random id in it. */
export const BUCKET_REFRESH_MS = 15 * 60_000
/** How often each node in the routing table is pinged. */
export const PING_INTERVAL_MS = 25_000
/** How long a token we received stays usable, and how often our own token secret rotates. */
export const TOKEN_EXPIRATION_MS = 600_000
export const TOKEN_ROTATION_MS = 300_000
/** Largest serialized value, and the longest time a value is kept. */
export const MAX_ENTRY_SIZE = 170
export const MAX_ENTRY_AGE_MS = 3_600_000
/** Values one store-request may carry, values and nodes one find-response carries. */
export const MAX_VALUES_IN_STORE = 8
export const MAX_VALUES_IN_FIND = 8
export const MAX_NODES_IN_FIND = 8
/** Nodes a value is stored on. */
export const TARGET_NODES = 8
/** Crawl bounds: nodes to start from, find-requests in all, find-requests at a time. */
export const MAX_CRAWL_NODES = 8
export const MAX_CRAWL_REQUESTS = 24
export const MAX_CRAWL_TASKS = 4
/** Timeouts of find-requests and of the other requests. */
export const FIND_TIMEOUT_MS = 2_000
export const REQUEST_TIMEOUT_MS = 5_000

/** Serialized value kinds: plain bytes, or bytes signed by the storer with a version. */
export const DHT_ENTRY_STR = 0
export const DHT_ENTRY_STR_SIGNED = 1

/** Memory bounds of the value store (py-ipv8 has none; a flood must not grow the node without limit). */
export const MAX_STORED_KEYS = 4_096
export const MAX_VALUES_PER_KEY = 32
export const MAX_STORED_VALUES = 20_000
/** Tokens we hold for other nodes, and peers we store for DHTDiscoveryCommunity (keys, nodes per key). */
export const MAX_TOKENS = 4_096
export const MAX_PEER_KEYS = 1_024
export const MAX_PEERS_PER_KEY = 8

/** Codes of {@link DhtError}. */
export type DhtErrorCode =
  /** The routing table has no node to start from. */
  | 'NO_NODES'
  /** No node took the value (no token, no answer). */
  | 'NOT_STORED'
  /** A value is larger than {@link MAX_ENTRY_SIZE} or a key not 20 bytes. */
  | 'BAD_VALUE'
  /** A request got no answer in time. */
  | 'TIMEOUT'
  /** The community is not running. */
  | 'NOT_RUNNING'

/**
 * The error of the DHT.
 *
 * @example
 * ```ts
 * throw new DhtError('NO_NODES', { target: key.toString('hex') })
 * ```
 */
export class DhtError extends TriblerError<DhtErrorCode> {}

/** A value found in the DHT: its data, and the key that signed it (`undefined` for plain values). */
export interface DhtValue {
  readonly data: Buffer
  readonly publicKey: Buffer | undefined
}

/** Why DHT messages were dropped, counted per reason (undecodable ones are in the community's statistics). */
export interface DhtDropCounters {
  /** Queries of a node that exceeded its query budget. */
  rateLimited: number
  /** store-requests and store-peer-requests whose token is not one we handed out to that node. */
  badToken: number
  /** store-requests with too many or too large values, or values that do not parse or verify. */
  badValue: number
  /** Values refused because the store was full. */
  storeFull: number
  /** Answers nobody asked for (unknown identifier, or from another node than the one asked). */
  unknownRequest: number
  /** store-peer-requests for a key other than the sender's own mid. */
  wrongKey: number
}

/** `GET /ipv8/dht/statistics`'s numbers. */
export interface DhtStatistics {
  readonly nodeId: Buffer
  readonly routingTableSize: number
  readonly routingTableBuckets: number
  readonly keysInStore: number
  readonly valuesInStore: number
  readonly tokens: number
}
