import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { Framer } from './framer.js'
import { isPooledRead, MIN_POOLED_READ_BYTES, POOLED_READ_BYTES, pooledReads } from './read-pool.js'

/** Pooled reads as a socket makes them: each call fills the next pool buffer with `bytes` and returns the chunk. */
function pooledSource(): (bytes: Uint8Array) => Buffer {
  const pushed: Buffer[] = []
  const reads = pooledReads(() => ({ push: (chunk: Buffer) => pushed.push(chunk) > 0 }) as unknown as Socket)
  const nextBuffer = reads.buffer as () => Uint8Array
  return (bytes) => {
    const buf = nextBuffer()
    buf.set(bytes)
    reads.callback(bytes.length, buf)
    return pushed.pop()!
  }
}

describe('Framer', () => {
  it('returns views within a chunk and copies across chunks', () => {
    const framer = new Framer()
    framer.push(Buffer.from([1, 2, 3, 4]))
    framer.push(Buffer.from([5, 6]))
    expect(framer.peekUInt32()).toBe(0x01020304)
    expect([...framer.take(3)!]).toEqual([1, 2, 3])
    expect(framer.peekUInt32()).toBe(-1)
    expect([...framer.take(3)!]).toEqual([4, 5, 6])
    expect(framer.buffered).toBe(0)
    expect(framer.take(1)).toBeUndefined()
  })

  it('gives a pooled read back once every byte of it was taken transiently', () => {
    const read = pooledSource()
    const framer = new Framer()
    const data = randomBytes(POOLED_READ_BYTES)
    const chunk = read(data)
    expect(chunk).toHaveLength(POOLED_READ_BYTES)
    expect(isPooledRead(chunk)).toBe(true)
    framer.push(chunk)
    expect(framer.takeTransient(3)).toEqual(data.subarray(0, 3))
    expect(framer.takeTransient(POOLED_READ_BYTES - 3)).toEqual(data.subarray(3))
    // Released only at recycle, so the views stay valid while the listeners run.
    expect(isPooledRead(chunk)).toBe(true)
    framer.recycle()
    expect(isPooledRead(chunk)).toBe(false)
    const next = read(Buffer.alloc(MIN_POOLED_READ_BYTES, 'x'))
    expect(next.buffer).toBe(chunk.buffer)
    expect(next).toEqual(Buffer.alloc(MIN_POOLED_READ_BYTES, 'x'))
  })

  it('keeps a pooled read whose view escaped, and one not read to the end', () => {
    const read = pooledSource()
    const framer = new Framer()
    const first = Buffer.alloc(MIN_POOLED_READ_BYTES, 'k')
    first.write('handshake')
    const kept = read(first)
    framer.push(kept)
    const view = framer.take(9)!
    expect(framer.takeTransient(MIN_POOLED_READ_BYTES - 9)).toHaveLength(MIN_POOLED_READ_BYTES - 9)
    const partial = read(Buffer.alloc(MIN_POOLED_READ_BYTES, 'p'))
    framer.push(partial)
    expect(framer.takeTransient(4)!.toString()).toBe('pppp')
    framer.recycle()
    expect(isPooledRead(kept)).toBe(true)
    expect(isPooledRead(partial)).toBe(true)
    const other = read(Buffer.alloc(POOLED_READ_BYTES, 0x55))
    expect(other.buffer).not.toBe(kept.buffer)
    expect(other.buffer).not.toBe(partial.buffer)
    expect(view.toString()).toBe('handshake')
  })

  it('assembles transient takes across chunks in its own buffer, and regular takes in a copy that stays', () => {
    const read = pooledSource()
    const framer = new Framer()
    const n = MIN_POOLED_READ_BYTES
    const data = randomBytes(3 * n)
    const a = read(data.subarray(0, n))
    const b = read(data.subarray(n, 2 * n))
    const c = read(data.subarray(2 * n))
    for (const chunk of [a, b, c]) framer.push(chunk)
    const spanning = framer.takeTransient(n + n / 2)!
    expect(spanning).toEqual(data.subarray(0, n + n / 2))
    const copy = framer.take(n)!
    expect(copy).toEqual(data.subarray(n + n / 2, 2 * n + n / 2))
    framer.recycle()
    // a and b were read to the end with no view kept; c still holds half its bytes.
    expect(isPooledRead(a)).toBe(false)
    expect(isPooledRead(b)).toBe(false)
    expect(isPooledRead(c)).toBe(true)
    read(Buffer.alloc(POOLED_READ_BYTES, 'z'))
    read(Buffer.alloc(POOLED_READ_BYTES, 'w'))
    expect(copy).toEqual(data.subarray(n + n / 2, 2 * n + n / 2))
    expect(framer.take(n / 2)).toEqual(data.subarray(2 * n + n / 2))
  })

  it('holds a trickle of small reads in their own bytes, not one pool buffer each', () => {
    // A peer can send a long message a byte per segment: while it waits to be parsed whole, every read stays.
    const read = pooledSource()
    const framer = new Framer()
    framer.push(read(Buffer.from([0, 0, 16, 0])))
    for (let i = 0; i < 1000; i++) framer.push(read(Buffer.from([i & 0xff])))
    expect(framer.peekUInt32()).toBe(4096)
    expect(framer.buffered).toBe(1004)
    const held = new Set<ArrayBufferLike>()
    for (;;) {
      const chunk = framer.take(1)
      if (chunk === undefined) break
      held.add(chunk.buffer)
    }
    let bytes = 0
    for (const buffer of held) bytes += buffer.byteLength
    expect(bytes).toBeLessThan(POOLED_READ_BYTES)
  })

  it('skips across chunks and drops everything on clear', () => {
    const framer = new Framer()
    framer.push(Buffer.from([1, 2]))
    framer.push(Buffer.from([3, 4, 5]))
    framer.skip(3)
    expect(framer.peekUInt8()).toBe(4)
    framer.clear()
    expect(framer.buffered).toBe(0)
    expect(framer.peekUInt8()).toBe(-1)
  })
})
