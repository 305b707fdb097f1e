import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  timingSafeEqual,
} from 'node:crypto'
import { TunnelError } from './errors.js'
import { BACKWARD, type Direction, FORWARD } from './types.js'

/**
 * The per-hop keys both ends of a hop derive from the key exchange (spec §7.4). The explicit counters are the
 * last value used in each direction; {@link encryptLayer} increments before use, so the first cell carries 2.
 */
export interface SessionKeys {
  readonly keyForward: Buffer
  readonly keyBackward: Buffer
  readonly saltForward: Buffer
  readonly saltBackward: Buffer
  counterForward: number
  counterBackward: number
  /** Counters already accepted per direction; set on keys that receive, absent in plain key derivation. */
  replay?: { forward: ReplayWindow; backward: ReplayWindow }
}

/**
 * Rejects a counter seen before or too far behind the highest one. py-ipv8 does not check counters, but its
 * senders never repeat one, so refusing repeats only drops replayed cells.
 */
export class ReplayWindow {
  readonly #bits: Uint32Array
  readonly #size: number
  #highest = -1

  constructor(size = 4096) {
    this.#size = size
    this.#bits = new Uint32Array(size / 32)
  }

  /** Whether `counter` may still be accepted (not seen, not older than the window). */
  fresh(counter: number): boolean {
    if (counter > this.#highest) return true
    if (counter <= this.#highest - this.#size) return false
    const slot = counter % this.#size
    return ((this.#bits[slot >>> 5] as number) & (1 << (slot & 31))) === 0
  }

  /** Records an authenticated counter. */
  mark(counter: number): void {
    if (counter > this.#highest) {
      const gap = counter - this.#highest
      if (gap >= this.#size) this.#bits.fill(0)
      else for (let c = this.#highest + 1; c < counter; c++) this.#clear(c)
      this.#highest = counter
    }
    const slot = counter % this.#size
    this.#bits[slot >>> 5] = (this.#bits[slot >>> 5] as number) | (1 << (slot & 31))
  }

  #clear(counter: number): void {
    const slot = counter % this.#size
    this.#bits[slot >>> 5] = (this.#bits[slot >>> 5] as number) & ~(1 << (slot & 31))
  }
}

/** Gives keys replay windows, so {@link decryptLayer} refuses a counter it already accepted. */
export function withReplayProtection(keys: SessionKeys): SessionKeys {
  keys.replay ??= { forward: new ReplayWindow(), backward: new ReplayWindow() }
  return keys
}

/** An ephemeral X25519 key pair (raw 32-byte halves). */
export interface EphemeralKey {
  readonly secretKey: Buffer
  readonly publicKey: Buffer
}

/** What the responding hop of a key exchange sends back and keeps. */
export interface ResponderHandshake {
  /** The 64-byte shared secret. */
  readonly shared: Buffer
  /** `Y`, the responder's ephemeral public key (the `key` field of created/extended). */
  readonly key: Buffer
  /** `auth` = HMAC-SHA512-256(key = shared[0:32], message = Y). */
  readonly auth: Buffer
}

/** Bytes one encrypted layer adds: the 8-byte counter and the 16-byte Poly1305 tag. */
export const LAYER_OVERHEAD = 24

interface Sodium {
  crypto_aead_chacha20poly1305_ietf_encrypt(
    c: Buffer,
    m: Buffer,
    ad: Buffer | null,
    nsec: null,
    npub: Buffer,
    k: Buffer,
  ): number
  crypto_aead_chacha20poly1305_ietf_decrypt(
    m: Buffer,
    nsec: null,
    c: Buffer,
    ad: Buffer | null,
    npub: Buffer,
    k: Buffer,
  ): number
}

// libsodium seals a 1 KiB cell about 3x faster than a fresh Node cipher object per cell; Node's cipher is the
// fallback where the native module is missing.
const sodium: Sodium | undefined = await (async () => {
  try {
    const name = 'sodium-native'
    const mod = (await import(name)) as { default?: Sodium } & Sodium
    return mod.default ?? mod
  } catch {
    return undefined
  }
})()

const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex')
const KDF_INFO = Buffer.from('key_generation', 'latin1')
const ZERO16 = Buffer.alloc(16)

/** A fresh random X25519 key pair for one hop of one circuit. */
export function generateEphemeralKey(): EphemeralKey {
  const { privateKey, publicKey } = generateKeyPairSync('x25519')
  const secret = privateKey.export({ format: 'der', type: 'pkcs8' })
  const pub = publicKey.export({ format: 'der', type: 'spki' })
  return {
    secretKey: Buffer.from(secret.subarray(secret.length - 32)),
    publicKey: Buffer.from(pub.subarray(-32)),
  }
}

/** Raw X25519(secret, public); throws `KEY_EXCHANGE` for a low-order point (all-zero output). */
export function x25519(secretKey: Uint8Array, publicKey: Uint8Array): Buffer {
  if (secretKey.length !== 32 || publicKey.length !== 32) {
    throw new TunnelError('KEY_EXCHANGE', { reason: 'X25519 keys are 32 bytes' })
  }
  let out: Buffer
  try {
    out = diffieHellman({
      privateKey: createPrivateKey({
        key: Buffer.concat([X25519_PKCS8, secretKey]),
        format: 'der',
        type: 'pkcs8',
      }),
      publicKey: createPublicKey({
        key: Buffer.concat([X25519_SPKI, publicKey]),
        format: 'der',
        type: 'spki',
      }),
    })
  } catch (err) {
    throw new TunnelError('KEY_EXCHANGE', { reason: 'X25519 failed', cause: err })
  }
  if (out.every((b) => b === 0)) throw new TunnelError('KEY_EXCHANGE', { reason: 'low-order point' })
  return out
}

const rotl = (v: number, n: number): number => (v << n) | (v >>> (32 - n))

/** HSalsa20(key, 16-byte input): the core of XSalsa20 and of libsodium's `crypto_box_beforenm`. */
export function hsalsa20(key: Uint8Array, input: Uint8Array): Buffer {
  const k = Buffer.from(key)
  const n = Buffer.from(input)
  const x = new Uint32Array(16)
  x[0] = 0x61707865
  x[5] = 0x3320646e
  x[10] = 0x79622d32
  x[15] = 0x6b206574
  for (let i = 0; i < 4; i++) {
    x[1 + i] = k.readUInt32LE(4 * i)
    x[11 + i] = k.readUInt32LE(16 + 4 * i)
    x[6 + i] = n.readUInt32LE(4 * i)
  }
  // a Salsa20 quarter round on state words a, b, c, d
  const qr = (a: number, b: number, c: number, d: number): void => {
    x[b] = (x[b] as number) ^ rotl(((x[a] as number) + (x[d] as number)) | 0, 7)
    x[c] = (x[c] as number) ^ rotl(((x[b] as number) + (x[a] as number)) | 0, 9)
    x[d] = (x[d] as number) ^ rotl(((x[c] as number) + (x[b] as number)) | 0, 13)
    x[a] = (x[a] as number) ^ rotl(((x[d] as number) + (x[c] as number)) | 0, 18)
  }
  for (let round = 0; round < 20; round += 2) {
    qr(0, 4, 8, 12)
    qr(5, 9, 13, 1)
    qr(10, 14, 2, 6)
    qr(15, 3, 7, 11)
    qr(0, 1, 2, 3)
    qr(5, 6, 7, 4)
    qr(10, 11, 8, 9)
    qr(15, 12, 13, 14)
  }
  const out = Buffer.alloc(32)
  ;[0, 5, 10, 15, 6, 7, 8, 9].forEach((word, i) => {
    out.writeUInt32LE(x[word] as number, 4 * i)
  })
  return out
}

/**
 * The tunnel's DH: libsodium `crypto_box_beforenm(pk, sk)` = HSalsa20(X25519(sk, pk), 0^16), as py-ipv8 computes
 * it (spec §7.4). The raw X25519 output alone does not reproduce deployed peers' keys.
 */
export function boxBeforeNm(secretKey: Uint8Array, publicKey: Uint8Array): Buffer {
  return hsalsa20(x25519(secretKey, publicKey), ZERO16)
}

/** libsodium `crypto_auth`: HMAC-SHA512 truncated to 32 bytes. */
export function cryptoAuth(message: Uint8Array, key: Uint8Array): Buffer {
  return createHmac('sha512', key).update(message).digest().subarray(0, 32)
}

/**
 * The responding hop's side of the key exchange: with its own fresh ephemeral `y` and its static X25519 secret
 * `h`, `shared = DH(y, X) || DH(h, X)` and `auth = crypto_auth(Y, shared[0:32])`.
 */
export function respondToKeyExchange(
  initiatorKey: Uint8Array,
  staticSecretKey: Uint8Array,
  ephemeral: EphemeralKey = generateEphemeralKey(),
): ResponderHandshake {
  if (initiatorKey.length !== 32)
    throw new TunnelError('KEY_EXCHANGE', { reason: 'key field must be 32 bytes' })
  const shared = Buffer.concat([
    boxBeforeNm(ephemeral.secretKey, initiatorKey),
    boxBeforeNm(staticSecretKey, initiatorKey),
  ])
  return { shared, key: ephemeral.publicKey, auth: cryptoAuth(ephemeral.publicKey, shared.subarray(0, 32)) }
}

/**
 * The initiator's side: `shared = DH(x, Y) || DH(x, H.pk)`, after checking `auth`. Throws `KEY_EXCHANGE` when the
 * hop did not prove it holds H's static key.
 */
export function completeKeyExchange(
  ephemeralSecretKey: Uint8Array,
  responderKey: Uint8Array,
  auth: Uint8Array,
  hopCurvePublicKey: Uint8Array,
): Buffer {
  if (responderKey.length !== 32 || auth.length !== 32) {
    throw new TunnelError('KEY_EXCHANGE', { reason: 'bad key or auth length' })
  }
  const shared = Buffer.concat([
    boxBeforeNm(ephemeralSecretKey, responderKey),
    boxBeforeNm(ephemeralSecretKey, hopCurvePublicKey),
  ])
  if (!timingSafeEqual(cryptoAuth(responderKey, shared.subarray(0, 32)), auth)) {
    throw new TunnelError('KEY_EXCHANGE', { reason: 'auth does not verify' })
  }
  return shared
}

/** HKDF-Expand(SHA-256) with the whole input as the PRK: no extract step (spec §7.4). */
function hkdfExpand(prk: Buffer, info: Buffer, length: number): Buffer {
  const blocks: Buffer[] = []
  let previous = Buffer.alloc(0)
  for (let i = 1; blocks.length * 32 < length; i++) {
    previous = createHmac('sha256', prk)
      .update(previous)
      .update(info)
      .update(Buffer.from([i]))
      .digest()
    blocks.push(previous)
  }
  return Buffer.concat(blocks).subarray(0, length)
}

/** Session keys from the 64-byte shared secret: backward key first, then forward, then the two salts. */
export function deriveSessionKeys(shared: Uint8Array): SessionKeys {
  const okm = hkdfExpand(Buffer.from(shared), KDF_INFO, 72)
  return {
    keyBackward: Buffer.from(okm.subarray(0, 32)),
    keyForward: Buffer.from(okm.subarray(32, 64)),
    saltBackward: Buffer.from(okm.subarray(64, 68)),
    saltForward: Buffer.from(okm.subarray(68, 72)),
    counterForward: 1,
    counterBackward: 1,
  }
}

function writeCounter(out: Buffer, counter: number, offset: number): void {
  out.writeUInt32BE(Math.floor(counter / 0x100000000), offset)
  out.writeUInt32BE(counter >>> 0, offset + 4)
}

const nonceScratch = Buffer.alloc(12)

/** Writes `salt || counter` into the nonce scratch with integer stores: Buffer.copy costs more for 4 and 8 bytes. */
function setNonce(salt: Buffer, counter: number): void {
  nonceScratch.writeUInt32BE(salt.readUInt32BE(0), 0)
  writeCounter(nonceScratch, counter, 4)
}

/**
 * Adds one layer: `counter(8, BE) || ChaCha20-Poly1305-IETF(key_dir, salt_dir || counter, plaintext)`. The
 * direction's counter is incremented first, so a (key, nonce) pair is never reused.
 */
export function encryptLayer(
  plaintext: Uint8Array,
  keys: SessionKeys,
  direction: Direction,
  headroom = 0,
): Buffer {
  const forward = direction === FORWARD
  const counter = forward ? ++keys.counterForward : ++keys.counterBackward
  const key = forward ? keys.keyForward : keys.keyBackward
  const salt = forward ? keys.saltForward : keys.saltBackward
  // `headroom` bytes are left free in front, so a cell header can be written without another copy
  const out = Buffer.allocUnsafe(headroom + plaintext.length + LAYER_OVERHEAD)
  writeCounter(out, counter, headroom)
  setNonce(salt, counter)
  const message = Buffer.isBuffer(plaintext) ? plaintext : Buffer.from(plaintext)
  if (sodium !== undefined) {
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      out.subarray(headroom + 8),
      message,
      null,
      null,
      nonceScratch,
      key,
    )
    return out
  }
  const cipher = createCipheriv('chacha20-poly1305', key, nonceScratch, { authTagLength: 16 })
  const body = cipher.update(message)
  cipher.final()
  body.copy(out, headroom + 8)
  cipher.getAuthTag().copy(out, headroom + 8 + body.length)
  return out
}

/**
 * Adds one layer in place, with the same bytes as {@link encryptLayer}: `out[start, end)` is the plaintext, the
 * counter goes into the 8 bytes before it and the tag into the 16 after, so the layer is `out[start - 8, end + 16)`.
 * Sealing a message for several hops this way needs one buffer instead of one per layer.
 */
export function sealLayer(
  out: Buffer,
  start: number,
  end: number,
  keys: SessionKeys,
  direction: Direction,
): void {
  if (start < 8 || end < start || end + 16 > out.length)
    throw new RangeError('a layer needs 8 bytes before and 16 after its plaintext')
  const forward = direction === FORWARD
  const counter = forward ? ++keys.counterForward : ++keys.counterBackward
  const key = forward ? keys.keyForward : keys.keyBackward
  const salt = forward ? keys.saltForward : keys.saltBackward
  writeCounter(out, counter, start - 8)
  setNonce(salt, counter)
  if (sodium !== undefined) {
    // libsodium encrypts in place: the ciphertext starts where the plaintext did and the tag follows it
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      out.subarray(start, end + 16),
      out.subarray(start, end),
      null,
      null,
      nonceScratch,
      key,
    )
    return
  }
  const cipher = createCipheriv('chacha20-poly1305', key, nonceScratch, { authTagLength: 16 })
  cipher.update(out.subarray(start, end)).copy(out, start)
  cipher.final()
  cipher.getAuthTag().copy(out, end)
}

/**
 * Removes one layer from a copy of `layer`, which stays as it was; throws `DECRYPT` for a short, forged or damaged
 * layer (or one under other keys), `REPLAY` for a counter these keys already accepted.
 */
export function decryptLayer(layer: Uint8Array, keys: SessionKeys, direction: Direction): Buffer {
  return openLayer(Buffer.from(layer), keys, direction)
}

/**
 * Removes one layer in place: `layer` is `counter(8) || ciphertext || tag(16)` and the plaintext overwrites the
 * ciphertext, so the result is `layer.subarray(8, layer.length - 16)`, with no new buffer. The layer's bytes change
 * even when it fails (libsodium clears them), so use it only on a datagram nobody else reads. Throws as
 * {@link decryptLayer} does.
 */
export function openLayer(layer: Buffer, keys: SessionKeys, direction: Direction): Buffer {
  if (layer.length < LAYER_OVERHEAD)
    throw new TunnelError('DECRYPT', { reason: 'truncated', length: layer.length })
  const forward = direction === FORWARD
  const key = forward ? keys.keyForward : keys.keyBackward
  const salt = forward ? keys.saltForward : keys.saltBackward
  const window = keys.replay === undefined ? undefined : forward ? keys.replay.forward : keys.replay.backward
  const high = layer.readUInt32BE(0)
  const low = layer.readUInt32BE(4)
  const counter = high * 0x100000000 + low
  nonceScratch.writeUInt32BE(salt.readUInt32BE(0), 0)
  nonceScratch.writeUInt32BE(high, 4)
  nonceScratch.writeUInt32BE(low, 8)
  if (window !== undefined && !window.fresh(counter)) throw new TunnelError('REPLAY', { counter })
  const plaintext = layer.subarray(8, layer.length - 16)
  try {
    if (sodium !== undefined) {
      // libsodium decrypts in place when the message and the ciphertext start at the same byte
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
        plaintext,
        null,
        layer.subarray(8),
        null,
        nonceScratch,
        key,
      )
    } else {
      const decipher = createDecipheriv('chacha20-poly1305', key, nonceScratch, { authTagLength: 16 })
      decipher.setAuthTag(layer.subarray(layer.length - 16))
      decipher.update(plaintext).copy(plaintext)
      decipher.final()
    }
  } catch (err) {
    throw new TunnelError('DECRYPT', { reason: 'authentication failed', cause: err })
  }
  window?.mark(counter)
  return plaintext
}

/**
 * The originator's onion: encrypts FORWARD for the last hop first and the first hop last, so each relay peels
 * one layer (spec §7.5).
 */
export function onionEncrypt(message: Uint8Array, hops: readonly SessionKeys[], headroom = 0): Buffer {
  // one buffer for every layer: the message sits after the counters' room and is sealed in place, innermost first
  let start = headroom + 8 * hops.length
  let end = start + message.length
  const out = Buffer.allocUnsafe(end + 16 * hops.length)
  out.set(message, start)
  for (let i = hops.length - 1; i >= 0; i--) {
    sealLayer(out, start, end, hops[i] as SessionKeys, FORWARD)
    start -= 8
    end += 16
  }
  if (headroom > 0 && hops.length === 0) out.fill(0, 0, headroom)
  return out
}

/** The originator removes every BACKWARD layer a reply got on its way back, first hop first. */
export function onionDecrypt(message: Uint8Array, hops: readonly SessionKeys[]): Buffer {
  // decryptLayer never writes to its input, so the first layer is read where it arrived
  let out: Buffer = Buffer.isBuffer(message) ? message : Buffer.from(message)
  for (const hop of hops) out = decryptLayer(out, hop, BACKWARD)
  return out
}

/** {@link onionDecrypt} in place ({@link openLayer}): each layer's plaintext is a view into `message`. */
export function onionOpen(message: Buffer, hops: readonly SessionKeys[]): Buffer {
  let out = message
  for (const hop of hops) out = openLayer(out, hop, BACKWARD)
  return out
}
