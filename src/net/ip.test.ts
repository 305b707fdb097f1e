import { describe, expect, it } from 'vitest'
import { bytesToIp, canonicalHost, ipFamily, ipToBytes } from './ip.js'

describe('IP addresses', () => {
  it('tells the family of a host as net.isIP does, asked again and again', () => {
    for (let round = 0; round < 2; round++) {
      expect(ipFamily('127.0.0.1')).toBe(4)
      expect(ipFamily('::1')).toBe(6)
      expect(ipFamily('::ffff:10.1.2.3')).toBe(6)
      expect(ipFamily('localhost')).toBe(0)
      expect(ipFamily('1.2.3.256')).toBe(0)
      expect(ipFamily('')).toBe(0)
    }
  })

  it('writes IPv6 addresses in their canonical form', () => {
    expect(canonicalHost('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1')
    expect(canonicalHost('::1')).toBe('::1')
    expect(canonicalHost('fe80:0:0:1:0:0:0:1')).toBe('fe80:0:0:1::1')
    expect(canonicalHost('::FFFF:10.1.2.3')).toBe('::ffff:10.1.2.3')
    expect(canonicalHost('10.1.2.3')).toBe('10.1.2.3')
  })

  it('turns addresses into 4 or 16 bytes and back', () => {
    expect(ipToBytes('10.1.2.3')).toEqual(Buffer.from([10, 1, 2, 3]))
    expect(ipToBytes('::ffff:1.2.3.4')).toEqual(
      Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]),
    )
    expect(ipToBytes('fe80::1%eth0')?.toString('hex')).toBe('fe800000000000000000000000000001')
    expect(ipToBytes('example.org')).toBeUndefined()
    expect(ipToBytes('1.2.3.4.5')).toBeUndefined()
    for (const host of ['127.0.0.1', '::1', '2001:db8::7', '::ffff:1.2.3.4', '1:2:3:4:5:6:7:8']) {
      expect(bytesToIp(ipToBytes(host)!)).toBe(host)
    }
    expect(() => bytesToIp(new Uint8Array(5))).toThrow(RangeError)
  })
})
