import { describe, expect, it } from 'vitest'
import type { MagnetErrorCode } from './index.js'
import {
  formatMagnet,
  isFileSelected,
  MagnetError,
  magnetFromTorrent,
  parseMagnet,
  parseTorrent,
} from './index.js'
import { codeOf, torrentBytes } from './test-support.js'

const HEX = 'c9e15763f722f23e98a29decdfae341b98d53056'
// The same 20 bytes in RFC 4648 base32.
const BASE32 = 'ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW'

describe('parseMagnet', () => {
  it('reads every BEP 9 and BEP 53 parameter', () => {
    const magnet = parseMagnet(
      `magnet:?xt=urn:btih:${HEX}&dn=Cosmos+Laundromat&tr=udp%3A%2F%2Ft1.example%3A6969&tr.1=http://t2.example/announce` +
        '&tr=udp://t1.example:6969&ws=http%3A%2F%2Fseed.example%2Fx&x.pe=10.0.0.1:6881&x.pe=%5B2001:db8::1%5D:51413' +
        '&x.pe=peer.example:1&so=0,2,4-6,5&xl=1234',
    )
    expect(magnet.infoHashHex).toBe(HEX)
    expect(magnet.infoHash).toHaveLength(20)
    expect(magnet.name).toBe('Cosmos Laundromat')
    expect(magnet.trackers).toEqual(['udp://t1.example:6969', 'http://t2.example/announce'])
    expect(magnet.webSeeds).toEqual(['http://seed.example/x'])
    expect(magnet.peers).toEqual([
      { host: '10.0.0.1', port: 6881 },
      { host: '2001:db8::1', port: 51413 },
      { host: 'peer.example', port: 1 },
    ])
    expect(magnet.selectOnly).toEqual([
      { first: 0, last: 0 },
      { first: 2, last: 2 },
      { first: 4, last: 6 },
    ])
    expect([0, 1, 2, 3, 4, 6, 7].map((i) => isFileSelected(magnet.selectOnly, i))).toEqual([
      true,
      false,
      true,
      false,
      true,
      true,
      false,
    ])
    expect(magnet.exactLength).toBe(1234)
  })

  it('reads a base32 infohash', () => {
    expect(parseMagnet(`magnet:?xt=urn:btih:${BASE32}`).infoHashHex).toBe(HEX)
    expect(parseMagnet(`magnet:?xt=urn:btih:${BASE32.toLowerCase()}`).infoHashHex).toBe(HEX)
  })

  it('notes the v2 hash of a hybrid magnet and rejects a v2-only magnet', () => {
    const v2 = `urn:btmh:1220${'ab'.repeat(32)}`
    const hybrid = parseMagnet(`magnet:?xt=${v2}&xt=urn:btih:${HEX}`)
    expect(hybrid.infoHashHex).toBe(HEX)
    expect(hybrid.infoHashV2Hex).toBe('ab'.repeat(32))
    expect(codeOf(() => parseMagnet(`magnet:?xt=${v2}`), MagnetError)).toBe('V2_NOT_SUPPORTED')
  })

  it('accepts the same infohash twice', () => {
    expect(parseMagnet(`magnet:?xt=urn:btih:${HEX}&xt=urn:btih:${BASE32}`).infoHashHex).toBe(HEX)
  })

  it.each<[string, MagnetErrorCode]>([
    ['http://example.com', 'NOT_A_MAGNET'],
    ['magnet:?dn=x', 'MISSING_INFO_HASH'],
    ['magnet:?xt=urn:btih:1234', 'INVALID_INFO_HASH'],
    [`magnet:?xt=urn:btih:${'g'.repeat(40)}`, 'INVALID_INFO_HASH'],
    ['magnet:?xt=urn:btmh:1220ab', 'INVALID_INFO_HASH'],
    [`magnet:?xt=urn:btih:${HEX}&xt=urn:btih:${'0'.repeat(40)}`, 'CONFLICTING_INFO_HASH'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=1.2.3.4`, 'INVALID_PEER'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=1.2.3.4:0`, 'INVALID_PEER'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=1.2.3.4:70000`, 'INVALID_PEER'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=[not-v6]:1`, 'INVALID_PEER'],
    [`magnet:?xt=urn:btih:${HEX}&x.pe=2001:db8::1:80`, 'INVALID_PEER'],
    [`magnet:?xt=urn:btih:${HEX}&so=1-a`, 'INVALID_SELECT_ONLY'],
    [`magnet:?xt=urn:btih:${HEX}&so=5-2`, 'INVALID_SELECT_ONLY'],
    [`magnet:?xt=urn:btih:${HEX}&so=0-999999999`, 'INVALID_SELECT_ONLY'],
    [`magnet:?xt=urn:btih:${HEX}&xl=-1`, 'INVALID_LENGTH'],
    [`magnet:?xt=urn:btih:${HEX}&xl=${'9'.repeat(20)}`, 'INVALID_LENGTH'],
    [`magnet:?xt=urn:btih:${HEX}&dn=${'x'.repeat(70_000)}`, 'TOO_LONG'],
  ])('rejects %s with %s', (uri, code) => {
    expect(codeOf(() => parseMagnet(uri), MagnetError)).toBe(code)
  })

  it('skips trackers and web seeds that are not usable URLs', () => {
    const magnet = parseMagnet(
      `magnet:?xt=urn:btih:${HEX}&tr=javascript:alert(1)&tr=nonsense&ws=file:///etc/passwd`,
    )
    expect(magnet.trackers).toEqual([])
    expect(magnet.webSeeds).toEqual([])
  })
})

describe('formatMagnet', () => {
  it('round-trips through parseMagnet', () => {
    const original = parseMagnet(
      `magnet:?xt=urn:btih:${HEX}&dn=a%26b%3Dc+d&tr=udp://t.example:1&ws=http://w.example/&x.pe=[::1]:5&x.pe=1.2.3.4:6&so=1,3-4&xl=9`,
    )
    expect(parseMagnet(formatMagnet(original))).toEqual(original)
  })

  it('makes the magnet of a torrent', () => {
    const torrent = parseTorrent(torrentBytes({ name: 'my file' }, { 'url-list': 'http://w.example/' }))
    const magnet = parseMagnet(magnetFromTorrent(torrent))
    expect(magnet.infoHashHex).toBe(torrent.infoHashHex)
    expect(magnet.name).toBe('my file')
    expect(magnet.trackers).toEqual(['http://tracker.example/announce'])
    expect(magnet.webSeeds).toEqual(['http://w.example/'])
    expect(magnet.exactLength).toBe(torrent.totalLength)
  })
})
