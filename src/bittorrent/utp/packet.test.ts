import { describe, expect, it } from 'vitest'
import {
  decodePacket,
  type EncodeInput,
  EXTENSION_SACK,
  emptyPacket,
  encodePacket,
  HEADER_BYTES,
  looksLikeUtp,
  PacketType,
  seqDistance,
  seqLess,
} from './packet.js'

/** A packet with zeroed fields except those given. */
function packet(fields: Partial<EncodeInput>): Buffer {
  return encodePacket({
    type: PacketType.DATA,
    connectionId: 1,
    timestampUs: 0,
    timestampDiffUs: 0,
    wndSize: 0,
    seqNr: 1,
    ackNr: 0,
    ...fields,
  })
}

describe('uTP packets', () => {
  it('encodes the BEP 29 header field by field in network byte order', () => {
    const buf = encodePacket({
      type: PacketType.STATE,
      connectionId: 0x1234,
      timestampUs: 0xdeadbeef,
      timestampDiffUs: 0x01020304,
      wndSize: 0x00100000,
      seqNr: 0xfffe,
      ackNr: 0x0001,
    })
    expect(buf.toString('hex')).toBe('21001234deadbeef0102030400100000fffe0001')
  })

  it('round-trips a data packet with a selective ACK and payload', () => {
    const sack = Buffer.from([0b101, 0, 0, 0x80])
    const buf = encodePacket({
      type: PacketType.DATA,
      connectionId: 7,
      timestampUs: 1,
      timestampDiffUs: 2,
      wndSize: 3,
      seqNr: 4,
      ackNr: 5,
      sack,
      payload: Buffer.from('hello'),
    })
    expect(buf[1]).toBe(EXTENSION_SACK)
    const p = emptyPacket()
    expect(decodePacket(buf, p)).toBeUndefined()
    expect(p).toMatchObject({
      type: PacketType.DATA,
      version: 1,
      connectionId: 7,
      seqNr: 4,
      ackNr: 5,
      wndSize: 3,
    })
    expect(p.sack?.equals(sack)).toBe(true)
    expect(p.payload.toString()).toBe('hello')
  })

  it('skips unknown extensions in the chain', () => {
    const header = packet({})
    header[1] = 2 // first extension: an unknown one (libtorrent's close reason is 3)
    const buf = Buffer.concat([
      header,
      Buffer.from([EXTENSION_SACK, 2, 9, 9, 0, 4, 1, 0, 0, 0]),
      Buffer.from('x'),
    ])
    const p = emptyPacket()
    expect(decodePacket(buf, p)).toBeUndefined()
    expect(p.sack?.equals(Buffer.from([1, 0, 0, 0]))).toBe(true)
    expect(p.payload.toString()).toBe('x')
  })

  it('reports truncated extension chains as malformed and accepts unpadded selective ACKs', () => {
    const base = packet({ type: PacketType.STATE })
    const truncated = Buffer.from(base)
    truncated[1] = EXTENSION_SACK
    expect(decodePacket(truncated, emptyPacket())).toBe('MALFORMED')
    const overlong = Buffer.concat([truncated, Buffer.from([0, 8, 1, 2])])
    expect(decodePacket(overlong, emptyPacket())).toBe('MALFORMED')
    const p = emptyPacket()
    expect(decodePacket(Buffer.concat([truncated, Buffer.from([0, 3, 1, 2, 3])]), p)).toBeUndefined()
    expect(p.sack).toHaveLength(3) // libtorrent's selective ACKs are not padded to 4 bytes
  })

  it('tells other protocols on the port apart: DHT messages, tracker replies, short datagrams', () => {
    expect(looksLikeUtp(Buffer.from('d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe'))).toBe(false)
    expect(looksLikeUtp(Buffer.alloc(HEADER_BYTES))).toBe(false) // BEP 15 connect reply: action 0
    expect(looksLikeUtp(Buffer.from([0x41, 0, 0]))).toBe(false)
    expect(decodePacket(Buffer.from('d1:q4:pinge'), emptyPacket())).toBe('NOT_UTP')
    const syn = Buffer.alloc(HEADER_BYTES)
    syn[0] = 0x41
    expect(looksLikeUtp(syn)).toBe(true)
    syn[0] = 0x51 // type 5 does not exist
    expect(looksLikeUtp(syn)).toBe(false)
  })

  it('never throws on random bytes', () => {
    const p = emptyPacket()
    let state = 12345
    for (let i = 0; i < 5000; i++) {
      const len = i % 64
      const buf = Buffer.alloc(len)
      for (let j = 0; j < len; j++) {
        state = (state * 1103515245 + 12345) >>> 0
        buf[j] = state >>> 24
      }
      if (len > 0) buf[0] = ((buf[0] ?? 0) & 0x70) | 1
      expect(() => decodePacket(buf, p)).not.toThrow()
    }
  })

  it('compares sequence numbers across 16-bit wraparound', () => {
    expect(seqLess(0xfffe, 1)).toBe(true)
    expect(seqLess(1, 0xfffe)).toBe(false)
    expect(seqDistance(2, 0xffff)).toBe(3)
    expect(seqDistance(0xffff, 2)).toBe(-3)
  })
})
