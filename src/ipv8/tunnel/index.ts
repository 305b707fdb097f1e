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
  type ResponderHandshake,
  respondToKeyExchange,
  type SessionKeys,
} from './crypto.js'
export { TunnelError, type TunnelErrorCode } from './errors.js'
export * from './payloads.js'
export * from './types.js'
