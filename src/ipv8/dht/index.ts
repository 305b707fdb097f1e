export { DHTCommunity, type DhtSettings, entryNode, nodeEntry, PingChurn } from './community.js'
export { DHTDiscoveryCommunity } from './discovery.js'
export * from './payloads.js'
export { DhtIntroPointProvider, decodeIntroPoint, encodeIntroPoint } from './provider.js'
export {
  Bucket,
  calcNodeId,
  closer,
  DhtNode,
  distance,
  idBits,
  type NodeStatus,
  RoutingTable,
} from './routing.js'
export { type PutResult, ValueStore } from './storage.js'
export * from './types.js'
