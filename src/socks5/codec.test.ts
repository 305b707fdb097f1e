import { describe, expect, it } from 'vitest'
import {
  decodeAddress,
  decodeCredentials,
  decodeMethods,
  decodeReply,
  decodeRequest,
  decodeUdpDatagram,
  encodeAddress,
  encodeCredentials,
  encodeReply,
  encodeRequest,
  encodeUdpDatagram,
} from './codec.js'
import { Command, Reply, Socks5Error } from './types.js'

const hex = (text: string): Buffer => Buffer.from(text.replaceAll(' ', ''), 'hex')

describe('SOCKS5 codec', () => {
  it('writes IPv4, IPv6 and domain addresses as RFC 1928 §5 lays them out', () => {
    expect(encodeAddress({ host: '127.0.0.1', port: 6881 })).toEqual(hex('01 7f000001 1ae1'))
    expect(encodeAddress({ host: '::1', port: 80 })).toEqual(hex('04 00000000000000000000000000000001 0050'))
    expect(encodeAddress({ host: 'tracker.example', port: 6969 })).toEqual(
      Buffer.concat([hex('03 0f'), Buffer.from('tracker.example'), hex('1b39')]),
    )
  })

  it('reads back what it writes, for every address type', () => {
    for (const address of [
      { host: '10.1.2.3', port: 1 },
      { host: '2001:db8::7', port: 65535 },
      { host: 'a.b', port: 53 },
    ]) {
      const bytes = encodeAddress(address)
      expect(decodeAddress(bytes, 0)).toEqual({ value: address, end: bytes.length })
    }
  })

  it('asks for more bytes while an address is incomplete and refuses unknown types', () => {
    const bytes = encodeAddress({ host: 'example.org', port: 80 })
    for (let cut = 0; cut < bytes.length; cut++)
      expect(decodeAddress(bytes.subarray(0, cut), 0)).toBeUndefined()
    expect(() => decodeAddress(hex('05 00000000 0000'), 0)).toThrow(Socks5Error)
    expect(() => decodeAddress(hex('03 00 0050'), 0)).toThrow(Socks5Error)
  })

  it('refuses addresses it cannot write', () => {
    expect(() => encodeAddress({ host: 'x'.repeat(256), port: 1 })).toThrow(Socks5Error)
    expect(() => encodeAddress({ host: '1.2.3.4', port: 70000 })).toThrow(Socks5Error)
  })

  it('decodes method selection, credentials and requests, and encodes replies', () => {
    expect(decodeMethods(hex('05 02 00 02'))).toEqual({ value: { version: 5, methods: [0, 2] }, end: 4 })
    expect(decodeMethods(hex('05 02 00'))).toBeUndefined()
    const credentials = encodeCredentials('user', 'pässword')
    expect(decodeCredentials(credentials)).toEqual({
      value: { version: 1, username: 'user', password: 'pässword' },
      end: credentials.length,
    })
    const request = encodeRequest(Command.UDP_ASSOCIATE, { host: '0.0.0.0', port: 0 })
    expect(request).toEqual(hex('05 03 00 01 00000000 0000'))
    expect(decodeRequest(request)?.value).toEqual({ command: 3, address: { host: '0.0.0.0', port: 0 } })
    expect(() => decodeRequest(hex('04 01 00 01 00000000 0000'))).toThrow(Socks5Error)
    const reply = encodeReply(Reply.SUCCEEDED, { host: '127.0.0.1', port: 40000 })
    expect(reply).toEqual(hex('05 00 00 01 7f000001 9c40'))
    expect(decodeReply(reply)?.value).toEqual({ reply: 0, bound: { host: '127.0.0.1', port: 40000 } })
  })

  it('wraps and unwraps relayed datagrams with RSV 0 and FRAG 0', () => {
    const wrapped = encodeUdpDatagram({ host: '192.0.2.1', port: 6881 }, Buffer.from('ping'))
    expect(wrapped).toEqual(Buffer.concat([hex('0000 00 01 c0000201 1ae1'), Buffer.from('ping')]))
    expect(decodeUdpDatagram(wrapped)).toEqual({
      frag: 0,
      address: { host: '192.0.2.1', port: 6881 },
      payload: Buffer.from('ping'),
    })
    expect(decodeUdpDatagram(hex('0000 05 03 01 61 0035')).frag).toBe(5)
    expect(() => decodeUdpDatagram(hex('0100 00 01 7f000001 0035'))).toThrow(Socks5Error)
    expect(() => decodeUdpDatagram(hex('0000 00 01 7f00'))).toThrow(Socks5Error)
  })

  it('never throws anything but a Socks5Error on random bytes (fuzz)', () => {
    let seed = 0x2545f491
    const next = (): number => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return seed >>> 0
    }
    let decoded = 0
    for (let i = 0; i < 20_000; i++) {
      const bytes = Buffer.alloc(next() % 40)
      for (let j = 0; j < bytes.length; j++) bytes[j] = next() & 0xff
      // Bias towards valid prefixes so the deeper branches run.
      if (bytes.length > 4 && i % 2 === 0) {
        bytes[0] = 0
        bytes[1] = 0
        bytes[3] = [1, 3, 4][next() % 3] as number
      }
      for (const decode of [
        () => decodeUdpDatagram(bytes),
        () => decodeRequest(bytes),
        () => decodeReply(bytes),
        () => decodeMethods(bytes),
        () => decodeCredentials(bytes),
      ]) {
        try {
          if (decode() !== undefined) decoded++
        } catch (err) {
          expect(err).toBeInstanceOf(Socks5Error)
        }
      }
    }
    expect(decoded).toBeGreaterThan(0)
  })
})
