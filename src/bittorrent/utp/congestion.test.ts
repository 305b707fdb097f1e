import { describe, expect, it } from 'vitest'
import { DelayHistory, GAIN_BYTES, Ledbat, MIN_RTO_MS, RttEstimator, TARGET_DELAY_US } from './congestion.js'

const MSS = 1380

/** Acks one window in packet-sized steps from a sender that keeps it full, `delayUs` queuing delay each time. */
function ackWindow(ledbat: Ledbat, delayUs: number): void {
  const window = ledbat.cwndBytes
  for (let acked = 0; acked + MSS <= window; acked += MSS) ledbat.onAck(MSS, delayUs, ledbat.cwndBytes)
}

describe('LEDBAT', () => {
  it('doubles the window per round trip in slow start while delay is low', () => {
    const ledbat = new Ledbat({ packetBytes: MSS, initialCwndBytes: 4 * MSS })
    ackWindow(ledbat, 0)
    expect(ledbat.cwndBytes).toBe(8 * MSS)
    expect(ledbat.slowStart).toBe(true)
  })

  it('leaves slow start when delay reaches the target and grows by at most the gain per window after', () => {
    const ledbat = new Ledbat({ packetBytes: MSS, initialCwndBytes: 20 * MSS })
    ledbat.onAck(MSS, TARGET_DELAY_US, 20 * MSS)
    expect(ledbat.slowStart).toBe(false)
    const before = ledbat.cwndBytes
    ackWindow(ledbat, 0)
    const grown = ledbat.cwndBytes - before
    expect(grown).toBeGreaterThan(GAIN_BYTES * 0.8)
    expect(grown).toBeLessThanOrEqual(GAIN_BYTES + 1)
  })

  it('shrinks the window when queuing delay is above target, in proportion to the excess', () => {
    const ledbat = new Ledbat({ packetBytes: MSS, initialCwndBytes: 40 * MSS })
    ledbat.onAck(MSS, 2 * TARGET_DELAY_US, 40 * MSS)
    const before = ledbat.cwndBytes
    ackWindow(ledbat, 1.5 * TARGET_DELAY_US)
    const mild = before - ledbat.cwndBytes
    const next = ledbat.cwndBytes
    ackWindow(ledbat, 2 * TARGET_DELAY_US)
    const strong = next - ledbat.cwndBytes
    expect(mild).toBeGreaterThan(0)
    expect(strong).toBeGreaterThan(mild)
  })

  it('does not grow a window the sender does not fill', () => {
    const ledbat = new Ledbat({ packetBytes: MSS, initialCwndBytes: 40 * MSS })
    ledbat.onAck(MSS, 0, 2 * MSS)
    expect(ledbat.cwndBytes).toBe(40 * MSS)
  })

  it('halves the window on loss and never goes below one packet', () => {
    const ledbat = new Ledbat({ packetBytes: MSS, initialCwndBytes: 16 * MSS })
    ledbat.onLoss()
    expect(ledbat.cwndBytes).toBe(8 * MSS)
    expect(ledbat.slowStart).toBe(false)
    for (let i = 0; i < 10; i++) ledbat.onLoss()
    expect(ledbat.cwndBytes).toBe(MSS)
  })

  it('restarts from one packet after a timeout, slow-starting up to half the old window', () => {
    const ledbat = new Ledbat({ packetBytes: MSS, initialCwndBytes: 16 * MSS })
    ledbat.onTimeout()
    expect(ledbat.cwndBytes).toBe(MSS)
    expect(ledbat.ssthreshBytes).toBe(8 * MSS)
    let rounds = 0
    while (ledbat.slowStart && rounds < 10) {
      ackWindow(ledbat, 0)
      rounds += 1
    }
    expect(rounds).toBe(3) // 1 -> 2 -> 4 -> 8 packets
    expect(ledbat.cwndBytes).toBeLessThanOrEqual(8 * MSS + GAIN_BYTES)
  })
})

describe('base delay history', () => {
  it('measures queuing delay against the lowest sample, whatever the clock offset', () => {
    const history = new DelayHistory()
    const offset = 0xfffff000 // the remote clock is far ahead: samples wrap around 2^32
    expect(history.add(offset + 5_000, 0)).toBe(0)
    for (let i = 0; i < 4; i++) history.add(offset + 25_000, 10 + i)
    expect(history.add(offset + 25_000, 20)).toBe(20_000)
  })

  it('forgets a base delay older than the history, so a route change is learned', () => {
    const history = new DelayHistory()
    history.add(1_000, 0)
    let delay = 0
    for (let minute = 1; minute <= 11; minute++) {
      for (let i = 0; i < 4; i++) delay = history.add(50_000, minute * 60_000 + i)
    }
    expect(history.baseUs).toBe(50_000)
    expect(delay).toBe(0)
  })
})

describe('round-trip time estimator', () => {
  it('starts at one second and never goes below the 500 ms minimum', () => {
    const rtt = new RttEstimator()
    expect(rtt.rtoMs).toBe(1000)
    for (let i = 0; i < 20; i++) rtt.sample(5)
    expect(rtt.rttMs).toBeCloseTo(5, 0)
    expect(rtt.rtoMs).toBe(MIN_RTO_MS)
  })

  it('follows RFC 6298: srtt + 4 * rttvar', () => {
    const rtt = new RttEstimator()
    rtt.sample(400)
    expect(rtt.rtoMs).toBe(400 + 4 * 200)
    rtt.sample(800)
    expect(rtt.rttMs).toBe(450)
    expect(rtt.rttVarMs).toBe(250)
  })

  it('doubles the timeout per timeout in a row and resets on progress', () => {
    const rtt = new RttEstimator()
    for (let i = 0; i < 10; i++) rtt.sample(5)
    rtt.onTimeout()
    expect(rtt.rtoMs).toBe(2 * MIN_RTO_MS)
    rtt.onTimeout()
    expect(rtt.rtoMs).toBe(4 * MIN_RTO_MS)
    rtt.onProgress()
    expect(rtt.rtoMs).toBe(MIN_RTO_MS)
  })
})
