import { describe, expect, it } from 'vitest'
import { ManualClock } from '../common/clock.js'
import { MemoryNetwork } from './memory.js'
import type { SocketAddress } from './types.js'

function collect(socket: { onMessage(h: (d: Buffer, f: SocketAddress) => void): unknown }) {
  const got: Array<{ data: string; from: SocketAddress }> = []
  socket.onMessage((data, from) => got.push({ data: data.toString(), from }))
  return got
}

describe('MemoryNetwork', () => {
  it('delivers on a later tick, never during send', async () => {
    const net = new MemoryNetwork()
    const a = await net.bind({ host: '10.0.0.1' })
    const b = await net.bind({ host: '10.0.0.2', port: 7000 })
    const got = collect(b)
    a.send(Buffer.from('hello'), b.local)
    expect(got).toEqual([])
    await new Promise((r) => setImmediate(r))
    expect(got).toEqual([{ data: 'hello', from: a.local }])
    expect(a.stats.bytesSent).toBe(5)
    expect(b.stats.packetsReceived).toBe(1)
  })

  it('is one LAN: 255.255.255.255 reaches every other socket on that port, only from broadcast sockets', async () => {
    const net = new MemoryNetwork()
    const plain = await net.bind({ host: '10.0.0.1' })
    const sender = await net.bind({ host: '10.0.0.2', broadcast: true })
    const b = await net.bind({ host: '10.0.0.3', port: 9000 })
    const c = await net.bind({ host: '10.0.0.4', port: 9000 })
    const other = await net.bind({ host: '10.0.0.5', port: 9001 })
    const [gotB, gotC, gotOther] = [collect(b), collect(c), collect(other)]
    plain.send(Buffer.from('no'), { host: '255.255.255.255', port: 9000 })
    expect(plain.stats.sendErrors).toBe(1)
    expect(plain.stats.packetsSent).toBe(0)
    sender.send(Buffer.from('hi'), { host: '255.255.255.255', port: 9000 })
    await new Promise((r) => setImmediate(r))
    expect(gotB).toEqual([{ data: 'hi', from: sender.local }])
    expect(gotC).toEqual([{ data: 'hi', from: sender.local }])
    expect(gotOther).toEqual([])
    expect(net.stats.delivered).toBe(2)
  })

  it('drops the configured share of datagrams, reproducibly for a seed', async () => {
    const run = async (seed: number) => {
      const net = new MemoryNetwork({ lossRate: 0.3, seed })
      const a = await net.bind()
      const b = await net.bind()
      for (let i = 0; i < 1000; i++) a.send(Buffer.from([i & 0xff]), b.local)
      await new Promise((r) => setImmediate(r))
      return net.stats
    }
    const first = await run(42)
    expect(first.dropped).toBeGreaterThan(230)
    expect(first.dropped).toBeLessThan(370)
    expect(first.delivered + first.dropped).toBe(1000)
    expect(await run(42)).toEqual(first)
  })

  it('applies latency through the injected clock and counts undeliverable datagrams', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork({ clock, latencyMs: 50 })
    const a = await net.bind()
    const b = await net.bind()
    const got = collect(b)
    a.send(Buffer.from('x'), b.local)
    a.send(Buffer.from('y'), { host: '10.9.9.9', port: 1 })
    clock.advance(49)
    expect(got.length).toBe(0)
    clock.advance(1)
    expect(got.length).toBe(1)
    expect(net.stats.undeliverable).toBe(1)
  })

  it('refuses to bind an address in use and frees it on close', async () => {
    const net = new MemoryNetwork()
    const a = await net.bind({ host: '10.0.0.1', port: 5 })
    await expect(net.bind({ host: '10.0.0.1', port: 5 })).rejects.toThrow('address in use')
    await a.close()
    await expect(net.bind({ host: '10.0.0.1', port: 5 })).resolves.toBeDefined()
  })
})
