import { createDiffieHellman, createHash, type DiffieHellman, randomBytes } from 'node:crypto'
import { MseError } from './types.js'

/** The 768-bit MODP prime of the MSE spec (the first Oakley group, RFC 2409), generator 2. */
export const MSE_PRIME = Buffer.from(
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563',
  'hex',
)
/** Length of a public value and of the shared secret S on the wire. */
export const DH_BYTES = 96
const GENERATOR = Buffer.from([2])
// The spec asks for private keys of at least 128 bits; 160 as libtorrent and Vuze use.
const PRIVATE_KEY_BYTES = 20

const P_MINUS_1 = Buffer.from(MSE_PRIME)
P_MINUS_1[P_MINUS_1.length - 1] = (P_MINUS_1[P_MINUS_1.length - 1] as number) - 1

/**
 * One Diffie-Hellman object for every key pair: creating one checks the prime (about 20 ms of CPU per handshake
 * otherwise). Each use sets its private key first, synchronously, so key pairs never see each other's.
 */
let shared: DiffieHellman | undefined

function group(privateKey: Buffer): DiffieHellman {
  shared ??= createDiffieHellman(MSE_PRIME, GENERATOR)
  shared.setPrivateKey(privateKey)
  return shared
}

/** One side's Diffie-Hellman key pair. */
export class DhKeys {
  readonly #privateKey: Buffer
  /** Our public value, 96 bytes big-endian. */
  readonly publicKey: Buffer

  constructor(privateKey: Uint8Array = randomBytes(PRIVATE_KEY_BYTES)) {
    this.#privateKey = Buffer.from(privateKey)
    this.publicKey = leftPad(group(this.#privateKey).generateKeys())
  }

  /** The shared secret S (96 bytes) with the other side's public value; rejects values outside 2..P-2. */
  secret(otherPublicKey: Uint8Array): Buffer {
    const other = Buffer.from(otherPublicKey)
    if (other.length !== DH_BYTES || Buffer.compare(other, P_MINUS_1) >= 0 || isBelowTwo(other)) {
      throw new MseError('INVALID_PUBLIC_KEY')
    }
    try {
      return leftPad(group(this.#privateKey).computeSecret(other))
    } catch (err) {
      throw new MseError('INVALID_PUBLIC_KEY', { cause: err })
    }
  }
}

function isBelowTwo(value: Buffer): boolean {
  for (let i = 0; i < value.length - 1; i++) if (value[i] !== 0) return false
  return (value[value.length - 1] as number) < 2
}

function leftPad(value: Buffer): Buffer {
  if (value.length === DH_BYTES) return value
  const out = Buffer.alloc(DH_BYTES)
  value.copy(out, DH_BYTES - value.length)
  return out
}

/** SHA-1 of the concatenation: the spec's HASH(). */
export function sha1(...parts: Array<string | Uint8Array>): Buffer {
  const hash = createHash('sha1')
  for (const part of parts) hash.update(part)
  return hash.digest()
}
