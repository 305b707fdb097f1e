import { describe, expect, it } from 'vitest'
import { encode } from '../../bencode/index.js'
import { seededRandom } from '../../net/index.js'
import { parseHttpAnnounce, parseHttpScrape } from './http.js'
import { TrackerError } from './types.js'
import { parseAnnounceReply } from './udp.js'

const ITERATIONS = 3000

function mutate(seed: Buffer, random: () => number): Buffer {
  const out = Buffer.from(seed)
  const edits = 1 + Math.floor(random() * 4)
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * out.length)
    const kind = random()
    if (kind < 0.5) out[at] = Math.floor(random() * 256)
    else if (kind < 0.75) return Buffer.concat([out.subarray(0, at), out.subarray(at + 1)])
    else return out.subarray(0, at)
  }
  return out
}

/** Runs `parse` on mutated inputs: it either returns or throws a TrackerError, never anything else. */
function fuzz(seeds: Buffer[], parse: (data: Buffer) => unknown): void {
  const random = seededRandom(99)
  for (let i = 0; i < ITERATIONS; i++) {
    const input = mutate(seeds[i % seeds.length]!, random)
    try {
      parse(input)
    } catch (err) {
      expect(err).toBeInstanceOf(TrackerError)
    }
  }
}

describe('tracker parsers under fuzzing', () => {
  it('HTTP announce replies fail only with TrackerError', () => {
    fuzz(
      [
        encode({ interval: 60, peers: Buffer.alloc(12, 1), peers6: Buffer.alloc(18, 2), complete: 1 }),
        encode({ interval: 60, peers: [{ ip: '1.2.3.4', port: 5, 'peer id': Buffer.alloc(20) }] }),
        encode({ 'failure reason': 'x' }),
      ],
      parseHttpAnnounce,
    )
  })

  it('HTTP scrape replies fail only with TrackerError', () => {
    fuzz(
      [
        encode({
          files: new Map([[Buffer.alloc(20, 3).toString('latin1'), { complete: 1, incomplete: 2 }]]),
        }),
      ],
      parseHttpScrape,
    )
  })

  it('UDP announce replies fail only with TrackerError', () => {
    const reply = Buffer.alloc(20 + 18 * 2, 7)
    fuzz([reply], (data) => parseAnnounceReply(data, 4))
    fuzz([reply], (data) => parseAnnounceReply(data, 6))
  })
})
