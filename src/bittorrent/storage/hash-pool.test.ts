import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { allocPiece, HashPool } from './hash-pool.js'

const sha1 = (data: Uint8Array): Buffer => createHash('sha1').update(data).digest()

describe('HashPool', () => {
  it('hashes pieces on its worker, handing each buffer there and back without a copy', async () => {
    const pool = new HashPool()
    const pieces = Array.from({ length: 12 }, (_, i) => {
      const piece = allocPiece(16_384 + i * 1_000)
      piece.set(randomBytes(piece.length))
      return piece
    })
    const expected = pieces.map((p) => ({ digest: sha1(p), bytes: Buffer.from(p) }))
    const results = await Promise.all(
      pieces.map((piece) => {
        const hashed = pool.sha1Piece(piece)
        // Moved to the worker: the caller's buffer is empty until the bytes come back.
        expect(piece.buffer.byteLength).toBe(0)
        return hashed
      }),
    )
    expect(pool.usesWorker).toBe(true)
    for (const [i, { digest, data }] of results.entries()) {
      expect(digest).toEqual(expected[i]!.digest)
      expect(data).toEqual(expected[i]!.bytes)
    }
  })

  it('hashes a buffer that shares its memory with others on the calling thread, leaving it in place', async () => {
    const pool = new HashPool()
    const whole = randomBytes(4_096)
    const view = whole.subarray(100, 3_000)
    const { digest, data } = await pool.sha1Piece(view)
    expect(digest).toEqual(sha1(view))
    expect(data).toBe(view)
    expect(whole.buffer.byteLength).toBeGreaterThan(0)
  })
})
