import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { Framer } from './framer.js'
import { isPooledRead, POOLED_READ_BYTES, pooledReads } from './read-pool.js'

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
    const chunk = read(Buffer.from('abcdefgh'))
    expect(chunk).toHaveLength(8)
    expect(isPooledRead(chunk)).toBe(true)
    framer.push(chunk)
    expect(framer.takeTransient(3)!.toString()).toBe('abc')
    expect(framer.takeTransient(5)!.toString()).toBe('defgh')
    // Released only at recycle, so the views stay valid while the listeners run.
    expect(isPooledRead(chunk)).toBe(true)
    framer.recycle()
    expect(isPooledRead(chunk)).toBe(false)
    const next = read(Buffer.from('xy'))
    expect(next.buffer).toBe(chunk.buffer)
    expect(next.toString()).toBe('xy')
  })

  it('keeps a pooled read whose view escaped, and one not read to the end', () => {
    const read = pooledSource()
    const framer = new Framer()
    const kept = read(Buffer.from('handshake'))
    framer.push(kept)
    const view = framer.take(9)!
    const partial = read(Buffer.from('0123456789'))
    framer.push(partial)
    expect(framer.takeTransient(4)!.toString()).toBe('0123')
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
    const a = read(Buffer.from('0123'))
    const b = read(Buffer.from('4567'))
    const c = read(Buffer.from('89ab'))
    for (const chunk of [a, b, c]) framer.push(chunk)
    const spanning = framer.takeTransient(6)!
    expect(spanning.toString()).toBe('012345')
    const copy = framer.take(4)!
    expect(copy.toString()).toBe('6789')
    framer.recycle()
    // a and b were read to the end with no view kept; c still holds two bytes.
    expect(isPooledRead(a)).toBe(false)
    expect(isPooledRead(b)).toBe(false)
    expect(isPooledRead(c)).toBe(true)
    read(Buffer.from('zzzz'))
    read(Buffer.from('wwww'))
    expect(copy.toString()).toBe('6789')
    expect(framer.take(2)!.toString()).toBe('ab')
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
