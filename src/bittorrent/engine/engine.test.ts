import { describe, expect, it } from 'vitest'
import { outgoingAddress } from './engine.js'

describe('outgoingAddress', () => {
  it('binds outgoing connections to a specific listen address of the peer family', () => {
    expect(outgoingAddress('127.0.0.5', '127.0.0.9')).toBe('127.0.0.5')
    expect(outgoingAddress('192.0.2.7', '198.51.100.1')).toBe('192.0.2.7')
    expect(outgoingAddress('192.0.2.7', '127.0.0.1')).toBe('192.0.2.7')
    expect(outgoingAddress('::1', '::1')).toBe('::1')
  })

  it('leaves the choice to the system for a wildcard, another family, or a loopback address to the outside', () => {
    expect(outgoingAddress(undefined, '127.0.0.1')).toBeUndefined()
    expect(outgoingAddress('0.0.0.0', '198.51.100.1')).toBeUndefined()
    expect(outgoingAddress('::', '2001:db8::1')).toBeUndefined()
    expect(outgoingAddress('127.0.0.5', '::1')).toBeUndefined()
    expect(outgoingAddress('::1', '127.0.0.1')).toBeUndefined()
    expect(outgoingAddress('127.0.0.5', '198.51.100.1')).toBeUndefined()
    expect(outgoingAddress('example.org', '198.51.100.1')).toBeUndefined()
  })

  it('binds nothing towards an IPv4-mapped peer, which an IPv6 source address cannot reach', () => {
    expect(outgoingAddress('2001:db8::5', '::ffff:198.51.100.1')).toBeUndefined()
    expect(outgoingAddress('2001:db8::5', '::FFFF:198.51.100.1')).toBeUndefined()
    expect(outgoingAddress('2001:db8::5', '2001:db8::9')).toBe('2001:db8::5')
  })
})
