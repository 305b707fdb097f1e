import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { duplexPair } from '../peer-wire/index.js'
import { BandwidthManager, throttle } from './index.js'

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function collect(stream: Duplex): { bytes: Buffer[]; total: () => number; ended: boolean } {
  const state = {
    bytes: [] as Buffer[],
    total: () => state.bytes.reduce((n, b) => n + b.length, 0),
    ended: false,
  }
  stream.on('data', (chunk: Buffer) => state.bytes.push(chunk))
  stream.on('end', () => {
    state.ended = true
  })
  return state
}

/** Writes `data` in 16 KiB chunks, respecting backpressure, then ends. */
async function writeAll(stream: Duplex, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += 16_384) {
    if (!stream.write(data.subarray(at, at + 16_384))) {
      await new Promise((resolve) => stream.once('drain', resolve))
    }
  }
  stream.end()
}

describe('throttle', () => {
  it('passes bytes unchanged and both ways when unlimited', async () => {
    const manager = new BandwidthManager({ clock: new ManualClock() })
    const down = manager.channel(0)
    const up = manager.channel(0)
    const [a, b] = duplexPair()
    const paced = throttle(a, { manager, read: [down], write: [up] })
    const atB = collect(b)
    const atPaced = collect(paced)
    const out = randomBytes(1_000_000)
    const back = randomBytes(300_000)
    await Promise.all([writeAll(paced, out), writeAll(b, back)])
    await waitUntil(() => atB.ended && atPaced.ended)
    expect(Buffer.concat(atB.bytes).equals(out)).toBe(true)
    expect(Buffer.concat(atPaced.bytes).equals(back)).toBe(true)
    expect(up.totalBytes).toBe(out.length)
    expect(down.totalBytes).toBe(back.length)
  })

  it('paces writes to the rate and delivers every byte in order', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const up = manager.channel(100_000)
    const [a, b] = duplexPair()
    const paced = throttle(a, { manager, write: [up] })
    const atB = collect(b)
    const data = randomBytes(500_000)
    const writing = writeAll(paced, data)
    for (let ms = 50; ms <= 3000; ms += 50) {
      clock.advance(50)
      await flush()
      // Never ahead of the rate by more than the burst and one slice.
      expect(atB.total()).toBeLessThanOrEqual(100 * ms + 50_000 + 16_384 + 5000)
    }
    expect(atB.total()).toBeGreaterThan(250_000)
    for (let i = 0; i < 200 && !atB.ended; i++) {
      clock.advance(100)
      await flush()
    }
    await writing
    expect(Buffer.concat(atB.bytes).equals(data)).toBe(true)
  })

  it('paces reads by pausing the source instead of buffering it', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const down = manager.channel(50_000)
    const [a, b] = duplexPair({ highWaterMark: 64 * 1024 })
    const paced = throttle(a, { manager, read: [down] })
    const got = collect(paced)
    const data = randomBytes(2_000_000)
    let writesDone = false
    const writing = writeAll(b, data).then(() => {
      writesDone = true
    })
    for (let ms = 50; ms <= 2000; ms += 50) {
      clock.advance(50)
      await flush()
      expect(got.total()).toBeLessThanOrEqual(50 * ms + 25_000 + 16_384 + 2500)
    }
    // The sender is held back by backpressure: most of its 2 MB is still unsent, not queued in memory.
    expect(writesDone).toBe(false)
    expect(b.writableLength + a.readableLength + paced.readableLength).toBeLessThan(600_000)
    down.setRate(0)
    await waitUntil(() => got.ended)
    await writing
    expect(Buffer.concat(got.bytes).equals(data)).toBe(true)
  })

  it('destroys the inner stream with the wrapper, and the wrapper with the inner stream', async () => {
    const manager = new BandwidthManager({ clock: new ManualClock() })
    const [a] = duplexPair()
    const paced = throttle(a, { manager })
    paced.destroy()
    await waitUntil(() => a.destroyed)
    const [c] = duplexPair()
    const paced2 = throttle(c, { manager, read: [manager.channel(10)] })
    paced2.on('error', () => {})
    c.destroy(new Error('reset'))
    await waitUntil(() => paced2.destroyed)
  })
})

async function waitUntil(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await flush()
  }
}
