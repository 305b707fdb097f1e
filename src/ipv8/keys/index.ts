export {
  batchVerifier,
  MAX_SIGNATURE_BATCH,
  SignatureVerifier,
  type SignedItem,
  type VerifyCounts,
  verifyBatch,
} from './batch.js'
export { loadOrCreateKeyFile } from './key-file.js'
export {
  KEY_BIN_LENGTH,
  type Key,
  keyFromBin,
  MID_LENGTH,
  midOf,
  PRIVATE_KEY_PREFIX,
  PrivateKey,
  PUBLIC_KEY_PREFIX,
  PublicKey,
  SIGNATURE_LENGTH,
} from './keys.js'
