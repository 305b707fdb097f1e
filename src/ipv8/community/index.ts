export { isLanHost, isLoopback, isNoAddress, lanAddressOf, sameAddress } from './addresses.js'
export {
  AddressBootstrapper,
  type AddressBootstrapperOptions,
  AnnounceLimiter,
  type BootstrapOptions,
  type Bootstrapper,
  type BootstrapTarget,
  DEFAULT_BOOTSTRAP_ADDRESSES,
  DEFAULT_BOOTSTRAP_NAMES,
  defaultBootstrappers,
  LanBroadcastBootstrapper,
  type LanBroadcastOptions,
  type LanBroadcastStats,
  publicNetworkAllowed,
} from './bootstrap.js'
export {
  Community,
  type CommunityDeps,
  type CommunityEvents,
  type CommunitySettings,
  type CommunityStatistics,
  type MessageContext,
  type MessageCounters,
  type RawHandler,
  type ReportedCounters,
  type SignedHandler,
  type UnsignedHandler,
} from './community.js'
export { Network, type WalkableAddress } from './network.js'
export * from './payloads.js'
export { Peer } from './peer.js'
export { type AddOptions, type CacheEntry, RequestCache } from './request-cache.js'
