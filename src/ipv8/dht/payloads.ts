import { listOf, type PayloadOf, payload, struct } from '../serialization/index.js'

// DHT messages (spec §6, py-ipv8 `dht/payload.py`). All are signed, without a global time.

/** A node as find-responses and connect-peer-responses list it: `ip_address || varlenH public key bin`. */
export const NodeEntry = struct({ address: 'ip_address', publicKey: 'varlenH' }, 'Node')
export type NodeEntry = PayloadOf<typeof NodeEntry>

export const PingRequestPayload = payload(1, { identifier: 'I' }, 'PingRequestPayload')
export type PingRequestPayload = PayloadOf<typeof PingRequestPayload>

export const PingResponsePayload = payload(2, { identifier: 'I' }, 'PingResponsePayload')
export type PingResponsePayload = PayloadOf<typeof PingResponsePayload>

export const StoreRequestPayload = payload(
  3,
  { identifier: 'I', token: '20s', target: '20s', values: 'varlenH-list' },
  'StoreRequestPayload',
)
export type StoreRequestPayload = PayloadOf<typeof StoreRequestPayload>

export const StoreResponsePayload = payload(4, { identifier: 'I' }, 'StoreResponsePayload')
export type StoreResponsePayload = PayloadOf<typeof StoreResponsePayload>

export const FindRequestPayload = payload(
  5,
  { identifier: 'I', lanAddress: 'ip_address', target: '20s', offset: 'I', forceNodes: '?' },
  'FindRequestPayload',
)
export type FindRequestPayload = PayloadOf<typeof FindRequestPayload>

export const FindResponsePayload = payload(
  6,
  { identifier: 'I', token: '20s', values: 'varlenH-list', nodes: listOf(NodeEntry, 'node-list') },
  'FindResponsePayload',
)
export type FindResponsePayload = PayloadOf<typeof FindResponsePayload>

export const StorePeerRequestPayload = payload(
  7,
  { identifier: 'I', token: '20s', target: '20s' },
  'StorePeerRequestPayload',
)
export type StorePeerRequestPayload = PayloadOf<typeof StorePeerRequestPayload>

export const StorePeerResponsePayload = payload(8, { identifier: 'I' }, 'StorePeerResponsePayload')
export type StorePeerResponsePayload = PayloadOf<typeof StorePeerResponsePayload>

export const ConnectPeerRequestPayload = payload(
  9,
  { identifier: 'I', lanAddress: 'ip_address', target: '20s' },
  'ConnectPeerRequestPayload',
)
export type ConnectPeerRequestPayload = PayloadOf<typeof ConnectPeerRequestPayload>

export const ConnectPeerResponsePayload = payload(
  10,
  { identifier: 'I', nodes: listOf(NodeEntry, 'node-list') },
  'ConnectPeerResponsePayload',
)
export type ConnectPeerResponsePayload = PayloadOf<typeof ConnectPeerResponsePayload>

/** A plain stored value: `0x00 || data`. */
export const StrValue = struct({ data: 'raw' }, 'StrPayload')
/** A signed stored value: `0x01 || varlenH data || I version || varlenH public key || signature`. */
export const SignedStrValue = struct(
  { data: 'varlenH', version: 'I', publicKey: 'varlenH' },
  'SignedStrPayload',
)

/**
 * What a hidden-service introduction point stores under the lookup info-hash (py-ipv8 `DHTIntroPointPayload`):
 * its address, when it was last seen, and its and the seeder's key without the `LibNaCLPK:` prefix.
 */
export const DhtIntroPointValue = struct(
  { address: 'ip_address', lastSeen: 'I', introPk: 'varlenH', seederPk: 'varlenH' },
  'DHTIntroPointPayload',
)
export type DhtIntroPointValue = PayloadOf<typeof DhtIntroPointValue>
