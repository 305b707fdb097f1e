import {
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto'
import { Ipv8Error } from '../errors.js'

/** `"LibNaCLPK:"`, the first 10 bytes of a Curve25519 public key bin. */
export const PUBLIC_KEY_PREFIX = Buffer.from('LibNaCLPK:', 'latin1')
/** `"LibNaCLSK:"`, the first 10 bytes of a Curve25519 private key bin. */
export const PRIVATE_KEY_PREFIX = Buffer.from('LibNaCLSK:', 'latin1')
/** Length of a LibNaCL key bin, public or private. */
export const KEY_BIN_LENGTH = 74
/** Length of an Ed25519 signature. */
export const SIGNATURE_LENGTH = 64
/** Length of a member id (SHA-1 of the public key bin). */
export const MID_LENGTH = 20

// DER wrappers of raw 32-byte keys (RFC 8410): PKCS#8 for secrets, SubjectPublicKeyInfo for public keys.
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex')
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex')
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex')

/** The libsodium calls we use; libsodium signs about 1.5x and verifies about 2.5x faster than Node's OpenSSL. */
interface Sodium {
  crypto_sign_seed_keypair(publicKey: Buffer, secretKey: Buffer, seed: Buffer): void
  crypto_sign_detached(signature: Buffer, message: Uint8Array, secretKey: Buffer): void
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Buffer): boolean
}

// Optional: without the native module (an unsupported platform) Node's own Ed25519 does the same work.
const sodium: Sodium | undefined = await (async () => {
  try {
    const name = 'sodium-native'
    const mod = (await import(name)) as { default?: Sodium } & Sodium
    return mod.default ?? mod
  } catch {
    return undefined
  }
})()

function importSecret(prefix: Buffer, raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([prefix, raw]), format: 'der', type: 'pkcs8' })
}

function importPublic(prefix: Buffer, raw: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: Buffer.concat([prefix, raw]), format: 'der', type: 'spki' })
  } catch (err) {
    throw new Ipv8Error('BAD_KEY', { reason: 'invalid point', cause: err })
  }
}

function rawPublic(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' })
  return der.subarray(der.length - 32)
}

/**
 * The public half of a LibNaCL key: an X25519 key for key agreement and an independent Ed25519 key for
 * signatures. Instances are immutable; {@link PublicKey.fromBin} caches parsed keys so verifying many packets
 * from the same peer does not re-import its key.
 *
 * @example
 * ```ts
 * const key = PublicKey.fromBin(bin)
 * if (key.verify(message, signature)) console.log(key.mid.toString('hex'))
 * ```
 */
export class PublicKey {
  /** X25519 public key (32 bytes). */
  readonly curvePublicKey: Buffer
  /** Ed25519 verify key (32 bytes). */
  readonly verifyKey: Buffer
  readonly #bin: Buffer
  #verifier: KeyObject | undefined
  #curve: KeyObject | undefined
  #mid: Buffer | undefined
  #midHex: string | undefined

  /** Builds a key from its two raw 32-byte halves. */
  constructor(curvePublicKey: Uint8Array, verifyKey: Uint8Array) {
    if (curvePublicKey.length !== 32 || verifyKey.length !== 32) {
      throw new Ipv8Error('BAD_KEY', { reason: 'key halves must be 32 bytes' })
    }
    this.curvePublicKey = Buffer.from(curvePublicKey)
    this.verifyKey = Buffer.from(verifyKey)
    this.#bin = Buffer.concat([PUBLIC_KEY_PREFIX, this.curvePublicKey, this.verifyKey])
    if (sodium === undefined) this.#verifier = importPublic(ED25519_SPKI, this.verifyKey)
  }

  /**
   * Parses a 74-byte public key bin (`"LibNaCLPK:" || X25519 || Ed25519`). Throws `BAD_KEY` on anything else,
   * `UNSUPPORTED_KEY` for legacy DER (M2Crypto) keys.
   */
  static fromBin(bin: Uint8Array): PublicKey {
    const cacheKey = Buffer.from(bin.buffer, bin.byteOffset, bin.byteLength).toString('latin1')
    const cached = keyCache.get(cacheKey)
    if (cached !== undefined) {
      // least recently used first: a key in use moves to the back, so floods of new keys evict idle ones
      keyCache.delete(cacheKey)
      keyCache.set(cacheKey, cached)
      return cached
    }
    const key = parsePublicBin(bin)
    if (keyCache.size >= KEY_CACHE_SIZE) {
      const oldest = keyCache.keys().next()
      if (oldest.done !== true) keyCache.delete(oldest.value)
    }
    keyCache.set(cacheKey, key)
    return key
  }

  /** The 74-byte key bin as sent on the wire. */
  toBin(): Buffer {
    return Buffer.from(this.#bin)
  }

  /** @internal the key bin itself, not a copy (packet builders copy it into every signed datagram); never modify. */
  get binView(): Buffer {
    return this.#bin
  }

  /** The member id: SHA-1 of the key bin (20 bytes). */
  get mid(): Buffer {
    this.#mid ??= createHash('sha1').update(this.#bin).digest()
    return this.#mid
  }

  /** The member id in hex (computed once per key). */
  get midHex(): string {
    this.#midHex ??= this.mid.toString('hex')
    return this.#midHex
  }

  /** Length of this key type's signatures. */
  get signatureLength(): number {
    return SIGNATURE_LENGTH
  }

  /** Whether `signature` is a valid Ed25519 signature of `message` by this key; never throws. */
  verify(message: Uint8Array, signature: Uint8Array): boolean {
    if (signature.length !== SIGNATURE_LENGTH) return false
    try {
      if (sodium !== undefined) return sodium.crypto_sign_verify_detached(signature, message, this.verifyKey)
      this.#verifier ??= importPublic(ED25519_SPKI, this.verifyKey)
      return verify(null, message, this.#verifier, signature)
    } catch {
      return false
    }
  }

  /** Whether both keys have the same bin. */
  equals(other: PublicKey): boolean {
    return this.#bin.equals(other.#bin)
  }

  /** @internal the X25519 key object, for key agreement. */
  get curveKeyObject(): KeyObject {
    this.#curve ??= importPublic(X25519_SPKI, this.curvePublicKey)
    return this.#curve
  }
}

const KEY_CACHE_SIZE = 4096
const keyCache = new Map<string, PublicKey>()

function parsePublicBin(bin: Uint8Array): PublicKey {
  if (bin.length >= 10 && PUBLIC_KEY_PREFIX.equals(bin.subarray(0, 10))) {
    if (bin.length !== KEY_BIN_LENGTH)
      throw new Ipv8Error('BAD_KEY', { reason: 'length', length: bin.length })
    return new PublicKey(bin.subarray(10, 42), bin.subarray(42, 74))
  }
  if (bin.length > 0 && bin[0] === 0x30) throw new Ipv8Error('UNSUPPORTED_KEY', { reason: 'legacy EC key' })
  throw new Ipv8Error('BAD_KEY', { reason: 'unknown key type' })
}

/**
 * A LibNaCL private key: an X25519 secret and an independent Ed25519 seed, both random at generation. It signs
 * packets (Ed25519, 64-byte detached signatures) and agrees keys (X25519).
 *
 * @example
 * ```ts
 * const key = PrivateKey.generate()
 * const signature = key.sign(Buffer.from('hello'))
 * key.publicKey.verify(Buffer.from('hello'), signature) // true
 * ```
 */
export class PrivateKey {
  /** X25519 secret scalar (32 bytes). */
  readonly curveSecretKey: Buffer
  /** Ed25519 seed (32 bytes). */
  readonly signingSeed: Buffer
  readonly publicKey: PublicKey
  readonly #signer: KeyObject
  readonly #curve: KeyObject
  readonly #sodiumSecret: Buffer | undefined

  /** Builds a key from a raw X25519 secret and Ed25519 seed (32 bytes each). */
  constructor(curveSecretKey: Uint8Array, signingSeed: Uint8Array) {
    if (curveSecretKey.length !== 32 || signingSeed.length !== 32) {
      throw new Ipv8Error('BAD_KEY', { reason: 'key halves must be 32 bytes' })
    }
    this.curveSecretKey = Buffer.from(curveSecretKey)
    this.signingSeed = Buffer.from(signingSeed)
    this.#signer = importSecret(ED25519_PKCS8, this.signingSeed)
    this.#curve = importSecret(X25519_PKCS8, this.curveSecretKey)
    const verifyKey = rawPublic(createPublicKey(this.#signer))
    this.publicKey = PublicKey.fromBin(
      Buffer.concat([PUBLIC_KEY_PREFIX, rawPublic(createPublicKey(this.#curve)), verifyKey]),
    )
    // libsodium's secret key is the seed followed by the public key
    this.#sodiumSecret = sodium === undefined ? undefined : Buffer.concat([this.signingSeed, verifyKey])
  }

  /** A fresh random key pair. */
  static generate(): PrivateKey {
    return new PrivateKey(randomBytes(32), randomBytes(32))
  }

  /** Parses a 74-byte private key bin (`"LibNaCLSK:" || X25519 secret || Ed25519 seed`). */
  static fromBin(bin: Uint8Array): PrivateKey {
    if (bin.length !== KEY_BIN_LENGTH || !PRIVATE_KEY_PREFIX.equals(bin.subarray(0, 10))) {
      if (bin.length > 0 && bin[0] === 0x30)
        throw new Ipv8Error('UNSUPPORTED_KEY', { reason: 'legacy EC key' })
      throw new Ipv8Error('BAD_KEY', { reason: 'not a LibNaCL private key bin', length: bin.length })
    }
    return new PrivateKey(bin.subarray(10, 42), bin.subarray(42, 74))
  }

  /** The 74-byte private key bin, as stored in a key file. */
  toBin(): Buffer {
    return Buffer.concat([PRIVATE_KEY_PREFIX, this.curveSecretKey, this.signingSeed])
  }

  /** The member id of the public key. */
  get mid(): Buffer {
    return this.publicKey.mid
  }

  /** A 64-byte Ed25519 signature of `message`. */
  sign(message: Uint8Array): Buffer {
    if (sodium !== undefined && this.#sodiumSecret !== undefined) {
      const signature = Buffer.allocUnsafe(SIGNATURE_LENGTH)
      sodium.crypto_sign_detached(signature, message, this.#sodiumSecret)
      return signature
    }
    return sign(null, message, this.#signer)
  }

  /**
   * Raw X25519 shared secret with `other` (32 bytes, not hashed). Protocols that need libsodium's
   * `crypto_box_beforenm` apply HSalsa20 on top.
   */
  diffieHellman(other: PublicKey): Buffer {
    return diffieHellman({ privateKey: this.#curve, publicKey: other.curveKeyObject })
  }
}

/** Any LibNaCL key parsed from a bin. */
export type Key = PublicKey | PrivateKey

/** Parses a private or public key bin, whichever it is. */
export function keyFromBin(bin: Uint8Array): Key {
  if (bin.length >= 10 && PRIVATE_KEY_PREFIX.equals(bin.subarray(0, 10))) return PrivateKey.fromBin(bin)
  return PublicKey.fromBin(bin)
}

/** The member id (SHA-1) of a public key bin, without parsing the key. */
export function midOf(publicKeyBin: Uint8Array): Buffer {
  return createHash('sha1').update(publicKeyBin).digest()
}
