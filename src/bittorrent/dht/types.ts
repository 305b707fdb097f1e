import { TriblerError } from '../../common/index.js'
import type { SocketAddress } from '../../net/index.js'

/** Why a DHT operation failed. */
export type DhtErrorCode =
  /** A KRPC packet is not valid bencode or lacks required fields. */
  | 'INVALID_MESSAGE'
  /** A query got no answer in time. */
  | 'TIMEOUT'
  /** The remote node answered with a KRPC error (`details.errorCode`, `details.reason`). */
  | 'ERROR_REPLY'
  /** The caller aborted or the node stopped. */
  | 'ABORTED'
  /** A bad argument: an info hash or node id not 20 bytes, a bad port. */
  | 'INVALID_ARGUMENT'
  /** The node is not running. */
  | 'NOT_RUNNING'
  /** The saved routing table could not be read. */
  | 'INVALID_STATE'

/**
 * An error of the DHT. Bad packets from the network are dropped and counted, never thrown to callers.
 *
 * @example
 * ```ts
 * if (err instanceof DhtError && err.code === 'TIMEOUT') retryLater()
 * ```
 */
export class DhtError extends TriblerError<DhtErrorCode> {}

/** A DHT node's 160-bit id. */
export type NodeId = Buffer

/** A node's contact: id and UDP address. */
export interface NodeContact extends SocketAddress {
  readonly id: NodeId
}

/** What is saved across restarts: our id and the good nodes of the routing table. */
export interface DhtState {
  /** Our node id, hex. */
  readonly nodeId: string
  readonly nodes: ReadonlyArray<{ readonly id: string; readonly host: string; readonly port: number }>
}

/** Where the routing table is saved (a file, the session's key-value store, memory in tests). */
export interface DhtStateStore {
  load(): Promise<DhtState | undefined>
  save(state: DhtState): Promise<void>
}

/** Counters of one DHT node. */
export interface DhtStats {
  queriesSent: number
  queriesReceived: number
  responsesReceived: number
  errorsReceived: number
  timeouts: number
  /** Packets that were not valid KRPC, or responses to no transaction of ours. */
  invalidPackets: number
  /** Queries dropped by the per-address rate limit. */
  rateLimited: number
}
