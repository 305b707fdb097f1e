import { describe, expect, it } from 'vitest'
import { seededRandom } from '../net/index.js'
import { MagnetError, MetainfoError, parseMagnet, parseTorrent } from './index.js'
import { torrentBytes } from './test-support.js'

function onlyOurErrors(fn: () => unknown, errorClass: typeof MetainfoError | typeof MagnetError): void {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(errorClass)
  }
}

describe('metainfo fuzzing', () => {
  const seeds = [
    torrentBytes(
      { length: 50_000 },
      { 'announce-list': [['udp://a.example:1']], 'url-list': 'http://w.example/' },
    ),
    torrentBytes({
      name: 'multi',
      files: [
        { length: 100, path: ['a', 'b'], 'path.utf-8': ['a', 'b'] },
        { length: 16284, path: ['.pad', '1'], attr: 'p' },
        { length: 20_000, path: ['..', 'c'] },
      ],
      'meta version': 2,
    }),
  ]

  it('throws nothing but MetainfoError on mutated torrents', () => {
    const rand = seededRandom(11)
    const alphabet = Buffer.from('0123456789:ilde-')
    for (let i = 0; i < 4000; i++) {
      const input = Buffer.from(seeds[i % seeds.length]!)
      const mutations = 1 + Math.floor(rand() * 4)
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(rand() * input.length)
        input[at] = rand() < 0.6 ? alphabet[Math.floor(rand() * alphabet.length)]! : Math.floor(rand() * 256)
      }
      const cut = rand() < 0.2 ? input.subarray(0, Math.floor(rand() * input.length)) : input
      onlyOurErrors(() => parseTorrent(cut), MetainfoError)
    }
  })

  it('throws nothing but MagnetError on mutated magnet links', () => {
    const rand = seededRandom(12)
    const base =
      'magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056&dn=x&tr=udp://t.example:1&x.pe=[::1]:5&so=1,3-4&xl=9'
    const alphabet = '%&=:[]/.,-0123456789abcxyz?#+ \u00e9\ud800'
    for (let i = 0; i < 4000; i++) {
      const chars = [...base]
      const mutations = 1 + Math.floor(rand() * 4)
      for (let m = 0; m < mutations; m++) {
        chars[Math.floor(rand() * chars.length)] = alphabet[Math.floor(rand() * alphabet.length)]!
      }
      onlyOurErrors(() => parseMagnet(chars.join('')), MagnetError)
    }
  })
})
