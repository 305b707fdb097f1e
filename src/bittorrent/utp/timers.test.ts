import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { MemoryNetwork } from '../../net/index.js'
import { UtpSocket } from './socket.js'
import { connectPair } from './test-helpers.js'
import type { UtpError } from './types.js'

/** Lets queued immediates (datagram delivery, deferred ACKs) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
}

describe('uTP connection timers on a manual clock', () => {
  it('sends keepalives on a quiet connection and closes one whose remote went silent', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ seed: 21 })
    const a = await net.bind({ host: '127.0.0.2' })
    const b = await net.bind({ host: '127.0.0.3' })
    const client = new UtpSocket({ socket: a, clock }, { keepaliveMs: 29_000, idleTimeoutMs: 180_000 })
    const server = new UtpSocket({ socket: b, clock }, { keepaliveMs: 29_000, idleTimeoutMs: 180_000 })
    server.listen()
    try {
      const { conn, remote } = await connectPair(client, server)
      const before = b.stats.packetsReceived
      for (let i = 0; i < 12; i++) {
        clock.advance(10_000)
        await settle()
      }
      // Two minutes of silence: keepalives went both ways and both ends are still open.
      expect(b.stats.packetsReceived).toBeGreaterThan(before)
      expect(conn.state).toBe('connected')
      expect(remote.state).toBe('connected')

      const err = new Promise<UtpError>((resolve) => conn.once('error', resolve))
      remote.on('error', () => {})
      net.partition('127.0.0.3')
      for (let i = 0; i < 20; i++) {
        clock.advance(10_000)
        await settle()
      }
      expect((await err).code).toBe('TIMED_OUT')
    } finally {
      await Promise.all([client.close(), server.close()])
      await Promise.all([a.close(), b.close()])
    }
  })
})
