import { describe, expect, it } from 'vitest'
import { PrivateKey } from '../keys/index.js'
import { communityPrefix, type PayloadSchema, signedPacket, verifySigned } from '../serialization/index.js'
import { keyVectors, loadVectors } from '../testing/vectors.js'
import {
  CellPayload,
  CreatedE2EPayload,
  CreatedPayload,
  CreateE2EPayload,
  CreatePayload,
  cellMessage,
  couldBeBitTorrent,
  couldBeDht,
  couldBeIpv8,
  couldBeUdpTracker,
  couldBeUtp,
  DataPayload,
  DestroyPayload,
  dataCellMessage,
  decodeCell,
  decodeCellMessage,
  decodeDataCellMessage,
  EstablishIntroPayload,
  EstablishRendezvousPayload,
  ExtendedPayload,
  ExtendPayload,
  ExtraIntroductionPayload,
  encodeCell,
  HttpRequestPayload,
  HttpResponsePayload,
  IntroEstablishedPayload,
  LinkE2EPayload,
  LinkedE2EPayload,
  maxCircuitPayload,
  PeersRequestPayload,
  PeersResponsePayload,
  PingPayload,
  PongPayload,
  RendezvousEstablishedPayload,
  RendezvousInfo,
  RendezvousInfoBlob,
  TestRequestPayload,
  TestResponsePayload,
} from './payloads.js'
import {
  PEER_FLAG_EXIT_BT,
  PEER_FLAG_EXIT_IPV8,
  PEER_FLAG_RELAY,
  PEER_FLAG_SPEED_TEST,
  TUNNEL_COMMUNITY_ID,
} from './types.js'

const vectors = loadVectors<{ vectors: { name: string; packet: string }[] }>('packets').vectors
const vector = (fragment: string): Buffer =>
  Buffer.from(vectors.find((v) => v.name.includes(fragment))?.packet ?? '', 'hex')
const prefix = communityPrefix(TUNNEL_COMMUNITY_ID)
const key1 = PrivateKey.fromBin(Buffer.from(keyVectors()[1]?.private_key_bin ?? '', 'hex'))
const pk = key1.publicKey.toBin()
const b = (n: number, fill: number): Buffer => Buffer.alloc(n, fill)
const addr = (host: string, port: number) => ({ host, port })

// One value per cell message; each is encoded as a cell message and decoded back.
type Sample = [PayloadSchema<{ circuitId: number }>, { circuitId: number }]
const sample = <T extends { circuitId: number }>(schema: PayloadSchema<T>, value: T): Sample =>
  [schema, value] as unknown as Sample
const cellSamples: Sample[] = [
  sample(DataPayload, {
    circuitId: 1,
    destination: addr('10.0.0.1', 6881),
    origin: addr('0.0.0.0', 0),
    data: b(5, 1),
  }),
  sample(DataPayload, {
    circuitId: 1,
    destination: addr('::1', 80),
    origin: addr('0.0.0.0', 0),
    data: b(0, 0),
  }),
  sample(DataPayload, {
    circuitId: 1,
    destination: addr('tracker.example', 80),
    origin: addr('0.0.0.0', 0),
    data: b(1, 2),
  }),
  sample(CreatePayload, { circuitId: 2, identifier: 7, nodePublicKey: pk, key: b(32, 3) }),
  sample(CreatedPayload, {
    circuitId: 3,
    identifier: 8,
    key: b(32, 4),
    auth: b(32, 5),
    candidatesEnc: b(40, 6),
  }),
  sample(ExtendPayload, {
    circuitId: 4,
    identifier: 9,
    nodePublicKey: pk,
    key: b(32, 3),
    nodeAddress: addr('0.0.0.0', 0),
  }),
  sample(ExtendedPayload, {
    circuitId: 5,
    identifier: 10,
    key: b(32, 4),
    auth: b(32, 5),
    candidatesEnc: b(24, 6),
  }),
  sample(PingPayload, { circuitId: 6, identifier: 11 }),
  sample(PongPayload, { circuitId: 7, identifier: 12 }),
  sample(EstablishIntroPayload, { circuitId: 9, identifier: 13, infoHash: b(20, 7), publicKey: pk }),
  sample(IntroEstablishedPayload, { circuitId: 10, identifier: 14 }),
  sample(EstablishRendezvousPayload, { circuitId: 11, identifier: 15, cookie: b(20, 8) }),
  sample(RendezvousEstablishedPayload, {
    circuitId: 12,
    identifier: 16,
    rendezvousPointAddress: addr('1.2.3.4', 5),
  }),
  sample(LinkE2EPayload, { circuitId: 15, identifier: 17, cookie: b(20, 9) }),
  sample(LinkedE2EPayload, { circuitId: 16, identifier: 18 }),
  sample(PeersRequestPayload, { circuitId: 17, identifier: 19, infoHash: b(20, 10) }),
  sample(PeersResponsePayload, {
    circuitId: 18,
    identifier: 20,
    infoHash: b(20, 11),
    peers: [{ address: addr('1.2.3.4', 5), key: pk, seederPk: pk, source: 1 }],
  }),
  sample(TestRequestPayload, { circuitId: 19, identifier: 21, responseSize: 1024, data: b(3, 12) }),
  sample(TestResponsePayload, { circuitId: 20, identifier: 22, data: b(1024, 13) }),
  sample(HttpRequestPayload, {
    circuitId: 28,
    identifier: 23,
    target: addr('example.org', 80),
    request: b(4, 14),
  }),
  sample(HttpResponsePayload, { circuitId: 29, identifier: 24, part: 0, total: 1, response: b(4, 15) }),
]

describe('tunnel payloads', () => {
  it('declares every message id of the spec once', () => {
    const ids = [
      CellPayload,
      ...cellSamples.map(([schema]) => schema),
      DestroyPayload,
      CreateE2EPayload,
      CreatedE2EPayload,
    ].map((s) => s.msgId)
    expect([...new Set(ids)].sort((x, y) => x - y)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 28, 29,
    ])
  })

  for (const [schema, value] of cellSamples) {
    it(`round-trips ${schema.name} as a cell message without its circuit id`, () => {
      const message = cellMessage(schema, value)
      expect(message[0]).toBe(schema.msgId)
      const full = schema.encode(value)
      expect(message.subarray(1)).toEqual(full.subarray(4))
      const cell = decodeCell(
        encodeCell(prefix, { circuitId: value.circuitId, plaintext: false, relayEarly: false, message }),
      )
      expect(decodeCellMessage(schema, cell.circuitId, cell.message)).toEqual(value)
    })
  }

  it('round-trips the e2e messages, which have no circuit id', () => {
    const create = { identifier: 1, infoHash: b(20, 1), nodePublicKey: pk, key: b(32, 2) }
    expect(CreateE2EPayload.decode(CreateE2EPayload.encode(create))).toEqual(create)
    const created = { identifier: 1, key: b(32, 2), auth: b(32, 3), rpInfoEnc: b(50, 4) }
    expect(CreatedE2EPayload.decode(CreatedE2EPayload.encode(created))).toEqual(created)
    const info = { address: addr('1.2.3.4', 5), key: pk, cookie: b(20, 5) }
    const blob = RendezvousInfoBlob.encode({ info })
    expect(blob.readUInt16BE(0)).toBe(RendezvousInfo.encode(info).length)
    expect(RendezvousInfoBlob.decode(blob).info).toEqual(info)
  })

  it('matches the signed destroy vector (no global time)', () => {
    const theirs = vector('TunnelCommunity destroy')
    const value = { circuitId: 3735928559, reason: 2 }
    expect(signedPacket(prefix, DestroyPayload, value, key1, undefined)).toEqual(theirs)
    const frame = verifySigned(theirs, { globalTime: false })
    expect(DestroyPayload.decode(theirs, frame.payloadStart, frame.payloadEnd)).toEqual(value)
  })

  it('reads the peer flags of the tunnel introduction-request vector', () => {
    const theirs = vector('TunnelCommunity introduction-request')
    // the extra bytes are the last field before the 64-byte signature
    const extra = theirs.subarray(theirs.length - 64 - 2, theirs.length - 64)
    expect(ExtraIntroductionPayload.decode(extra).flags).toEqual([
      PEER_FLAG_RELAY,
      PEER_FLAG_EXIT_BT,
      PEER_FLAG_EXIT_IPV8,
      PEER_FLAG_SPEED_TEST,
    ])
    expect(ExtraIntroductionPayload.encode({ flags: [1, 2, 4, 8] })).toEqual(extra)
  })

  it('sizes circuit payloads so a 1500-byte MTU cell is never exceeded', () => {
    for (const hops of [1, 2, 3]) {
      const payload = Buffer.alloc(maxCircuitPayload(hops))
      let message = cellMessage(DataPayload, {
        circuitId: 1,
        destination: addr('203.0.113.9', 6881),
        origin: addr('0.0.0.0', 0),
        data: payload,
      })
      message = Buffer.concat([message, Buffer.alloc(24 * hops)]) // the layers
      const cell = encodeCell(prefix, { circuitId: 1, plaintext: false, relayEarly: false, message })
      expect(cell.length + 28).toBe(1500)
    }
    expect(maxCircuitPayload(3)).toBe(1356)
  })

  it('writes a host-name destination as a domain address (type 2) and reads it back', () => {
    const data = Buffer.from('0000041727101980', 'hex')
    const message = dataCellMessage(addr('tracker.example', 1337), addr('0.0.0.0', 0), data)
    const name = Buffer.from('tracker.example')
    expect(message).toEqual(
      Buffer.concat([
        Buffer.from([1, 2, 0, name.length]),
        name,
        Buffer.from([0x05, 0x39, 1, 0, 0, 0, 0, 0, 0]),
        data,
      ]),
    )
    expect(decodeDataCellMessage(9, message)).toEqual({
      circuitId: 9,
      destination: addr('tracker.example', 1337),
      origin: addr('0.0.0.0', 0),
      data,
    })
    // the same schema as py-ipv8's DataPayload
    expect(DataPayload.decode(Buffer.concat([Buffer.from([0, 0, 0, 9]), message.subarray(1)]))).toMatchObject(
      {
        destination: addr('tracker.example', 1337),
      },
    )
  })

  it('decodes each cell of interleaved flows to its own addresses and payload', () => {
    const flows = [
      [addr('10.0.0.1', 6881), addr('0.0.0.0', 0)],
      [addr('10.0.0.1', 6882), addr('0.0.0.0', 0)],
      [addr('::1', 80), addr('10.0.0.1', 6881)],
      [addr('tracker.example', 80), addr('0.0.0.0', 0)],
    ] as const
    for (const i of [0, 0, 1, 0, 2, 2, 3, 0, 3, 1]) {
      const [destination, origin] = flows[i] as (typeof flows)[number]
      const data = Buffer.from(`payload ${i}`)
      expect(decodeDataCellMessage(i, dataCellMessage(destination, origin, data))).toEqual({
        circuitId: i,
        destination,
        origin,
        data,
      })
    }
  })

  it('refuses a cell without an inner message id', () => {
    const bare = encodeCell(prefix, {
      circuitId: 1,
      plaintext: false,
      relayEarly: false,
      message: Buffer.alloc(0),
    })
    expect(() => decodeCell(bare)).toThrow(expect.objectContaining({ code: 'BAD_CELL' }))
  })

  it('refuses truncated and overlong cell messages', () => {
    const message = cellMessage(PingPayload, { circuitId: 1, identifier: 2 })
    expect(() => decodeCellMessage(PingPayload, 1, message.subarray(0, 2))).toThrow(
      expect.objectContaining({ code: 'TRUNCATED' }),
    )
    expect(() => decodeCellMessage(PingPayload, 1, Buffer.concat([message, b(1, 0)]))).toThrow(
      expect.objectContaining({ code: 'TRAILING_BYTES' }),
    )
  })
})

describe('exit data checker', () => {
  const utp = Buffer.concat([Buffer.from([0x41, 0x00]), b(18, 0)])
  it('recognises uTP, UDP tracker, DHT and IPv8 traffic', () => {
    expect(couldBeUtp(utp)).toBe(true)
    expect(couldBeUtp(Buffer.from([0x51, 0, ...b(18, 0)]))).toBe(false) // type 5
    expect(couldBeUtp(Buffer.from([0x42, 0, ...b(18, 0)]))).toBe(false) // version 2
    expect(couldBeUtp(utp.subarray(0, 19))).toBe(false)
    expect(couldBeUdpTracker(Buffer.from('0000041727101980000000000000abcd', 'hex'))).toBe(true) // connect
    expect(couldBeUdpTracker(Buffer.from('00000001', 'hex'))).toBe(false)
    expect(couldBeDht(Buffer.from('d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe'))).toBe(true)
    expect(couldBeIpv8(Buffer.concat([prefix, b(1, 0)]))).toBe(true)
    expect(couldBeIpv8(Buffer.concat([Buffer.from([0, 3]), b(21, 0)]))).toBe(false)
  })

  it('refuses arbitrary traffic', () => {
    expect(couldBeBitTorrent(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBe(false)
    expect(couldBeBitTorrent(Buffer.from('ffffffffffffffffffffffff', 'hex'))).toBe(false)
  })
})
