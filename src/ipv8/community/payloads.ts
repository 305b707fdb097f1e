import { type PayloadOf, payload } from '../serialization/index.js'

// Message ids of the base Community (py-ipv8 community.py); the new-style ids carry any address family.

/** introduction-request, old style (IPv4 only). Bits MSB first: conn0, conn1, supportsNewStyle, 0, 0, 0, 0, advice. */
export const IntroductionRequestPayload = payload(
  246,
  {
    destinationAddress: 'ipv4',
    sourceLanAddress: 'ipv4',
    sourceWanAddress: 'ipv4',
    bits: 'bits',
    identifier: 'H',
    extraBytes: 'raw',
  },
  'introduction-request',
)
export type IntroductionRequestPayload = PayloadOf<typeof IntroductionRequestPayload>

/** introduction-request, new style: the identifier comes before the bits. */
export const NewIntroductionRequestPayload = payload(
  234,
  {
    destinationAddress: 'ip_address',
    sourceLanAddress: 'ip_address',
    sourceWanAddress: 'ip_address',
    identifier: 'H',
    bits: 'bits',
    extraBytes: 'raw',
  },
  'new-introduction-request',
)
export type NewIntroductionRequestPayload = PayloadOf<typeof NewIntroductionRequestPayload>

/**
 * introduction-response, old style. Bits MSB first: conn0, conn1, 0, supportsNewStyle, introSupportsNewStyle,
 * peerLimitReached, 0, 0.
 */
export const IntroductionResponsePayload = payload(
  245,
  {
    destinationAddress: 'ipv4',
    sourceLanAddress: 'ipv4',
    sourceWanAddress: 'ipv4',
    lanIntroductionAddress: 'ipv4',
    wanIntroductionAddress: 'ipv4',
    bits: 'bits',
    identifier: 'H',
    extraBytes: 'raw',
  },
  'introduction-response',
)
export type IntroductionResponsePayload = PayloadOf<typeof IntroductionResponsePayload>

/** introduction-response, new style. Bits MSB first: introSupportsNewStyle, then zeros. */
export const NewIntroductionResponsePayload = payload(
  233,
  {
    destinationAddress: 'ip_address',
    sourceLanAddress: 'ip_address',
    sourceWanAddress: 'ip_address',
    lanIntroductionAddress: 'ip_address',
    wanIntroductionAddress: 'ip_address',
    identifier: 'H',
    bits: 'bits',
    extraBytes: 'raw',
  },
  'new-introduction-response',
)
export type NewIntroductionResponsePayload = PayloadOf<typeof NewIntroductionResponsePayload>

/** puncture-request, old style (unsigned): asks the receiver to puncture its NAT towards a walker. */
export const PunctureRequestPayload = payload(
  250,
  { lanWalkerAddress: 'ipv4', wanWalkerAddress: 'ipv4', identifier: 'H' },
  'puncture-request',
)
export type PunctureRequestPayload = PayloadOf<typeof PunctureRequestPayload>

/** puncture-request, new style (unsigned). */
export const NewPunctureRequestPayload = payload(
  232,
  { lanWalkerAddress: 'ip_address', wanWalkerAddress: 'ip_address', identifier: 'H' },
  'new-puncture-request',
)
export type NewPunctureRequestPayload = PayloadOf<typeof NewPunctureRequestPayload>

/** puncture, old style (signed). */
export const PuncturePayload = payload(
  249,
  { sourceLanAddress: 'ipv4', sourceWanAddress: 'ipv4', identifier: 'H' },
  'puncture',
)
export type PuncturePayload = PayloadOf<typeof PuncturePayload>

/** puncture, new style (signed). */
export const NewPuncturePayload = payload(
  231,
  { sourceLanAddress: 'ip_address', sourceWanAddress: 'ip_address', identifier: 'H' },
  'new-puncture',
)
export type NewPuncturePayload = PayloadOf<typeof NewPuncturePayload>

/** Old Dispersy message ids that py-ipv8 still recognizes and ignores. */
export const DEPRECATED_MESSAGE_IDS: ReadonlySet<number> = new Set([
  255, 254, 253, 252, 251, 248, 247, 244, 243, 242, 241, 240, 239, 238, 237, 236, 235,
])
