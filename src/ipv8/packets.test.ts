import { describe, expect, it } from 'vitest'
import {
  IntroductionRequestPayload,
  IntroductionResponsePayload,
  NewIntroductionRequestPayload,
  NewIntroductionResponsePayload,
  PuncturePayload,
  PunctureRequestPayload,
} from './community/payloads.js'
import { PingPayload, PongPayload, SimilarityRequestPayload } from './discovery/payloads.js'
import { PrivateKey } from './keys/index.js'
import {
  communityPrefix,
  type PayloadSchema,
  payload,
  type Reader,
  readUnsigned,
  signedPacket,
  unsignedPacket,
  verifySigned,
  type Writer,
} from './serialization/index.js'
import { keyVectors, loadVectors } from './testing/vectors.js'

interface PacketVector {
  name: string
  packet: string
  length: number
}
const vectors = loadVectors<{ vectors: PacketVector[]; discovery_community_prefix: string }>('packets')
const packet = (fragment: string): Buffer => {
  const found = vectors.vectors.find((v) => v.name.includes(fragment))
  if (found === undefined) throw new Error(`no vector ${fragment}`)
  expect(found.packet.length / 2).toBe(found.length)
  return Buffer.from(found.packet, 'hex')
}
const keys = keyVectors().map((v) => PrivateKey.fromBin(Buffer.from(v.private_key_bin, 'hex')))
const key0 = keys[0] as PrivateKey
const key1 = keys[1] as PrivateKey
const discovery = Buffer.from(vectors.discovery_community_prefix, 'hex')
const tunnel = communityPrefix(Buffer.from('81ded07332bdc775aa5a46f96de9f8f390bbc9f3', 'hex'))
const bits = (byte: number): boolean[] =>
  [0x80, 0x40, 0x20, 0x10, 8, 4, 2, 1].map((bit) => (byte & bit) !== 0)
const addr = (host: string, port: number) => ({ host, port })
const NOWHERE = addr('0.0.0.0', 0)

function checkSigned<T>(
  fragment: string,
  prefix: Buffer,
  schema: PayloadSchema<T>,
  value: T,
  key: PrivateKey,
  globalTime: bigint | undefined,
): void {
  const theirs = packet(fragment)
  expect(signedPacket(prefix, schema, value, key, globalTime).toString('hex')).toBe(theirs.toString('hex'))
  const frame = verifySigned(theirs, { globalTime: globalTime !== undefined })
  expect(frame.msgId).toBe(schema.msgId)
  expect(frame.globalTime).toBe(globalTime)
  expect(frame.publicKey.equals(key.publicKey)).toBe(true)
  expect(theirs.subarray(0, 22).equals(prefix)).toBe(true)
  expect(schema.decode(theirs, frame.payloadStart, frame.payloadEnd)).toEqual(value)
}

function checkUnsigned<T>(fragment: string, schema: PayloadSchema<T>, value: T, globalTime: bigint): void {
  const theirs = packet(fragment)
  expect(unsignedPacket(discovery, schema, value, globalTime).toString('hex')).toBe(theirs.toString('hex'))
  const frame = readUnsigned(theirs)
  expect(frame.msgId).toBe(schema.msgId)
  expect(frame.globalTime).toBe(globalTime)
  expect(schema.decode(theirs, frame.payloadStart, frame.payloadEnd)).toEqual(value)
}

describe('py-ipv8 datagrams', () => {
  it('old-style introduction-request (246)', () => {
    const value = {
      destinationAddress: addr('5.6.7.8', 8091),
      sourceLanAddress: addr('192.168.1.10', 8090),
      sourceWanAddress: addr('1.2.3.4', 8090),
      bits: bits(0x01),
      identifier: 42,
      extraBytes: Buffer.alloc(0),
    }
    checkSigned('msg 246), Discovery', discovery, IntroductionRequestPayload, value, key0, 42n)
  })

  it('new-style introduction-request (234)', () => {
    const value = {
      destinationAddress: addr('5.6.7.8', 8091),
      sourceLanAddress: addr('192.168.1.10', 8090),
      sourceWanAddress: addr('1.2.3.4', 8090),
      identifier: 43,
      bits: bits(0),
      extraBytes: Buffer.alloc(0),
    }
    checkSigned('msg 234', discovery, NewIntroductionRequestPayload, value, key0, 43n)
  })

  it('old-style introduction-response (245) with an introduction', () => {
    const value = {
      destinationAddress: addr('5.6.7.8', 8091),
      sourceLanAddress: addr('192.168.1.10', 8090),
      sourceWanAddress: addr('1.2.3.4', 8090),
      lanIntroductionAddress: NOWHERE,
      wanIntroductionAddress: addr('9.9.9.9', 7000),
      bits: bits(0x10),
      identifier: 42,
      extraBytes: Buffer.alloc(0),
    }
    checkSigned('msg 245', discovery, IntroductionResponsePayload, value, key0, 100n)
  })

  it('new-style introduction-response (233) without an introduction', () => {
    const value = {
      destinationAddress: addr('5.6.7.8', 8091),
      sourceLanAddress: addr('192.168.1.10', 8090),
      sourceWanAddress: addr('1.2.3.4', 8090),
      lanIntroductionAddress: NOWHERE,
      wanIntroductionAddress: NOWHERE,
      identifier: 43,
      bits: bits(0),
      extraBytes: Buffer.alloc(0),
    }
    checkSigned('msg 233', discovery, NewIntroductionResponsePayload, value, key0, 200n)
  })

  it('puncture-requests (250, unsigned)', () => {
    checkUnsigned(
      'side effect',
      PunctureRequestPayload,
      { lanWalkerAddress: addr('1.2.3.4', 8090), wanWalkerAddress: addr('5.6.7.8', 8091), identifier: 42 },
      101n,
    )
    checkUnsigned(
      '(old style, msg 250, unsigned)',
      PunctureRequestPayload,
      { lanWalkerAddress: addr('10.0.0.1', 1111), wanWalkerAddress: addr('5.6.7.8', 8091), identifier: 7 },
      400n,
    )
  })

  it('puncture (249, signed)', () => {
    const value = {
      sourceLanAddress: addr('192.168.1.10', 8090),
      sourceWanAddress: addr('5.6.7.8', 8091),
      identifier: 42,
    }
    checkSigned('msg 249', discovery, PuncturePayload, value, key0, 300n)
  })

  it('DiscoveryCommunity ping and pong (unsigned)', () => {
    checkUnsigned('ping (msg 3', PingPayload, { identifier: 501 }, 501n)
    checkUnsigned('pong (msg 4', PongPayload, { identifier: 1234 }, 500n)
  })

  it('DiscoveryCommunity similarity-request (signed)', () => {
    const value = {
      identifier: 600,
      lanAddress: addr('192.168.1.10', 8090),
      wanAddress: addr('1.2.3.4', 8090),
      bits: bits(0),
      preferenceList: discovery.subarray(2),
    }
    checkSigned('similarity-request', discovery, SimilarityRequestPayload, value, key0, 600n)
  })

  it('TunnelCommunity introduction-request with peer flags in extra bytes', () => {
    const value = {
      destinationAddress: addr('5.6.7.8', 8091),
      sourceLanAddress: addr('192.168.1.10', 8090),
      sourceWanAddress: addr('1.2.3.4', 8090),
      bits: bits(0x01),
      identifier: 7,
      extraBytes: Buffer.from('000f', 'hex'),
    }
    checkSigned('peer flags', tunnel, IntroductionRequestPayload, value, key1, 7n)
  })

  it('TunnelCommunity destroy: signed without a global time', () => {
    const Destroy = payload(8, { circuitId: 'I', reason: 'H' }, 'destroy')
    checkSigned('destroy', tunnel, Destroy, { circuitId: 3735928559, reason: 2 }, key1, undefined)
  })

  it('builds a packet whose field encoder builds another packet (the shared buffer is not reused mid-message)', () => {
    const inner = (): Buffer =>
      signedPacket(
        discovery,
        PuncturePayload,
        {
          sourceLanAddress: addr('10.0.0.1', 1),
          sourceWanAddress: addr('1.2.3.4', 2),
          identifier: 3,
        },
        key1,
        3n,
      )
    const Outer = payload(9, {
      wrapped: {
        name: 'wrapped',
        write: (w: Writer, _value: Buffer) => {
          const built = inner()
          w.u16(built.length)
          w.bytes(built)
        },
        read: (r: Reader) => r.bytes(r.u16()),
      },
      tail: 'H',
    })
    const outer = signedPacket(tunnel, Outer, { wrapped: Buffer.alloc(0), tail: 0xbeef }, key0, 5n)
    const frame = verifySigned(outer)
    const decoded = Outer.decode(outer, frame.payloadStart, frame.payloadEnd)
    expect(decoded.tail).toBe(0xbeef)
    expect(decoded.wrapped.equals(inner())).toBe(true)
    expect(verifySigned(decoded.wrapped).publicKey.equals(key1.publicKey)).toBe(true)
    const plain = unsignedPacket(tunnel, Outer, { wrapped: Buffer.alloc(0), tail: 1 }, 6n)
    expect(plain.subarray(-2).readUInt16BE(0)).toBe(1)
  })

  it('rejects a packet whose signature or body was changed', () => {
    const theirs = packet('msg 249')
    for (const at of [0, 22, 30, 130, theirs.length - 1]) {
      const damaged = Buffer.from(theirs)
      damaged[at] = (damaged[at] ?? 0) ^ 0x40
      expect(() => verifySigned(damaged)).toThrow(expect.objectContaining({ name: 'Ipv8Error' }))
    }
    expect(() => verifySigned(theirs.subarray(0, 100))).toThrow(
      expect.objectContaining({ code: 'TRUNCATED' }),
    )
  })
})
