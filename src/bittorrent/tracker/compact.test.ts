import { describe, expect, it } from 'vitest'
import { encodeCompactPeer, parseCompactPeers } from './compact.js'

describe('compact peers', () => {
  it('round-trips IPv4 and IPv6 entries and drops port 0', () => {
    const v4 = Buffer.concat([
      encodeCompactPeer({ host: '1.2.3.4', port: 80 })!,
      Buffer.from([5, 6, 7, 8, 0, 0]),
    ])
    expect(parseCompactPeers(v4, 4)).toEqual([{ host: '1.2.3.4', port: 80 }])
    const v6 = encodeCompactPeer({ host: '2001:db8::7', port: 6881 })!
    expect(v6).toHaveLength(18)
    expect(parseCompactPeers(v6, 6)).toEqual([{ host: '2001:db8::7', port: 6881 }])
    expect(parseCompactPeers(Buffer.alloc(7), 4)).toBeUndefined()
    expect(encodeCompactPeer({ host: 'example.org', port: 1 })).toBeUndefined()
  })
})
