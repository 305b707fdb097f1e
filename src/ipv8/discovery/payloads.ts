import { type PayloadOf, payload, struct } from '../serialization/index.js'

/** similarity-request (signed): the community ids the sender takes part in, concatenated in `preferenceList`. */
export const SimilarityRequestPayload = payload(
  1,
  { identifier: 'H', lanAddress: 'ipv4', wanAddress: 'ipv4', bits: 'bits', preferenceList: 'raw' },
  'similarity-request',
)
export type SimilarityRequestPayload = PayloadOf<typeof SimilarityRequestPayload>

/** similarity-response (signed): our community ids; `tbOverlap` (24-byte entries) is always sent empty. */
export const SimilarityResponsePayload = payload(
  2,
  { identifier: 'H', preferenceList: 'varlenHx20', tbOverlap: 'raw' },
  'similarity-response',
)
export type SimilarityResponsePayload = PayloadOf<typeof SimilarityResponsePayload>

/** ping (unsigned, with global time). */
export const PingPayload = payload(3, { identifier: 'H' }, 'ping')
export type PingPayload = PayloadOf<typeof PingPayload>

/** pong (unsigned, with global time): echoes the ping's identifier. */
export const PongPayload = payload(4, { identifier: 'H' }, 'pong')
export type PongPayload = PayloadOf<typeof PongPayload>

/**
 * The optional prefix of an old-style introduction-request into the DiscoveryCommunity: `"Y" || mid` asks for an
 * introduction to that member.
 */
export const IntroduceToPrefix = struct({ marker: 'c', mid: '20s' }, 'introduce-to')
export type IntroduceToPrefix = PayloadOf<typeof IntroduceToPrefix>
