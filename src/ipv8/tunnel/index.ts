export { Circuit, type CircuitDataHandler, type Hop, type RelayRoute, type RequiredExit } from './circuit.js'
export { type CircuitSocketOptions, circuitDatagramSocket } from './circuit-socket.js'
export {
  MAX_HOPS,
  TunnelCommunity,
  type TunnelCommunityDeps,
  type TunnelCommunityOptions,
  type TunnelEvents,
} from './community.js'
export {
  boxBeforeNm,
  completeKeyExchange,
  cryptoAuth,
  decryptLayer,
  deriveSessionKeys,
  type EphemeralKey,
  encryptLayer,
  generateEphemeralKey,
  LAYER_OVERHEAD,
  onionDecrypt,
  onionEncrypt,
  ReplayWindow,
  type ResponderHandshake,
  respondToKeyExchange,
  type SessionKeys,
  withReplayProtection,
} from './crypto.js'
export { TunnelError, type TunnelErrorCode } from './errors.js'
export { type ExitLookup, ExitSocket, exitAllows, systemExitLookup } from './exit-socket.js'
export {
  e2eAddress,
  type HiddenDropCounters,
  type HiddenSeeding,
  type HiddenSession,
  HiddenTunnelCommunity,
  type HiddenTunnelOptions,
  hiddenLookupHash,
  TriblerTunnelCommunity,
} from './hidden-services.js'
export * from './payloads.js'
export { PEX_VERSION, PexCommunity, type PexCounters, pexCommunityId } from './pex.js'
export { type CompetingSlot, RelaySlots, type SlotAdmission } from './slots.js'
export * from './types.js'
