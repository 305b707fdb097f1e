import { createHash, randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { duplexPair, PeerWire } from '../peer-wire/index.js'
import { DH_BYTES, DhKeys, MSE_PRIME, sha1 } from './dh.js'
import {
  acceptConnection,
  BITTORRENT_PROTOCOL_HEADER,
  createRc4,
  infoHashLookup,
  MseError,
  type MseErrorCode,
  type MseResult,
  mseInitiate,
  mseRespond,
  openOutgoing,
} from './index.js'

const INFO_HASH = createHash('sha1').update('torrent').digest()
const OTHER = createHash('sha1').update('other torrent').digest()
const lookup = infoHashLookup([OTHER, INFO_HASH])
const peerId = (n: number): Buffer => Buffer.from(`-TS0001-${String(n).padStart(12, '0')}`)
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** A connected pair whose bytes in both directions are recorded on the way. */
function tappedPair(): { a: Duplex; b: Duplex; wire: { ab: Buffer[]; ba: Buffer[] } } {
  const [a, left] = duplexPair()
  const [right, b] = duplexPair()
  const wire = { ab: [] as Buffer[], ba: [] as Buffer[] }
  left.on('data', (chunk: Buffer) => {
    wire.ab.push(chunk)
    right.write(chunk)
  })
  right.on('data', (chunk: Buffer) => {
    wire.ba.push(chunk)
    left.write(chunk)
  })
  left.on('end', () => right.end())
  right.on('end', () => left.end())
  left.on('close', () => right.destroy())
  right.on('close', () => left.destroy())
  return { a, b, wire }
}

function readExactly(stream: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let got = 0
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      got += chunk.length
      if (got >= n) {
        stream.off('data', onData)
        resolve(Buffer.concat(chunks))
      }
    }
    stream.on('data', onData)
    stream.once('error', reject)
  })
}

async function expectCode(promise: Promise<unknown>, code: MseErrorCode): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(MseError)
  expect((err as MseError).code).toBe(code)
}

describe('message stream encryption', () => {
  it('keeps each key pair its own while they share one Diffie-Hellman object', () => {
    const p = BigInt(`0x${MSE_PRIME.toString('hex')}`)
    const modPow = (base: bigint, exp: bigint): bigint => {
      let result = 1n
      let b = base % p
      for (let e = exp; e > 0n; e >>= 1n) {
        if (e & 1n) result = (result * b) % p
        b = (b * b) % p
      }
      return result
    }
    const toBig = (bytes: Uint8Array): bigint => BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`)
    const privA = randomBytes(20)
    const privB = randomBytes(20)
    const a = new DhKeys(privA)
    const b = new DhKeys(privB)
    expect(toBig(a.publicKey)).toBe(modPow(2n, toBig(privA)))
    expect(toBig(b.publicKey)).toBe(modPow(2n, toBig(privB)))
    const ab = a.secret(b.publicKey)
    const ba = b.secret(a.publicKey)
    expect(ab).toEqual(ba)
    expect(toBig(ab)).toBe(modPow(toBig(b.publicKey), toBig(privA)))
    expect(ab).toHaveLength(DH_BYTES)
  })

  it('agrees on RC4 and carries bytes both ways, unreadable on the wire', async () => {
    const { a, b, wire } = tappedPair()
    const [out, inc] = await Promise.all([mseInitiate(a, { infoHash: INFO_HASH }), mseRespond(b, { lookup })])
    expect(out.method).toBe('rc4')
    expect(inc.method).toBe('rc4')
    expect(inc.encrypted).toBe(true)
    expect(inc.infoHash).toEqual(INFO_HASH)
    const marker = Buffer.from('a recognisable plaintext marker that must not appear on the wire')
    const big = Buffer.concat([marker, randomBytes(300_000)])
    const received = readExactly(inc.stream, big.length)
    const back = readExactly(out.stream, marker.length)
    out.stream.write(big)
    inc.stream.write(marker)
    expect((await received).equals(big)).toBe(true)
    expect((await back).equals(marker)).toBe(true)
    expect(Buffer.concat(wire.ab).includes(marker)).toBe(false)
    expect(Buffer.concat(wire.ba).includes(marker)).toBe(false)
    out.stream.destroy()
  })

  it('selects plaintext when the responder prefers it, after an encrypted handshake', async () => {
    const { a, b, wire } = tappedPair()
    const [out, inc] = await Promise.all([
      mseInitiate(a, { infoHash: INFO_HASH }),
      mseRespond(b, { lookup, preferRc4: false }),
    ])
    expect([out.method, inc.method]).toEqual(['plaintext', 'plaintext'])
    const marker = Buffer.from('plaintext after the handshake')
    const received = readExactly(inc.stream, marker.length)
    out.stream.write(marker)
    expect(await received).toEqual(marker)
    expect(Buffer.concat(wire.ab).includes(marker)).toBe(true)
    out.stream.destroy()
  })

  it('honours allowed methods on each side', async () => {
    const [a, b] = duplexPair()
    const [out, inc] = await Promise.all([
      mseInitiate(a, { infoHash: INFO_HASH, allowedMethods: ['plaintext'] }),
      mseRespond(b, { lookup }),
    ])
    expect([out.method, inc.method]).toEqual(['plaintext', 'plaintext'])
    out.stream.destroy()
    const [c, d] = duplexPair()
    const [out2, inc2] = await Promise.all([
      mseInitiate(c, { infoHash: INFO_HASH }),
      mseRespond(d, { lookup, allowedMethods: ['rc4'], preferRc4: false }),
    ])
    expect([out2.method, inc2.method]).toEqual(['rc4', 'rc4'])
    out2.stream.destroy()
  })

  it('delivers the initial payload first on the responder side', async () => {
    const [a, b] = duplexPair()
    const ia = Buffer.concat([BITTORRENT_PROTOCOL_HEADER, randomBytes(48)])
    const [out, inc] = await Promise.all([
      mseInitiate(a, { infoHash: INFO_HASH, initialPayload: ia }),
      mseRespond(b, { lookup }),
    ])
    expect(inc.initialPayload).toEqual(ia)
    const received = readExactly(inc.stream, ia.length + 5)
    out.stream.write('hello')
    expect(await received).toEqual(Buffer.concat([ia, Buffer.from('hello')]))
    out.stream.destroy()
  })

  it('runs the peer wire unchanged on top, metadata exchange included', async () => {
    const info = Buffer.concat([Buffer.from('d4:name'), randomBytes(40_000), Buffer.from('e')])
    const infoHash = createHash('sha1').update(info).digest()
    const [a, b] = duplexPair()
    const accepting = acceptConnection(b, { policy: 'forced', lookup: infoHashLookup([infoHash]) })
    const dialled = await openOutgoing(a, { policy: 'forced', infoHash })
    const accepted = await accepting
    const leecher = new PeerWire(dialled.stream, { peerId: peerId(1), infoHash })
    const seeder = new PeerWire(accepted.stream, { peerId: peerId(2), metadata: info })
    seeder.on('handshake', (h) => seeder.handshake(h.infoHash))
    expect(await leecher.fetchMetadata()).toEqual(info)
    leecher.destroy()
    await new Promise((resolve) => seeder.once('close', resolve))
  })

  it('accepts plain BitTorrent unless encryption is forced', async () => {
    const [a, b] = duplexPair()
    const accepting = acceptConnection(b, { policy: 'enabled', lookup })
    const leecher = new PeerWire(a, { peerId: peerId(1), infoHash: INFO_HASH })
    const conn: MseResult = await accepting
    expect(conn.encrypted).toBe(false)
    const seeder = new PeerWire(conn.stream, { peerId: peerId(2) })
    seeder.on('handshake', (h) => seeder.handshake(h.infoHash))
    await new Promise((resolve) => leecher.once('handshake', resolve))
    leecher.destroy()

    const [c, d] = duplexPair()
    c.write(Buffer.concat([BITTORRENT_PROTOCOL_HEADER, Buffer.alloc(48)]))
    await expectCode(acceptConnection(d, { policy: 'forced', lookup }), 'ENCRYPTION_REQUIRED')
    expect(d.destroyed).toBe(true)
  })

  it('hands the connection over untouched when disabled', async () => {
    const [a] = duplexPair()
    const conn = await acceptConnection(a, { policy: 'disabled', lookup })
    expect(conn.stream).toBe(a)
    const out = await openOutgoing(a, { policy: 'disabled', infoHash: INFO_HASH })
    expect(out.stream).toBe(a)
  })

  it('refuses a torrent it does not have', async () => {
    const [a, b] = duplexPair()
    const results = await Promise.allSettled([
      mseInitiate(a, { infoHash: randomBytes(20) }),
      mseRespond(b, { lookup }),
    ])
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'UNKNOWN_INFO_HASH' } })
    expect(results[0]).toMatchObject({ status: 'rejected', reason: { code: 'CLOSED' } })
    expect(a.destroyed && b.destroyed).toBe(true)
  })

  it('fails when the two sides have no method in common', async () => {
    const [a, b] = duplexPair()
    const results = await Promise.allSettled([
      mseInitiate(a, { infoHash: INFO_HASH, allowedMethods: ['plaintext'] }),
      mseRespond(b, { lookup, allowedMethods: ['rc4'] }),
    ])
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'NO_COMMON_METHOD' } })
    expect(results[0]).toMatchObject({ status: 'rejected' })
  })

  it('gives up on silence after the timeout', async () => {
    const [a, b] = duplexPair()
    await expectCode(mseRespond(b, { lookup, timeoutMs: 50 }), 'TIMEOUT')
    expect(b.destroyed).toBe(true)
    expect(a.destroyed).toBe(true)
    const [c] = duplexPair()
    const controller = new AbortController()
    const waiting = mseInitiate(c, { infoHash: INFO_HASH, signal: controller.signal })
    controller.abort()
    await expectCode(waiting, 'ABORTED')
  })

  it('fails on truncated input', async () => {
    const [a, b] = duplexPair()
    a.end(randomBytes(50))
    await expectCode(mseRespond(b, { lookup }), 'CLOSED')
  })

  it('searches at most 512 bytes of padding for the sync hash', async () => {
    const [a, b] = duplexPair()
    a.write(randomBytes(96 + 512 + 20 + 1))
    await expectCode(mseRespond(b, { lookup }), 'SYNC_NOT_FOUND')
    const [c, d] = duplexPair()
    const initiating = mseInitiate(c, { infoHash: INFO_HASH })
    d.on('data', () => {})
    d.write(Buffer.concat([new DhKeys().publicKey, randomBytes(512 + 8 + 1)]))
    await expectCode(initiating, 'SYNC_NOT_FOUND')
  })

  it('rejects a public value out of range', async () => {
    const [a, b] = duplexPair()
    b.on('data', () => {})
    a.on('data', () => {})
    a.write(Buffer.alloc(96))
    await expectCode(mseRespond(b, { lookup }), 'INVALID_PUBLIC_KEY')
    const [c, d] = duplexPair()
    d.on('data', () => {})
    const initiating = mseInitiate(c, { infoHash: INFO_HASH })
    d.write(Buffer.alloc(96, 0xff))
    await expectCode(initiating, 'INVALID_PUBLIC_KEY')
  })

  /** Plays the initiator by hand up to step 3, with chosen VC and padding length. */
  async function handInitiator(raw: Duplex, opts: { vc: Buffer; padLength: number }): Promise<void> {
    const dh = new DhKeys()
    raw.write(dh.publicKey)
    const theirs = await readExactly(raw, 96)
    const secret = dh.secret(theirs.subarray(0, 96))
    const encrypt = createRc4(sha1('keyA', secret, INFO_HASH), { discardBytes: 1024 })
    const req2 = sha1('req2', INFO_HASH)
    const req3 = sha1('req3', secret)
    const head = Buffer.alloc(14)
    opts.vc.copy(head, 0)
    head.writeUInt32BE(2, 8)
    head.writeUInt16BE(opts.padLength, 12)
    raw.write(
      Buffer.concat([
        sha1('req1', secret),
        Buffer.from(req2.map((x, i) => x ^ (req3[i] as number))),
        encrypt.update(Buffer.concat([head, Buffer.alloc(Math.min(opts.padLength, 1000)), Buffer.alloc(2)])),
      ]),
    )
  }

  it('rejects a wrong verification constant and oversized padding', async () => {
    const [a, b] = duplexPair()
    const responding = mseRespond(b, { lookup })
    await handInitiator(a, { vc: Buffer.from('notzeros'), padLength: 0 })
    await expectCode(responding, 'INVALID_VC')
    const [c, d] = duplexPair()
    const responding2 = mseRespond(d, { lookup })
    await handInitiator(c, { vc: Buffer.alloc(8), padLength: 513 })
    await expectCode(responding2, 'PAD_TOO_LONG')
  })

  it('rejects a selected method that was not offered', async () => {
    const [a, b] = duplexPair()
    const initiating = mseInitiate(a, { infoHash: INFO_HASH, allowedMethods: ['rc4'] })
    // A responder by hand that selects plaintext anyway.
    const dh = new DhKeys()
    const theirs = await readExactly(b, 96)
    b.write(dh.publicKey)
    const secret = dh.secret(theirs.subarray(0, 96))
    const encrypt = createRc4(sha1('keyB', secret, INFO_HASH), { discardBytes: 1024 })
    const head = Buffer.alloc(14)
    head.writeUInt32BE(1, 8)
    b.write(encrypt.update(head))
    await expectCode(initiating, 'INVALID_SELECT')
  })

  it('never crashes on random input: every failure is an MseError and the connection is destroyed', async () => {
    for (let i = 0; i < 60; i++) {
      const [a, b] = duplexPair()
      a.on('data', () => {})
      a.on('error', () => {})
      const responding = mseRespond(b, { lookup, timeoutMs: 2000 })
      a.end(randomBytes(Math.floor(Math.random() * 1500)))
      const err = await responding.then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(MseError)
      expect(b.destroyed).toBe(true)
    }
    await flush()
  })
})
