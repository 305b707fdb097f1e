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

  it('composes a download limit with the session limit: the lower one holds, whichever it is', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const session = manager.channel(200_000)
    const download = manager.channel(50_000)
    const [a, b] = duplexPair()
    const paced = throttle(a, { manager, write: [download, session] })
    const atB = collect(b)
    void writeAll(paced, randomBytes(3_000_000))
    // 2 s under the download's 50 kB/s: at most 50 kB/s, its burst and one slice.
    await advance(clock, 2000)
    const underDownload = atB.total()
    expect(underDownload).toBeLessThanOrEqual(50 * 2000 + 25_000 + 16_384)
    expect(underDownload).toBeGreaterThan(50 * 2000 * 0.5)
    // Lifting the download's limit leaves the session's 200 kB/s.
    download.setRate(0)
    await advance(clock, 2000)
    const underSession = atB.total() - underDownload
    expect(underSession).toBeLessThanOrEqual(200 * 2000 + 100_000 + 16_384)
    expect(underSession).toBeGreaterThan(200 * 2000 * 0.5)
    // A download limit above the session's changes nothing: the session's still holds.
    download.setRate(1_000_000)
    const before = atB.total()
    await advance(clock, 2000)
    expect(atB.total() - before).toBeLessThanOrEqual(200 * 2000 + 100_000 + 16_384)
    paced.destroy()
  })

  it("paces a connection by a download's limit added after it opened", async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const session = manager.channel(0)
    const [a, b] = duplexPair()
    const paced = throttle(b, { manager, read: [session] })
    const got = collect(paced)
    // Unlimited: the handshake and the first bytes pass at once.
    a.write(randomBytes(200_000))
    await waitUntil(() => got.total() === 200_000)
    const download = manager.channel(40_000)
    paced.addChannels({ read: [download] })
    paced.addChannels({ read: [download] })
    void writeAll(a, randomBytes(2_000_000))
    await advance(clock, 200)
    const start = got.total()
    await advance(clock, 3000)
    expect(got.total() - start).toBeLessThanOrEqual(40 * 3000 + 20_000 + 2 * 16_384)
    expect(got.total() - start).toBeGreaterThan(40 * 3000 * 0.5)
    // Every byte after the join passed through both channels, and each counted it once.
    expect(download.totalBytes).toBeLessThanOrEqual(session.totalBytes)
    expect(download.totalBytes).toBeGreaterThan(0)
    paced.destroy()
  })

  it("does not let one download's limit hold back another download under the same session limit", async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const session = manager.channel(300_000)
    const slow = manager.channel(20_000)
    const fast = manager.channel(0)
    const [a1, b1] = duplexPair()
    const [a2, b2] = duplexPair()
    const atSlow = collect(b1)
    const atFast = collect(b2)
    const p1 = throttle(a1, { manager, write: [slow, session] })
    const p2 = throttle(a2, { manager, write: [fast, session] })
    void writeAll(p1, randomBytes(2_000_000))
    void writeAll(p2, randomBytes(2_000_000))
    await advance(clock, 3000)
    expect(atSlow.total()).toBeLessThanOrEqual(20 * 3000 + 10_000 + 16_384)
    // The other download takes what the session limit leaves.
    expect(atFast.total()).toBeGreaterThan((300 - 20) * 3000 * 0.6)
    expect(atSlow.total() + atFast.total()).toBeLessThanOrEqual(300 * 3000 + 150_000 + 2 * 16_384)
    p1.destroy()
    p2.destroy()
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

/** Moves the clock on by `ms` in 50 ms ticks, letting the streams run after each. */
async function advance(clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    clock.advance(50)
    await flush()
  }
}

async function waitUntil(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await flush()
  }
}
