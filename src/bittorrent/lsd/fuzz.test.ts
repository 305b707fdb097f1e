import { describe, expect, it } from 'vitest'
import { seededRandom } from '../../net/index.js'
import { decodeLsdAnnounce, encodeLsdAnnounce } from './message.js'
import { LsdError } from './types.js'

describe('BT-SEARCH parser under fuzzing', () => {
  it('fails only with LsdError on mutated messages', () => {
    const random = seededRandom(14)
    const seed = encodeLsdAnnounce(
      { host: '239.192.152.143', port: 6771 },
      { port: 6881, infoHashes: ['ab'.repeat(20), 'cd'.repeat(20)], cookie: 'x' },
    )
    for (let i = 0; i < 5000; i++) {
      const packet = Buffer.from(seed)
      const edits = 1 + Math.floor(random() * 4)
      for (let e = 0; e < edits; e++)
        packet[Math.floor(random() * packet.length)] = Math.floor(random() * 256)
      try {
        const parsed = decodeLsdAnnounce(packet.subarray(0, Math.floor(random() * packet.length) + 1))
        expect(parsed.port).toBeGreaterThan(0)
        for (const hash of parsed.infoHashes) expect(hash).toMatch(/^[0-9a-f]{40}$/)
      } catch (err) {
        expect(err).toBeInstanceOf(LsdError)
      }
    }
  })
})
