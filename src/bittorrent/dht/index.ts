export {
  type AnnounceResult,
  DEFAULT_BOOTSTRAP_ROUTERS,
  DhtNode,
  type DhtNodeDeps,
  type DhtNodeOptions,
  type GetPeersResult,
  parseHostPort,
} from './dht-node.js'
export {
  decodeKrpc,
  Krpc,
  type KrpcDeps,
  type KrpcErrorMessage,
  type KrpcMessage,
  type KrpcOptions,
  type KrpcQuery,
  type KrpcReply,
  type KrpcResponse,
  type QueryAnswer,
  type QueryHandler,
} from './krpc.js'
export {
  iterativeLookup,
  type LookupOptions,
  type LookupReply,
  type LookupResult,
  type RespondedNode,
} from './lookup.js'
export { compareDistance, randomNodeId } from './node-id.js'
export { PeerStore, type PeerStoreOptions } from './peer-store.js'
export { type InsertResult, K, type NodeStanding, type RoutingEntry, RoutingTable } from './routing-table.js'
export {
  fileDhtStateStore,
  type KeyValueStore,
  keyValueDhtStateStore,
  memoryDhtStateStore,
  parseDhtState,
} from './state-store.js'
export { TokenIssuer } from './tokens.js'
export {
  DhtError,
  type DhtErrorCode,
  type DhtState,
  type DhtStateStore,
  type DhtStats,
  type NodeContact,
  type NodeId,
} from './types.js'
