import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { type readSigned, verifySigned } from '../serialization/index.js'
import { keyVectors, loadVectors } from '../testing/vectors.js'
import {
  batchVerifier,
  nativeBatchForTests,
  SignatureVerifier,
  type SignedItem,
  type VerifyCounts,
  verifyBatch,
} from './batch.js'
import { PrivateKey, PublicKey } from './keys.js'

// --- a small, slow reference of the curve in BigInt (RFC 8032 section 5.1), to build the corner cases
const P = 2n ** 255n - 19n
const L = 2n ** 252n + 27742317777372353535851937790883648493n
const mod = (a: bigint, m = P): bigint => ((a % m) + m) % m
const pow = (b: bigint, e: bigint, m = P): bigint => {
  let r = 1n
  let x = mod(b, m)
  for (let k = e; k > 0n; k >>= 1n) {
    if (k & 1n) r = (r * x) % m
    x = (x * x) % m
  }
  return r
}
const inv = (a: bigint): bigint => pow(a, P - 2n)
const D = mod(-121665n * inv(121666n))
const SQRT_M1 = pow(2n, (P - 1n) / 4n)
type Point = readonly [bigint, bigint, bigint, bigint]
const IDENTITY: Point = [0n, 1n, 1n, 0n]
function add(p: Point, q: Point): Point {
  const a = mod((p[1] - p[0]) * (q[1] - q[0]))
  const b = mod((p[1] + p[0]) * (q[1] + q[0]))
  const c = mod(2n * p[3] * q[3] * D)
  const d = mod(2n * p[2] * q[2])
  const [e, f, g, h] = [b - a, d - c, d + c, b + a]
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)]
}
function mul(s: bigint, p: Point): Point {
  let r = IDENTITY
  let q = p
  for (let k = s; k > 0n; k >>= 1n) {
    if (k & 1n) r = add(r, q)
    q = add(q, q)
  }
  return r
}
const leBytes = (n: bigint): Buffer => {
  const out = Buffer.alloc(32)
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn)
  return out
}
const leNumber = (b: Uint8Array): bigint => {
  let n = 0n
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i] as number)
  return n
}
function encode(p: Point): Buffer {
  const zi = inv(p[2])
  const x = mod(p[0] * zi)
  const out = leBytes(mod(p[1] * zi))
  out[31] = (out[31] as number) | (Number(x & 1n) << 7)
  return out
}
function decode(s: Uint8Array): Point {
  const y = leNumber(s) & (2n ** 255n - 1n)
  const sign = (s[31] as number) >> 7
  const u = mod(y * y - 1n)
  const v = mod(D * y * y + 1n)
  let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n))
  if (mod(v * x * x) !== u) x = mod(x * SQRT_M1)
  if (mod(v * x * x) !== u) throw new Error('not on the curve')
  if (Number(x & 1n) !== sign) x = mod(-x)
  return [x, y, 1n, mod(x * y)]
}
/** Whether `s` encodes a curve point (canonical y, an x that exists, no x = 0 with the sign bit). */
function decodes(s: Uint8Array): boolean {
  const y = leNumber(s) & (2n ** 255n - 1n)
  if (y >= P) return false
  const u = mod(y * y - 1n)
  const v = mod(D * y * y + 1n)
  let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n))
  if (mod(v * x * x) !== u) x = mod(x * SQRT_M1)
  if (mod(v * x * x) !== u) return false
  return !(x === 0n && (s[31] as number) >> 7 === 1)
}
/** A square root modulo p, or undefined for a non-residue. */
function sqrtModP(t: bigint): bigint | undefined {
  let c = pow(t, (P + 3n) / 8n)
  if (mod(c * c) !== mod(t)) c = mod(c * SQRT_M1)
  return mod(c * c) === mod(t) ? c : undefined
}
const BASE = decode(Buffer.from('5866666666666666666666666666666666666666666666666666666666666666', 'hex'))
/** A point of order 8 (the canonical y of the order-8 points). */
const T8 = decode(Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex'))
const hashModL = (...parts: Uint8Array[]): bigint =>
  mod(leNumber(createHash('sha512').update(Buffer.concat(parts)).digest()), L)
const randomScalar = (): bigint => mod(leNumber(randomBytes(64)), L)

/** A signature `R || S` by secret scalar `a` under the public point `publicPoint` (which need not be aB). */
function signWith(a: bigint, publicEncoded: Buffer, message: Buffer, r = randomScalar()): Buffer {
  const R = encode(mul(r, BASE))
  const k = hashModL(R, publicEncoded, message)
  return Buffer.concat([R, leBytes(mod(r + k * a, L))])
}

// --- helpers
const CURVE_HALF = Buffer.alloc(32, 9)
const keyOf = (verifyKey: Uint8Array): PublicKey => new PublicKey(CURVE_HALF, verifyKey)
const item = (key: PublicKey, message: Uint8Array, signature: Uint8Array): SignedItem => ({
  key,
  data: Buffer.concat([message, signature]),
  signatureOffset: message.length,
})
const libsodium = (it: SignedItem): boolean =>
  it.key.verify(it.data.subarray(0, it.signatureOffset), it.data.subarray(it.signatureOffset))

function goodItems(count: number, keys: PrivateKey[]): SignedItem[] {
  const out: SignedItem[] = []
  for (let i = 0; i < count; i++) {
    const key = keys[i % keys.length] as PrivateKey
    const message = randomBytes(i % 200)
    out.push(item(key.publicKey, message, key.sign(message)))
  }
  return out
}

/** The native batch equation alone, without the libsodium fallback, and which items passed the prechecks. */
function nativeVerdict(items: SignedItem[]): { passed: boolean; included: boolean[] } {
  const lib = nativeBatchForTests
  if (lib === undefined) throw new Error('native verifier not loaded')
  const keys: Uint8Array[] = []
  const slots = new Map<PublicKey, number>()
  const keyIndex = new Uint32Array(items.length)
  items.forEach((it, i) => {
    let slot = slots.get(it.key)
    if (slot === undefined) {
      const table = new Uint8Array(lib.KEY_BYTES)
      lib.prepareKey(it.key.verifyKey, table)
      slot = keys.push(table) - 1
      slots.set(it.key, slot)
    }
    keyIndex[i] = slot
  })
  const status = new Uint8Array(items.length)
  const passed = lib.verifyBatch(
    items.map((it) => it.data),
    Uint32Array.from(items.map((it) => it.signatureOffset)),
    keyIndex,
    keys,
    status,
  )
  return { passed, included: [...status].map((s) => s === 1) }
}

const RFC8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
]

describe('Ed25519 batch verification', () => {
  it('uses the native batch verifier where the module is built', () => {
    expect(batchVerifier).toBe('native')
    expect(nativeBatchForTests).toBeDefined()
  })

  it('verifies one signature at a time, with one warning, when the addon is turned off', () => {
    const script = `
      import { batchVerifier, PrivateKey, verifyBatch } from './src/ipv8/keys/index.ts'
      const key = PrivateKey.generate()
      const items = [0, 1, 2].map((i) => {
        const message = Buffer.from('message ' + i)
        const signature = key.sign(message)
        if (i === 1) signature[3] ^= 1
        return { key: key.publicKey, data: Buffer.concat([message, signature]), signatureOffset: message.length }
      })
      console.log(JSON.stringify({ batchVerifier, valid: verifyBatch(items) }))
    `
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, TRIBLER_NO_NATIVE_ED25519: '1', TRIBLER_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(run.status).toBe(0)
    expect(JSON.parse(run.stdout.trim())).toEqual({ batchVerifier: 'single', valid: [true, false, true] })
    const warnings = run.stderr
      .split('\n')
      .filter((line) => line.includes('native Ed25519 batch verification'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('TRIBLER_NO_NATIVE_ED25519')
  })

  it('accepts the RFC 8032 test vectors in one batch and rejects each with a bit flipped', () => {
    const items = RFC8032.map((v) => {
      const key = new PrivateKey(Buffer.alloc(32, 1), Buffer.from(v.seed, 'hex'))
      expect(key.publicKey.verifyKey.toString('hex')).toBe(v.publicKey)
      const message = Buffer.from(v.message, 'hex')
      // Ed25519 is deterministic: signing again reproduces the published signature
      expect(key.sign(message).toString('hex')).toBe(v.signature)
      return item(keyOf(Buffer.from(v.publicKey, 'hex')), message, Buffer.from(v.signature, 'hex'))
    })
    expect(verifyBatch(items)).toEqual([true, true, true])
    expect(nativeVerdict(items).passed).toBe(true)
    for (let bad = 0; bad < items.length; bad++) {
      const mutated = items.map((it, i) => {
        if (i !== bad) return it
        const data = Buffer.from(it.data)
        data[it.signatureOffset + 5] = (data[it.signatureOffset + 5] as number) ^ 0x10
        return { ...it, data }
      })
      expect(verifyBatch(mutated)).toEqual(items.map((_, i) => i !== bad))
    }
  })

  it('accepts the py-ipv8 key and packet vectors together', () => {
    const keyItems = keyVectors().map((k) =>
      item(
        keyOf(Buffer.from(k.ed25519_verify_key, 'hex')),
        Buffer.from(k.sign_message_hex, 'hex'),
        Buffer.from(k.signature, 'hex'),
      ),
    )
    const packets = loadVectors<{ vectors: Array<{ name: string; packet: string }> }>('packets').vectors
    const packetItems: SignedItem[] = []
    for (const v of packets) {
      const data = Buffer.from(v.packet, 'hex')
      let frame: ReturnType<typeof readSigned>
      try {
        frame = verifySigned(data)
      } catch {
        continue // an unsigned message
      }
      packetItems.push({ key: frame.publicKey, data, signatureOffset: frame.payloadEnd })
    }
    expect(keyItems.length).toBe(3)
    expect(packetItems.length).toBeGreaterThanOrEqual(5)
    const all = [...keyItems, ...packetItems]
    expect(verifyBatch(all).every((v) => v)).toBe(true)
    expect(nativeVerdict(all).passed).toBe(true)
    // one byte of the payload of each signed packet changed: that packet alone fails
    for (let bad = 0; bad < packetItems.length; bad++) {
      const mutated = all.map((it, i) => {
        if (i !== keyItems.length + bad) return it
        const data = Buffer.from(it.data)
        data[it.signatureOffset - 1] = (data[it.signatureOffset - 1] as number) ^ 1
        return { ...it, data }
      })
      expect(verifyBatch(mutated)).toEqual(all.map((_, i) => i !== keyItems.length + bad))
    }
  })

  it('accepts thousands of valid signatures in batches of every size from 1 to 64 and beyond', () => {
    const keys = Array.from({ length: 40 }, () => PrivateKey.generate())
    let total = 0
    for (const size of [...Array.from({ length: 64 }, (_, i) => i + 1), 65, 100, 128, 129, 200]) {
      // keys repeat within a batch (their terms merge) and also differ
      const items = goodItems(size, keys.slice(0, 1 + (size % keys.length)))
      expect(verifyBatch(items).every((v) => v)).toBe(true)
      if (size >= 2 && size <= 64) expect(nativeVerdict(items).passed).toBe(true)
      total += size
    }
    expect(total).toBeGreaterThan(2_500)
  })

  it('rejects every single-bit flip of R, S, the public key and the message, and only that signature', () => {
    const signer = PrivateKey.generate()
    const others = goodItems(7, [PrivateKey.generate(), PrivateKey.generate()])
    const message = randomBytes(24)
    const signature = signer.sign(message)
    const verifyKey = signer.publicKey.verifyKey
    let flips = 0
    const check = (target: SignedItem): void => {
      const items = [...others.slice(0, 3), target, ...others.slice(3)]
      const verdict = verifyBatch(items)
      expect(verdict[3]).toBe(false)
      expect(verdict.filter((v) => v).length).toBe(7)
      expect(libsodium(target)).toBe(false)
      // the batch equation itself fails whenever the damaged signature got past the prechecks
      const native = nativeVerdict(items)
      if (native.included[3]) expect(native.passed).toBe(false)
      flips += 1
    }
    for (let bit = 0; bit < 512; bit++) {
      const s = Buffer.from(signature)
      s[bit >> 3] = (s[bit >> 3] as number) ^ (1 << (bit & 7))
      check(item(signer.publicKey, message, s))
    }
    for (let bit = 0; bit < 256; bit++) {
      const k = Buffer.from(verifyKey)
      k[bit >> 3] = (k[bit >> 3] as number) ^ (1 << (bit & 7))
      check(item(keyOf(k), message, signature))
    }
    for (let bit = 0; bit < message.length * 8; bit++) {
      const m = Buffer.from(message)
      m[bit >> 3] = (m[bit >> 3] as number) ^ (1 << (bit & 7))
      check(item(signer.publicKey, m, signature))
    }
    expect(flips).toBe(512 + 256 + 24 * 8)
  })

  it('rejects S >= L, which the cofactored equation alone would accept', () => {
    const signer = PrivateKey.generate()
    const message = randomBytes(32)
    const signature = signer.sign(message)
    const s = leNumber(signature.subarray(32))
    for (const big of [s + L, s + 2n * L, L, 2n ** 256n - 1n]) {
      const forged = item(signer.publicKey, message, Buffer.concat([signature.subarray(0, 32), leBytes(big)]))
      const items = [...goodItems(5, [signer]), forged]
      expect(verifyBatch(items)).toEqual([true, true, true, true, true, false])
      expect(libsodium(forged)).toBe(false)
      expect(nativeVerdict(items).included[5]).toBe(false)
    }
  })

  it('decompresses exactly the encodings the reference does: random y, and y^2 next to a multiple of 2^51', () => {
    const lib = nativeBatchForTests
    if (lib === undefined) throw new Error('native verifier not loaded')
    const table = new Uint8Array(lib.KEY_BYTES)
    let points = 0
    let edge = 0
    for (let i = 0; i < 3_000; i++) {
      let y: bigint
      if (i % 2 === 0) {
        y = leNumber(randomBytes(32)) & (2n ** 255n - 1n)
      } else {
        // y^2 a multiple of 2^51 (or one more): y^2 - 1 borrows across limbs
        const t = mod(((leNumber(randomBytes(26)) << 51n) + BigInt(i % 4 === 1 ? 0 : 1)) % P)
        const root = sqrtModP(t)
        if (root === undefined) continue
        y = root
        edge += 1
      }
      const encoded = leBytes(y)
      encoded[31] = (encoded[31] as number) | ((i & 2) << 6)
      const expected = decodes(encoded) && y !== 1n && y !== P - 1n && y !== 0n
      // keys of small order are refused too; those of order 8 turn up with probability 2^-250 here
      expect(lib.prepareKey(encoded, table)).toBe(expected)
      if (expected) points += 1
    }
    expect(edge).toBeGreaterThan(500)
    expect(points).toBeGreaterThan(500)
  })

  it('rejects non-canonical encodings of y in R and in the key, as libsodium does', () => {
    const signer = PrivateKey.generate()
    const message = randomBytes(16)
    const signature = signer.sign(message)
    for (let v = 0n; v < 19n; v++) {
      for (const sign of [0, 1]) {
        const encoded = leBytes(P + v)
        encoded[31] = (encoded[31] as number) | (sign << 7)
        const badR = item(signer.publicKey, message, Buffer.concat([encoded, signature.subarray(32)]))
        const badKey = item(keyOf(encoded), message, signature)
        const items = [...goodItems(3, [signer]), badR, badKey]
        expect(verifyBatch(items)).toEqual([true, true, true, false, false])
        expect(libsodium(badR)).toBe(false)
        expect(libsodium(badKey)).toBe(false)
        const native = nativeVerdict(items)
        expect(native.included.slice(3)).toEqual([false, false])
        expect(native.passed).toBe(true)
      }
    }
  })

  it('rejects small-order keys and R even where the signature equation holds, as libsodium does', () => {
    const smallOrder = Array.from({ length: 8 }, (_, i) => encode(mul(BigInt(i), T8)))
    expect(new Set(smallOrder.map((e) => e.toString('hex'))).size).toBe(8)
    for (const point of smallOrder) {
      expect(encode(mul(8n, decode(point)))).toEqual(encode(IDENTITY))
      for (const flipSign of [false, true]) {
        const encoded = Buffer.from(point)
        if (flipSign) encoded[31] = (encoded[31] as number) ^ 0x80
        // key = a small-order point T, R = rB, S = r: valid (cofactorless) whenever [k]T = 0
        let keyCase: SignedItem | undefined
        for (let attempt = 0; attempt < 64 && keyCase === undefined; attempt++) {
          const message = randomBytes(8)
          const r = randomScalar()
          const R = encode(mul(r, BASE))
          if (hashModL(R, encoded, message) % 8n === 0n)
            keyCase = item(keyOf(encoded), message, Buffer.concat([R, leBytes(r)]))
        }
        // R = a small-order point, S = k a: valid when [k]... R is the identity; otherwise only cofactored
        const a = randomScalar()
        const A = encode(mul(a, BASE))
        const message = randomBytes(8)
        const k = hashModL(encoded, A, message)
        const rCase = item(keyOf(A), message, Buffer.concat([encoded, leBytes(mod(k * a, L))]))
        const cases = keyCase === undefined ? [rCase] : [keyCase, rCase]
        const signer = PrivateKey.generate()
        const items = [...goodItems(4, [signer]), ...cases]
        expect(verifyBatch(items)).toEqual([true, true, true, true, ...cases.map(() => false)])
        for (const c of cases) expect(libsodium(c)).toBe(false)
        const native = nativeVerdict(items)
        expect(native.included.slice(4)).toEqual(cases.map(() => false))
      }
    }
  })

  it('accepts a signature whose key carries a deliberate order-8 component, where libsodium rejects it', () => {
    // the documented difference: [8]-cofactored batch equation versus libsodium's cofactorless check
    const a = randomScalar()
    const torsioned = encode(add(mul(a, BASE), T8))
    const key = keyOf(torsioned)
    // a key's first signature is libsodium's to judge: one it accepts ([k]T8 = 0 for one k in 8)
    let first: SignedItem | undefined
    for (let attempt = 0; attempt < 256 && first === undefined; attempt++) {
      const message = randomBytes(12)
      const candidate = item(key, message, signWith(a, torsioned, message))
      if (libsodium(candidate)) first = candidate
    }
    expect(first).toBeDefined()
    expect(verifyBatch([first as SignedItem, ...goodItems(2, [PrivateKey.generate()])])[0]).toBe(true)
    let differs = 0
    for (let attempt = 0; attempt < 16; attempt++) {
      const message = randomBytes(12)
      const signature = signWith(a, torsioned, message)
      const target = item(key, message, signature)
      const k = hashModL(signature.subarray(0, 32), torsioned, message)
      const items = [...goodItems(3, [PrivateKey.generate()]), target]
      const verdict = verifyBatch(items)
      expect(verdict.slice(0, 3)).toEqual([true, true, true])
      // libsodium accepts exactly when [k]T8 = 0; the batch accepts either way
      expect(libsodium(target)).toBe(k % 8n === 0n)
      expect(verdict[3]).toBe(true)
      if (k % 8n !== 0n) differs += 1
    }
    expect(differs).toBeGreaterThan(0)
  })

  it('rejects exactly the one bad signature among 63 good ones, wherever it sits', () => {
    const keys = Array.from({ length: 5 }, () => PrivateKey.generate())
    for (const position of [0, 17, 31, 63]) {
      const items = goodItems(64, keys)
      const bad = items[position] as SignedItem
      const data = Buffer.from(bad.data)
      data[bad.signatureOffset + 40] = (data[bad.signatureOffset + 40] as number) ^ 4
      items[position] = { ...bad, data }
      expect(nativeVerdict(items).passed).toBe(false)
      expect(verifyBatch(items)).toEqual(items.map((_, i) => i !== position))
    }
  })

  it('agrees with libsodium where the batch equation decides: at most one damaged signature per batch', () => {
    const keys = Array.from({ length: 4 }, () => PrivateKey.generate())
    let accepted = 0
    let compared = 0
    let decidedByEquation = 0
    for (let round = 0; round < 80; round++) {
      // rounds alternate between an intact batch and one with a single damaged item at a moving position
      const damaged = round % 2 === 0 ? -1 : (round >> 1) % 16
      const mode = (round >> 1) % 4
      const items = goodItems(16, keys).map((it, i) => {
        if (i !== damaged) return it
        const data = Buffer.from(it.data)
        if (mode === 0) {
          // one random byte of the message, or of S below its top byte (so S stays below L)
          const inMessage = it.signatureOffset > 0 && Math.random() < 0.5
          const at = inMessage
            ? Math.floor(Math.random() * it.signatureOffset)
            : it.signatureOffset + 32 + Math.floor(Math.random() * 31)
          data[at] = (data[at] as number) ^ (1 + Math.floor(Math.random() * 255))
        } else if (mode === 1) {
          randomBytes(32).copy(data, it.signatureOffset + 32) // a random S (below L about 1 in 16 times)
          data[it.signatureOffset + 63] = (data[it.signatureOffset + 63] as number) & 0x0f
        } else if (mode === 2) {
          // R replaced by another valid point
          encode(mul(randomScalar(), BASE)).copy(data, it.signatureOffset)
        }
        // mode 3: the signature under another valid key
        return {
          ...it,
          data,
          key: mode === 3 ? (keys[(i + 1) % keys.length] as PrivateKey).publicKey : it.key,
        }
      })
      const native = nativeVerdict(items)
      // every damaged item here passes the prechecks: the batch equation alone has to catch it
      expect(native.included.every((v) => v)).toBe(true)
      expect(native.passed).toBe(damaged < 0)
      decidedByEquation += 1
      const verdict = verifyBatch(items)
      items.forEach((it, i) => {
        expect(verdict[i]).toBe(libsodium(it))
        expect(verdict[i]).toBe(i !== damaged)
        if (verdict[i]) accepted += 1
        compared += 1
      })
    }
    expect(decidedByEquation).toBe(80)
    expect(compared).toBe(1_280)
    expect(accepted).toBe(1_280 - 40)
  })

  it('rejects a cancelling pair: S1 + d and S2 - d under one key, which sum to a valid pair', () => {
    const signer = PrivateKey.generate()
    for (let round = 0; round < 20; round++) {
      const m1 = randomBytes(20)
      const m2 = randomBytes(21)
      const s1 = signer.sign(m1)
      const s2 = signer.sign(m2)
      const d = 1n + (leNumber(randomBytes(16)) % (L - 1n))
      const f1 = Buffer.concat([s1.subarray(0, 32), leBytes(mod(leNumber(s1.subarray(32)) + d, L))])
      const f2 = Buffer.concat([s2.subarray(0, 32), leBytes(mod(leNumber(s2.subarray(32)) - d, L))])
      const pair = [item(signer.publicKey, m1, f1), item(signer.publicKey, m2, f2)]
      // with equal weights the two changes would cancel; random weights make the sum fail
      expect(nativeVerdict(pair)).toEqual({ passed: false, included: [true, true] })
      const mixed = [...goodItems(6, [signer]), ...pair]
      expect(nativeVerdict(mixed).passed).toBe(false)
      expect(verifyBatch(mixed)).toEqual([true, true, true, true, true, true, false, false])
    }
  })

  it('rejects the encodings whose y^2 - 1 needed a carry, and decompresses boundary y as the reference does', () => {
    const lib = nativeBatchForTests
    if (lib === undefined) throw new Error('native verifier not loaded')
    const table = new Uint8Array(lib.KEY_BYTES)
    // y values whose square minus one, subtracted uncarried, made a wrong square root pass the check
    const offCurve = [
      '5b3b98e2a8745331a0b992461ae514dde06e1c95b69e1cd3ce1a552d33f2a246',
      '92c4671d578bacce5f466db9e51aeb221f91e36a4961e32c31e5aad2cc0d5d39',
    ]
    const signer = PrivateKey.generate()
    for (const hex of offCurve) {
      for (const sign of [0, 0x80]) {
        const encoded = Buffer.from(hex, 'hex')
        encoded[31] = (encoded[31] as number) | sign
        expect(decodes(encoded)).toBe(false)
        expect(lib.prepareKey(encoded, table)).toBe(false)
        const message = randomBytes(8)
        const asR = item(signer.publicKey, message, Buffer.concat([encoded, Buffer.alloc(32)]))
        const items = [...goodItems(2, [signer]), asR]
        expect(nativeVerdict(items).included).toEqual([true, true, false])
        expect(verifyBatch(items)).toEqual([true, true, false])
        expect(libsodium(asR)).toBe(false)
      }
    }
    // y near 0, near p, and next to every power of two
    const ys = new Set<bigint>()
    for (let v = 0n; v < 24n; v++) {
      ys.add(v)
      ys.add(P - 1n - v)
    }
    for (let k = 1n; k < 255n; k++) for (const delta of [-1n, 0n, 1n]) ys.add(mod((1n << k) + delta))
    let points = 0
    for (const y of ys) {
      for (const sign of [0, 0x80]) {
        const encoded = leBytes(y)
        encoded[31] = (encoded[31] as number) | sign
        const expected = decodes(encoded) && ![0n, 1n, P - 1n].includes(y)
        expect(lib.prepareKey(encoded, table)).toBe(expected)
        if (expected) points += 1
      }
    }
    expect(ys.size).toBeGreaterThan(700)
    expect(points).toBeGreaterThan(300)
  })

  it('never passes a batch whose accumulator degenerated to (0 : 0 : 0 : 0), from a table that holds no points', () => {
    const lib = nativeBatchForTests
    if (lib === undefined) throw new Error('native verifier not loaded')
    const R = encode(mul(randomScalar(), BASE))
    const forged = [
      Buffer.concat([Buffer.from('forged'), R, Buffer.alloc(32, 1)]),
      Buffer.concat([Buffer.from('also'), R, Buffer.alloc(32, 2)]),
    ]
    // a prepared key marked usable whose table is all zeros, or random bytes
    const zeroed = new Uint8Array(lib.KEY_BYTES)
    zeroed.set(randomBytes(32))
    zeroed[32] = 1
    const garbage = new Uint8Array(randomBytes(lib.KEY_BYTES))
    garbage[32] = 1
    for (const table of [zeroed, garbage]) {
      const status = new Uint8Array(2)
      const passed = lib.verifyBatch(
        forged,
        new Uint32Array([6, 4]),
        new Uint32Array([0, 0]),
        [table],
        status,
      )
      expect([...status]).toEqual([1, 1])
      expect(passed).toBe(false)
    }
  })

  it('takes every array element before any buffer pointer, and refuses a status that overlaps an input', () => {
    const lib = nativeBatchForTests
    if (lib === undefined) throw new Error('native verifier not loaded')
    const signer = PrivateKey.generate()
    const [a, b] = goodItems(2, [signer]) as [SignedItem, SignedItem]
    const table = new Uint8Array(lib.KEY_BYTES)
    expect(lib.prepareKey(signer.publicKey.verifyKey, table)).toBe(true)
    const ends = new Uint32Array([a.signatureOffset, b.signatureOffset])
    const first = new Uint8Array(a.data)
    // reading the second element detaches the first one's memory
    const packets: Uint8Array[] = [first]
    Object.defineProperty(packets, 1, {
      enumerable: true,
      get: () => {
        structuredClone(first.buffer, { transfer: [first.buffer] })
        return new Uint8Array(b.data)
      },
    })
    expect(() => lib.verifyBatch(packets, ends, new Uint32Array(2), [table], new Uint8Array(2))).toThrow(
      /outside its packet/,
    )
    expect(first.byteLength).toBe(0)
    // status inside a packet, a prepared key or the index arrays
    const packet = new Uint8Array(a.data)
    const cases: Array<[Uint8Array, Uint8Array, Uint32Array]> = [
      [packet, packet.subarray(0, 2), new Uint32Array(2)],
      [packet, table.subarray(100, 102), new Uint32Array(2)],
    ]
    const indices = new Uint32Array(4)
    cases.push([packet, new Uint8Array(indices.buffer, 0, 2), indices.subarray(0, 2)])
    for (const [p, status, keyIndex] of cases) {
      expect(() => lib.verifyBatch([p, new Uint8Array(b.data)], ends, keyIndex, [table], status)).toThrow(
        /overlap/,
      )
    }
    const key = new Uint8Array(lib.KEY_BYTES)
    expect(() => lib.prepareKey(key.subarray(0, 32), key)).toThrow(/overlap/)
  })

  it('verifies batches in worker threads, each with scratch memory of its own', async () => {
    const { Worker } = await import('node:worker_threads')
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const lib = require(workerData.path)
      const table = new Uint8Array(lib.KEY_BYTES)
      lib.prepareKey(workerData.key, table)
      const status = new Uint8Array(workerData.packets.length)
      const passed = lib.verifyBatch(workerData.packets, Uint32Array.from(workerData.ends),
        new Uint32Array(workerData.packets.length), [table], status)
      parentPort.postMessage({ passed, status: [...status] })
    `
    const signer = PrivateKey.generate()
    const items = goodItems(8, [signer])
    const path = new URL('../../../build/Release/ed25519_batch.node', import.meta.url).pathname
    for (let round = 0; round < 6; round++) {
      const result = await new Promise<{ passed: boolean; status: number[] }>((resolve, reject) => {
        const worker = new Worker(source, {
          eval: true,
          workerData: {
            path,
            key: new Uint8Array(signer.publicKey.verifyKey),
            packets: items.map((it) => new Uint8Array(it.data)),
            ends: items.map((it) => it.signatureOffset),
          },
        })
        worker.once('message', resolve)
        worker.once('error', reject)
      })
      expect(result).toEqual({ passed: true, status: items.map(() => 1) })
    }
  })

  it("verifies a key's first signature with libsodium and builds its table only from its second on", () => {
    const signers = Array.from({ length: 64 }, () => PrivateKey.generate())
    const signed = (damage: boolean): SignedItem[] =>
      signers.map((key) => {
        const message = randomBytes(40)
        const signature = key.sign(message)
        if (damage) signature[40] = (signature[40] as number) ^ 1
        return item(key.publicKey, message, signature)
      })
    const counts = (): VerifyCounts => ({ batches: 0, failedBatches: 0, single: 0 })
    // fresh keys with bad signatures stay fresh: each costs one libsodium verify, every time
    for (let round = 0; round < 2; round++) {
      const tally = counts()
      expect(verifyBatch(signed(true), tally).every((v) => !v)).toBe(true)
      expect(tally).toEqual({ batches: 0, failedBatches: 0, single: 64 })
    }
    const first = counts()
    expect(verifyBatch(signed(false), first).every((v) => v)).toBe(true)
    expect(first).toEqual({ batches: 0, failedBatches: 0, single: 64 })
    const second = counts()
    expect(verifyBatch(signed(false), second).every((v) => v)).toBe(true)
    expect(second).toEqual({ batches: 1, failedBatches: 0, single: 0 })
  })

  it('after a failed batch verifies bursts one at a time until bursts come without bad signatures', () => {
    const keys = Array.from({ length: 4 }, () => PrivateKey.generate())
    const verifier = new SignatureVerifier()
    const burst = (forged: boolean): SignedItem[] => {
      const items = goodItems(64, keys)
      if (forged) {
        const at = Math.floor(Math.random() * 64)
        const bad = items[at] as SignedItem
        const data = Buffer.from(bad.data)
        data[bad.signatureOffset + 33] = (data[bad.signatureOffset + 33] as number) ^ 2
        items[at] = { ...bad, data }
      }
      return items
    }
    const check = (items: SignedItem[]): void => {
      expect(verifier.verify(items)).toEqual(items.map(libsodium))
    }
    check(burst(false)) // the first signature of each key singly, the others as one batch
    check(burst(false))
    expect(verifier.counts).toMatchObject({ batches: 2, failedBatches: 0 })
    // one forgery per burst: one failed batch, then libsodium alone for as long as the forgeries go on
    for (let i = 0; i < 30; i++) check(burst(true))
    expect(verifier.counts).toMatchObject({ batches: 3, failedBatches: 1 })
    expect(verifier.backingOff).toBe(true)
    const singleBefore = verifier.counts.single
    // clean bursts: after a run of them the batches come back
    let clean = 0
    while (verifier.backingOff && clean < 300) {
      check(burst(false))
      clean += 1
    }
    expect(clean).toBeGreaterThan(0)
    expect(clean).toBeLessThanOrEqual(256)
    expect(verifier.counts.single - singleBefore).toBe(64 * clean)
    check(burst(false))
    expect(verifier.counts).toMatchObject({ batches: 4, failedBatches: 1, single: singleBefore + 64 * clean })
    // a forgery right after the run fails a batch again and backs off for longer
    check(burst(true))
    expect(verifier.counts).toMatchObject({ batches: 5, failedBatches: 2 })
    let longer = 0
    while (verifier.backingOff && longer < 300) {
      check(burst(false))
      longer += 1
    }
    expect(longer).toBeGreaterThan(clean)
  })
})
