import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { keyVectors } from '../testing/vectors.js'
import { keyFromBin, loadOrCreateKeyFile, PrivateKey, PUBLIC_KEY_PREFIX, PublicKey } from './index.js'

const hex = (text: string): Buffer => Buffer.from(text, 'hex')

describe('LibNaCL keys', () => {
  it('keeps parsed public keys in a bounded least-recently-used cache', () => {
    const bin = (): Buffer => Buffer.concat([PUBLIC_KEY_PREFIX, randomBytes(64)])
    const hot = bin()
    const hotKey = PublicKey.fromBin(hot)
    const cold = bin()
    const coldKey = PublicKey.fromBin(cold)
    expect(PublicKey.fromBin(Buffer.from(cold))).toBe(coldKey)
    for (let i = 0; i < 5_000; i++) {
      PublicKey.fromBin(bin())
      if (i % 1_000 === 0) expect(PublicKey.fromBin(hot)).toBe(hotKey)
    }
    expect(PublicKey.fromBin(hot)).toBe(hotKey)
    const reparsed = PublicKey.fromBin(cold)
    expect(reparsed).not.toBe(coldKey)
    expect(reparsed.equals(coldKey)).toBe(true)
    expect(hotKey.midHex).toBe(hotKey.mid.toString('hex'))
  })

  for (const vector of keyVectors()) {
    it(`reproduces py-ipv8 key pair ${vector.index}: bins, mid and signature`, () => {
      const key = new PrivateKey(hex(vector.curve25519_secret_key), hex(vector.ed25519_seed))
      expect(key.toBin().toString('hex')).toBe(vector.private_key_bin)
      expect(key.publicKey.toBin().toString('hex')).toBe(vector.public_key_bin)
      expect(key.publicKey.curvePublicKey.toString('hex')).toBe(vector.curve25519_public_key)
      expect(key.publicKey.verifyKey.toString('hex')).toBe(vector.ed25519_verify_key)
      expect(key.mid.toString('hex')).toBe(vector.mid_sha1_of_public_key_bin)
      const signature = key.sign(hex(vector.sign_message_hex))
      expect(signature.toString('hex')).toBe(vector.signature)
      expect(signature.length).toBe(vector.signature_len)
    })

    it(`parses py-ipv8 bins of key pair ${vector.index} and verifies its signature`, () => {
      const priv = keyFromBin(hex(vector.private_key_bin))
      expect(priv).toBeInstanceOf(PrivateKey)
      const pub = PublicKey.fromBin(hex(vector.public_key_bin))
      expect(pub.mid.toString('hex')).toBe(vector.mid_sha1_of_public_key_bin)
      expect(pub.verify(hex(vector.sign_message_hex), hex(vector.signature))).toBe(true)
      const tampered = hex(vector.signature)
      tampered[0] = (tampered[0] ?? 0) ^ 1
      expect(pub.verify(hex(vector.sign_message_hex), tampered)).toBe(false)
      expect(pub.verify(hex(vector.sign_message_hex), tampered.subarray(1))).toBe(false)
    })
  }

  it('generates independent random key pairs that sign and verify', () => {
    const a = PrivateKey.generate()
    const b = PrivateKey.generate()
    expect(a.toBin().equals(b.toBin())).toBe(false)
    const message = Buffer.from('message')
    expect(a.publicKey.verify(message, a.sign(message))).toBe(true)
    expect(b.publicKey.verify(message, a.sign(message))).toBe(false)
    expect(PrivateKey.fromBin(a.toBin()).publicKey.equals(a.publicKey)).toBe(true)
  })

  it('agrees the same X25519 secret from both sides', () => {
    const a = PrivateKey.generate()
    const b = PrivateKey.generate()
    expect(a.diffieHellman(b.publicKey).equals(b.diffieHellman(a.publicKey))).toBe(true)
  })

  it('rejects malformed key bins with a code', () => {
    expect(() => PublicKey.fromBin(Buffer.from('LibNaCLPK:short'))).toThrow(
      expect.objectContaining({ code: 'BAD_KEY' }),
    )
    expect(() => PublicKey.fromBin(Buffer.alloc(74))).toThrow(expect.objectContaining({ code: 'BAD_KEY' }))
    expect(() => PublicKey.fromBin(Buffer.from('3081a7', 'hex'))).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_KEY' }),
    )
    expect(() => PrivateKey.fromBin(Buffer.alloc(3))).toThrow(expect.objectContaining({ code: 'BAD_KEY' }))
  })
})

describe('key file', () => {
  let dir: string | undefined
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('creates a key with permissions 0600 on first start and loads the same key later', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ipv8-key-'))
    const path = join(dir, 'sub', 'ec_multichain.pem')
    const created = await loadOrCreateKeyFile(path)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect((await readFile(path)).equals(created.toBin())).toBe(true)
    const loaded = await loadOrCreateKeyFile(path)
    expect(loaded.publicKey.equals(created.publicKey)).toBe(true)
  })

  it('refuses a file that is not a key instead of overwriting it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ipv8-key-'))
    const path = join(dir, 'key')
    await writeFile(path, 'garbage')
    await expect(loadOrCreateKeyFile(path)).rejects.toMatchObject({ code: 'BAD_KEY' })
    expect(await readFile(path, 'utf8')).toBe('garbage')
  })
})
