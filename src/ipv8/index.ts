export * from './community/index.js'
export * from './discovery/index.js'
export * from './endpoint/index.js'
export * from './errors.js'
export * from './keys/index.js'
export * from './serialization/index.js'
export {
  DEFAULT_IPV8_PORT,
  type Ipv8Config,
  Ipv8Service,
  type Ipv8ServiceDeps,
  type Ipv8ServiceOptions,
  KEY_FILE_NAME,
  type OverlayFactory,
  parseBootstrap,
} from './service.js'
export {
  Circuit,
  type CircuitDataHandler,
  type CircuitId,
  type CircuitInfo,
  type CircuitSocketOptions,
  type CircuitState,
  type CompetingSlot,
  circuitDatagramSocket,
  DEFAULT_TUNNEL_SETTINGS,
  DESTROY_REASON_UNNEEDED,
  e2eAddress,
  type HiddenDropCounters,
  type HiddenSeeding,
  type HiddenSession,
  HiddenTunnelCommunity,
  hiddenLookupHash,
  type JoinedInfo,
  MAX_HOPS,
  maxCircuitPayload,
  PEER_FLAG_EXIT_BT,
  PEER_FLAG_EXIT_HTTP,
  PEER_FLAG_EXIT_IPV8,
  PEER_FLAG_RELAY,
  PEER_FLAG_SPEED_TEST,
  RelaySlots,
  type SlotAdmission,
  TRIBLER_TUNNEL_COMMUNITY_ID,
  TUNNEL_COMMUNITY_ID,
  TunnelCommunity,
  type TunnelCommunityDeps,
  type TunnelCommunityOptions,
  type TunnelDropCounters,
  TunnelError,
  type TunnelErrorCode,
  type TunnelEvents,
  type TunnelSettings,
} from './tunnel/index.js'
