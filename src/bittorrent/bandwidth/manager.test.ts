import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { type BandwidthChannel, BandwidthManager } from './index.js'

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** A transfer that asks for `bytes` again as soon as the last request was granted; counts what it got. */
function greedy(manager: BandwidthManager, bytes: number, channels: BandwidthChannel[]): { got: number } {
  const state = { got: 0 }
  const again = (): void => {
    // Bounded per turn of the event loop, so an unlimited channel cannot spin forever.
    for (let i = 0; i < 1000; i++) {
      let sync = true
      let grantedSync = false
      manager.request(bytes, channels, () => {
        state.got += bytes
        if (sync) grantedSync = true
        else again()
      })
      sync = false
      if (!grantedSync) return
    }
    setImmediate(again)
  }
  again()
  return state
}

async function run(clock: ManualClock, ms: number, stepMs = 50): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(stepMs)
    await flush()
  }
}

describe('BandwidthManager', () => {
  it('grants through unlimited channels synchronously, with no timer', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const a = manager.channel(0)
    const b = manager.channel()
    expect(manager.tryAcquire(1_000_000, [a, b])).toBe(true)
    let granted = false
    manager.request(16_384, [a, b], () => {
      granted = true
    })
    expect(granted).toBe(true)
    await manager.acquire(16_384, [a, b])
    expect(clock.pending).toBe(0)
    expect(a.totalBytes).toBe(1_000_000 + 2 * 16_384)
  })

  it('holds a limited channel to its rate over time', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const channel = manager.channel(100_000)
    const transfer = greedy(manager, 1000, [channel])
    await run(clock, 10_000)
    // 10 s at 100 kB/s, plus at most one burst (0.5 s) and one request in debt.
    expect(transfer.got).toBeGreaterThanOrEqual(950_000)
    expect(transfer.got).toBeLessThanOrEqual(1_000_000 + 50_000 + 1000)
  })

  it('applies the smaller of the download and the session limit', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const session = manager.channel(100_000)
    const slow = manager.channel(20_000)
    const fast = manager.channel(0)
    const a = greedy(manager, 1000, [slow, session])
    const b = greedy(manager, 1000, [fast, session])
    await run(clock, 10_000)
    expect(a.got).toBeGreaterThan(180_000)
    expect(a.got).toBeLessThan(220_000 + 11_000)
    expect(a.got + b.got).toBeLessThanOrEqual(1_000_000 + 50_000 + 2000)
    expect(b.got).toBeGreaterThan(750_000)
  })

  it('shares one channel fairly among many transfers', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const channel = manager.channel(160_000)
    const transfers = Array.from({ length: 20 }, () => greedy(manager, 16_384, [channel]))
    await run(clock, 20_000)
    const got = transfers.map((t) => t.got / 16_384)
    expect(Math.min(...got)).toBeGreaterThan(0)
    // Round robin: the first transfer's grant at once puts it at most a round or two ahead.
    expect(Math.max(...got) - Math.min(...got)).toBeLessThanOrEqual(2)
    const total = transfers.reduce((sum, t) => sum + t.got, 0)
    expect(total).toBeGreaterThan(20 * 160_000 * 0.95)
    expect(total).toBeLessThanOrEqual(20 * 160_000 + 80_000 + 16_384)
  })

  it('changes limits while requests wait', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const channel = manager.channel(10_000)
    const transfer = greedy(manager, 1000, [channel])
    await run(clock, 1000)
    const before = transfer.got
    expect(before).toBeLessThanOrEqual(16_000)
    // Lifting the limit frees waiting requests at once, without waiting for a tick.
    channel.setRate(0)
    await flush()
    await flush()
    expect(transfer.got).toBeGreaterThan(before)
    expect(channel.unlimited).toBe(true)
    channel.setRate(50_000)
    const atLimit = transfer.got
    await run(clock, 4000)
    expect(transfer.got - atLimit).toBeGreaterThan(180_000)
    expect(transfer.got - atLimit).toBeLessThanOrEqual(200_000 + 25_000 + 2000)
  })

  it('does not let a request held by its own download limit block other downloads', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const session = manager.channel(100_000)
    const stalled = manager.channel(1)
    const other = manager.channel(0)
    stalled.setRate(1)
    manager.tryAcquire(10_000, [stalled]) // deep in debt: nothing passes here for hours
    let stalledGranted = false
    manager.request(1000, [stalled, session], () => {
      stalledGranted = true
    })
    let otherGranted = false
    manager.request(1000, [other, session], () => {
      otherGranted = true
    })
    await run(clock, 200)
    expect(otherGranted).toBe(true)
    expect(stalledGranted).toBe(false)
  })

  it('withdraws a request whose signal aborts', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const channel = manager.channel(1000)
    manager.tryAcquire(5000, [channel])
    const controller = new AbortController()
    const waiting = manager.acquire(100, [channel], { signal: controller.signal })
    expect(manager.queued).toBe(1)
    controller.abort(new Error('gone'))
    await expect(waiting).rejects.toThrow('gone')
    expect(manager.queued).toBe(0)
    expect(channel.waiting).toBe(0)
    // Aborted before the call: rejected at once.
    await expect(manager.acquire(100, [channel], { signal: controller.signal })).rejects.toThrow('gone')
  })

  it('cancels a callback request', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const channel = manager.channel(1000)
    manager.tryAcquire(1000, [channel])
    let granted = false
    const cancel = manager.request(100, [channel], () => {
      granted = true
    })
    cancel()
    await run(clock, 3000)
    expect(granted).toBe(false)
    expect(clock.pending).toBe(0)
  })

  it('fails waiting requests when stopped', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock })
    const channel = manager.channel(1000)
    manager.tryAcquire(1000, [channel])
    const waiting = manager.acquire(100, [channel])
    manager.stop()
    await expect(waiting).rejects.toMatchObject({ code: 'STOPPED' })
    await expect(manager.acquire(1, [channel])).rejects.toMatchObject({ code: 'STOPPED' })
    expect(clock.pending).toBe(0)
  })

  it('rejects invalid rates and sizes', () => {
    const manager = new BandwidthManager({ clock: new ManualClock() })
    expect(() => manager.channel(-1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
    expect(() => manager.channel(Number.NaN)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }))
    const channel = manager.channel(10)
    expect(() => channel.setRate(Number.POSITIVE_INFINITY)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    )
    expect(() => manager.tryAcquire(0, [channel])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    )
    expect(() => manager.tryAcquire(1.5, [channel])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    )
  })

  it('does not save up more than the burst while idle', async () => {
    const clock = new ManualClock()
    const manager = new BandwidthManager({ clock, burstMs: 500 })
    const channel = manager.channel(10_000)
    clock.advance(60_000)
    expect(channel.balance).toBe(5000)
  })
})
