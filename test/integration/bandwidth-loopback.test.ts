// Rate limits on real loopback TCP sockets: a sender pumps as fast as the socket takes it through throttled
// streams for a bounded time, and the receiver measures the achieved rate. The band is generous (±30 %): this
// checks that limits are applied, not how precisely.
import { once } from 'node:events'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { BandwidthManager, throttle } from '../../src/bittorrent/bandwidth/index.js'

const MiB = 1024 * 1024
const RUN_MS = 3000
const CHUNK = Buffer.alloc(64 * 1024, 0x61)

interface Link {
  client: net.Socket
  server: net.Socket
}

const open: net.Server[] = []
const sockets: net.Socket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  for (const server of open.splice(0)) await new Promise((resolve) => server.close(resolve))
})

async function link(): Promise<Link> {
  const server = net.createServer()
  open.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  const accepted = once(server, 'connection') as Promise<[net.Socket]>
  const client = net.connect({ host: '127.0.0.1', port })
  await once(client, 'connect')
  const [serverSide] = await accepted
  sockets.push(client, serverSide)
  return { client, server: serverSide }
}

/** Writes into `stream` as fast as it accepts until `stop()`; resolves when stopped. */
function pump(stream: Duplex): { stop: () => void; done: Promise<void> } {
  let stopped = false
  const done = (async () => {
    while (!stopped && !stream.destroyed) {
      if (!stream.write(CHUNK)) await Promise.race([once(stream, 'drain'), once(stream, 'close')])
    }
  })()
  return {
    stop: () => {
      stopped = true
    },
    done,
  }
}

/** Bytes per second `stream` delivers, measured from its first byte for `ms`. */
async function measure(streams: Duplex[], ms: number): Promise<number> {
  let bytes = 0
  let firstAt: number | undefined
  for (const stream of streams) {
    stream.on('data', (chunk: Buffer) => {
      firstAt ??= performance.now()
      bytes += chunk.length
    })
  }
  const deadline = Date.now() + ms + 10_000
  while (firstAt === undefined && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20))
  const start = firstAt ?? performance.now()
  const startBytes = bytes
  await new Promise((resolve) => setTimeout(resolve, ms))
  return ((bytes - startBytes) * 1000) / (performance.now() - start)
}

describe('bandwidth limits on loopback TCP', () => {
  it('holds an upload limit of 2 MiB/s', async () => {
    const manager = new BandwidthManager()
    const up = manager.channel(2 * MiB)
    const { client, server } = await link()
    const sender = pump(throttle(client, { manager, write: [up] }))
    const rate = await measure([server], RUN_MS)
    sender.stop()
    manager.stop()
    expect(rate).toBeGreaterThan(2 * MiB * 0.7)
    expect(rate).toBeLessThan(2 * MiB * 1.3)
  })

  it('holds a download limit of 2 MiB/s by reading slower', async () => {
    const manager = new BandwidthManager()
    const down = manager.channel(2 * MiB)
    const { client, server } = await link()
    const receiver = throttle(server, { manager, read: [down] })
    const sender = pump(client)
    const rate = await measure([receiver], RUN_MS)
    sender.stop()
    manager.stop()
    expect(rate).toBeGreaterThan(2 * MiB * 0.7)
    expect(rate).toBeLessThan(2 * MiB * 1.3)
    // Backpressure reached the sender: its writes wait rather than piling up in memory.
    expect(client.writableLength).toBeLessThan(4 * MiB)
  })

  it('shares a session limit between two connections', async () => {
    const manager = new BandwidthManager()
    const session = manager.channel(2 * MiB)
    const a = await link()
    const b = await link()
    const senders = [a, b].map((l) =>
      pump(throttle(l.client, { manager, write: [manager.channel(0), session] })),
    )
    const rate = await measure([a.server, b.server], RUN_MS)
    for (const sender of senders) sender.stop()
    manager.stop()
    expect(rate).toBeGreaterThan(2 * MiB * 0.7)
    expect(rate).toBeLessThan(2 * MiB * 1.3)
  })

  it('does not throttle when the limits are 0', async () => {
    const manager = new BandwidthManager()
    const { client, server } = await link()
    const sender = pump(throttle(client, { manager, write: [manager.channel(0), manager.channel(0)] }))
    const receiver = throttle(server, { manager, read: [manager.channel(0)] })
    const rate = await measure([receiver], 1000)
    sender.stop()
    manager.stop()
    // Far above any limit used here: loopback moves hundreds of MB/s.
    expect(rate).toBeGreaterThan(8 * MiB)
  })
})
