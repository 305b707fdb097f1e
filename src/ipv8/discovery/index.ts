export {
  DISCOVERY_COMMUNITY_ID,
  DiscoveryCommunity,
  type DiscoverySettings,
  PeriodicSimilarity,
  type PeriodicSimilarityOptions,
} from './discovery-community.js'
export * from './payloads.js'
export {
  EdgeWalk,
  type EdgeWalkOptions,
  RandomWalk,
  type RandomWalkOptions,
  type WalkStrategy,
} from './strategies.js'
