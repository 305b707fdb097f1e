import { describe, expect, it, vi } from 'vitest'
import { sleep } from '../../common/index.js'
import { type DatagramSocket, MemoryNetwork } from '../../net/index.js'
import { decodePacket, emptyPacket, encodePacket, PacketType } from './packet.js'
import { UtpSocket } from './socket.js'
import { connectPair, digestStream, nextConnection, utpPair, withPair, writeRandom } from './test-helpers.js'
import type { UtpError } from './types.js'

describe('UtpSocket over the memory network', () => {
  it('connects, moves data both ways and closes cleanly', async () => {
    const net = new MemoryNetwork({ seed: 1 })
    await withPair([net], async (pair) => {
      const { conn, remote } = await connectPair(pair.client, pair.server)
      const [up, down] = await Promise.all([
        Promise.all([writeRandom(conn, 300_000), digestStream(remote)]),
        Promise.all([writeRandom(remote, 200_000), digestStream(conn)]),
      ])
      expect(up[1].sha1).toBe(up[0])
      expect(up[1].bytes).toBe(300_000)
      expect(down[1].sha1).toBe(down[0])
      expect(conn.stats.bytesSent).toBe(300_000)
      expect(remote.stats.bytesReceived).toBe(300_000)
    })
  })
})

async function transferOver(net: MemoryNetwork, bytes: number, opts = {}) {
  const pair = await utpPair(net, opts)
  try {
    const { conn, remote } = await connectPair(pair.client, pair.server)
    const [sent, got] = await Promise.all([writeRandom(conn, bytes), digestStream(remote)])
    return { sent, got, sender: conn.stats, socket: pair.client.stats }
  } finally {
    await pair.close()
  }
}

describe('UtpSocket on a bad network', () => {
  it('delivers every byte across 8% loss', async () => {
    const r = await transferOver(new MemoryNetwork({ seed: 2, lossRate: 0.08, latencyMs: 2 }), 1_000_000)
    expect(r.got.sha1).toBe(r.sent)
    expect(r.sender.retransmits).toBeGreaterThan(0)
  })

  it('delivers every byte across duplication and jitter that reorders', async () => {
    const r = await transferOver(
      new MemoryNetwork({ seed: 3, duplicateRate: 0.1, latencyMs: 2, jitterMs: 8 }),
      2_000_000,
    )
    expect(r.got.sha1).toBe(r.sent)
  })

  it('delivers every byte through a 576-byte path MTU with packets sized to it', async () => {
    const r = await transferOver(new MemoryNetwork({ seed: 4, mtuBytes: 576, lossRate: 0.02 }), 1_000_000, {
      packetBytes: 548,
    })
    expect(r.got.sha1).toBe(r.sent)
  })
})

describe('UtpSocket sequence numbers', () => {
  it('keeps every byte in order across 16-bit sequence number wraparound', async () => {
    // 100-byte payloads: 7 MB is more than 65536 packets, so seq_nr wraps at least once on each side.
    const net = new MemoryNetwork({ seed: 5, lossRate: 0.01 })
    await withPair([net, { packetBytes: 120 }], async (pair) => {
      const { conn, remote } = await connectPair(pair.client, pair.server)
      const [sent, got] = await Promise.all([writeRandom(conn, 7_000_000), digestStream(remote)])
      expect(got.sha1).toBe(sent)
      expect(conn.stats.packetsSent).toBeGreaterThan(70_000)
    })
  }, 60_000)
})

/** Waits for `event` on `emitter` (rejecting on 'error' unless that is the event). */
function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string): Promise<T> {
  return new Promise((resolve, reject) => {
    emitter.once(event, resolve)
    if (event !== 'error') emitter.once('error', reject)
  })
}

/** A datagram socket that drops the sends `drop` selects (to lose chosen uTP packets). */
function dropping(socket: DatagramSocket, drop: (data: Uint8Array) => boolean): DatagramSocket {
  return {
    local: socket.local,
    stats: socket.stats,
    onMessage: (handler) => socket.onMessage(handler),
    close: () => socket.close(),
    send(data, to) {
      if (!drop(data)) socket.send(data, to)
    },
  }
}

describe('UtpSocket connection lifecycle', () => {
  it('ends the stream on both sides when the client ends it', async () => {
    await withPair([new MemoryNetwork({ seed: 6 })], async (pair) => {
      const { conn, remote } = await connectPair(pair.client, pair.server)
      conn.end(Buffer.from('bye'))
      conn.resume()
      expect((await digestStream(remote)).bytes).toBe(3)
      await Promise.all([once(conn, 'close'), once(remote, 'close')])
      expect(pair.client.connections.size).toBe(0)
      expect(pair.server.connections.size).toBe(0)
    })
  })

  it('ends the stream on both sides when the server ends it', async () => {
    await withPair([new MemoryNetwork({ seed: 7 })], async (pair) => {
      const { conn, remote } = await connectPair(pair.client, pair.server)
      remote.end(Buffer.from('done'))
      remote.resume()
      expect((await digestStream(conn)).bytes).toBe(4)
      await Promise.all([once(conn, 'close'), once(remote, 'close')])
    })
  })

  it('keeps the writable side open after the remote FIN with allowHalfOpen', async () => {
    await withPair([new MemoryNetwork({ seed: 8 }), { allowHalfOpen: true }], async (pair) => {
      const { conn, remote } = await connectPair(pair.client, pair.server)
      conn.end(Buffer.from('request'))
      expect((await digestStream(remote)).bytes).toBe(7)
      remote.end(Buffer.from('late reply'))
      expect((await digestStream(conn)).bytes).toBe(10)
    })
  })

  it('fails the remote stream with CONNECTION_RESET when one side is destroyed', async () => {
    await withPair([new MemoryNetwork({ seed: 9 })], async (pair) => {
      const { conn, remote } = await connectPair(pair.client, pair.server)
      remote.write('x')
      const err = once<UtpError>(conn, 'error')
      remote.destroy()
      expect((await err).code).toBe('CONNECTION_RESET')
    })
  })

  it('is reset when connecting to a socket that does not listen', async () => {
    const net = new MemoryNetwork({ seed: 10 })
    await withPair([net], async (pair) => {
      const closed = new UtpSocket({ socket: await net.bind({ host: '127.0.0.4' }) })
      await expect(pair.client.connect(closed.local)).rejects.toMatchObject({ code: 'CONNECTION_RESET' })
      expect(closed.stats.resetsSent).toBe(1)
      await closed.close()
    })
  })

  it('times out connecting to an address that never answers', async () => {
    const net = new MemoryNetwork({ seed: 11 })
    await withPair([net, { connectTimeoutMs: 300 }], async (pair) => {
      net.partition('127.0.0.3')
      await expect(pair.client.connect(pair.server.local)).rejects.toMatchObject({ code: 'CONNECT_TIMEOUT' })
      expect(pair.client.connections.size).toBe(0)
    })
  })

  it('gives up connecting when the signal aborts', async () => {
    const net = new MemoryNetwork({ seed: 12 })
    await withPair([net], async (pair) => {
      net.partition('127.0.0.3')
      const controller = new AbortController()
      const pending = pair.client.connect(pair.server.local, { signal: controller.signal })
      controller.abort(new Error('stop'))
      await expect(pending).rejects.toThrow('stop')
      expect(pair.client.connections.size).toBe(0)
    })
  })

  it('fails an established connection with TIMED_OUT when the remote vanishes', async () => {
    const net = new MemoryNetwork({ seed: 13 })
    await withPair([net, { maxTimeouts: 1 }], async (pair) => {
      const accepted = nextConnection(pair.server)
      const conn = await pair.client.connect(pair.server.local)
      await accepted
      net.partition('127.0.0.3')
      const err = once<UtpError>(conn, 'error')
      conn.write('anyone there?')
      expect((await err).code).toBe('TIMED_OUT')
      expect(conn.stats.timeouts).toBeGreaterThanOrEqual(1)
    })
  })

  it('drops a half-open connection whose SYN is never followed up', async () => {
    const net = new MemoryNetwork({ seed: 14 })
    await withPair([net, { idleTimeoutMs: 200 }], async (pair) => {
      const raw = await net.bind({ host: '127.0.0.5' })
      const syn = encodePacket({
        type: PacketType.SYN,
        connectionId: 500,
        timestampUs: 0,
        timestampDiffUs: 0,
        wndSize: 65536,
        seqNr: 1,
        ackNr: 0,
      })
      const answered = new Promise<Buffer>((resolve) => raw.onMessage((data) => resolve(data)))
      raw.send(syn, pair.server.local)
      raw.send(syn, pair.server.local) // a repeated SYN is answered again, not taken as a new connection
      const reply = emptyPacket()
      expect(decodePacket(await answered, reply)).toBeUndefined()
      expect(reply).toMatchObject({ type: PacketType.STATE, connectionId: 500, ackNr: 1 })
      expect(pair.server.connections.size).toBe(1)
      await sleep(500)
      expect(pair.server.connections.size).toBe(0)
      await raw.close()
    })
  })

  it('refuses connections beyond the limit', async () => {
    const net = new MemoryNetwork({ seed: 15 })
    await withPair([net, { maxConnections: 1 }], async (pair) => {
      await pair.client.connect(pair.server.local)
      await expect(pair.client.connect(pair.server.local)).rejects.toMatchObject({
        code: 'TOO_MANY_CONNECTIONS',
      })
    })
  })
})

describe('UtpSocket demultiplexing', () => {
  it('hands datagrams that are not uTP to the fallback handler', async () => {
    const net = new MemoryNetwork({ seed: 16 })
    await withPair([net], async (pair) => {
      const raw = await net.bind({ host: '127.0.0.6' })
      const got = new Promise<string>((resolve) => pair.server.onFallback((data) => resolve(data.toString())))
      raw.send(Buffer.from('d1:q4:ping1:t2:aa1:y1:qe'), pair.server.local)
      expect(await got).toBe('d1:q4:ping1:t2:aa1:y1:qe')
      expect(pair.server.stats.fallback).toBe(1)
      await raw.close()
    })
  })

  it('counts and drops malformed uTP packets, and resets packets of unknown connections', async () => {
    const net = new MemoryNetwork({ seed: 17 })
    await withPair([net], async (pair) => {
      const raw = await net.bind({ host: '127.0.0.7' })
      const replies: Buffer[] = []
      raw.onMessage((data) => replies.push(data))
      const data = encodePacket({
        type: PacketType.DATA,
        connectionId: 77,
        timestampUs: 0,
        timestampDiffUs: 0,
        wndSize: 0,
        seqNr: 9,
        ackNr: 0,
      })
      const malformed = Buffer.from(data)
      malformed[1] = 1 // a selective ACK extension that is not there
      raw.send(malformed, pair.server.local)
      raw.send(data, pair.server.local)
      await vi.waitFor(() => expect(replies).toHaveLength(1), { timeout: 5_000 })
      expect(pair.server.stats.malformed).toBe(1)
      const reply = emptyPacket()
      expect(decodePacket(replies[0]!, reply)).toBeUndefined()
      expect(reply).toMatchObject({ type: PacketType.RESET, connectionId: 77, ackNr: 9 })
      await raw.close()
    })
  })
})

describe('UtpSocket flow and congestion control', () => {
  it('shrinks the advertised window for a slow reader and makes write() report backpressure', async () => {
    await withPair(
      [
        new MemoryNetwork({ seed: 18 }),
        {
          recvBufferBytes: 64 * 1024,
          sendBufferBytes: 64 * 1024,
        },
      ],
      async (pair) => {
        const { conn, remote } = await connectPair(pair.client, pair.server)
        remote.pause()
        const chunk = Buffer.alloc(16 * 1024, 1)
        let writes = 0
        while (conn.write(chunk) && writes < 1000) writes += 1
        expect(writes).toBeLessThan(1000)
        await vi.waitFor(() => expect(conn.stats.peerWindowBytes).toBeLessThan(2000), { timeout: 5_000 })
        expect(remote.readableLength).toBeLessThanOrEqual(64 * 1024 + 1400)
        const all = digestStream(remote)
        remote.resume()
        conn.end()
        expect((await all).bytes).toBe((writes + 1) * chunk.length)
      },
    )
  })

  it('cuts the window once for a burst of losses within one round trip and repairs the burst', async () => {
    const net = new MemoryNetwork({ seed: 19, latencyMs: 5 })
    const a = await net.bind({ host: '127.0.0.8' })
    const b = await net.bind({ host: '127.0.0.9' })
    const dropped = new Set<number>()
    const lossy = dropping(a, (data) => {
      const p = emptyPacket()
      if (decodePacket(Buffer.from(data), p) !== undefined || p.type !== PacketType.DATA) return false
      // Lose three packets in a row, once each: they are in flight together.
      if (p.seqNr >= 40 && p.seqNr <= 42 && !dropped.has(p.seqNr)) {
        dropped.add(p.seqNr)
        return true
      }
      return false
    })
    const client = new UtpSocket({ socket: lossy })
    const server = new UtpSocket({ socket: b })
    server.listen()
    try {
      const { conn, remote } = await connectPair(client, server)
      const [sent, got] = await Promise.all([writeRandom(conn, 300_000), digestStream(remote)])
      expect(got.sha1).toBe(sent)
      expect(dropped.size).toBe(3)
      expect(conn.stats.losses).toBe(1)
      expect(conn.stats.retransmits).toBeGreaterThanOrEqual(3)
      expect(conn.stats.timeouts).toBe(0)
    } finally {
      await Promise.all([client.close(), server.close()])
      await Promise.all([a.close(), b.close()])
    }
  })

  it('grows the congestion window from its initial size on a clean link', async () => {
    await withPair([new MemoryNetwork({ seed: 20, latencyMs: 1 })], async (pair) => {
      const { conn, remote } = await connectPair(pair.client, pair.server)
      const initial = conn.stats.cwndBytes
      await Promise.all([writeRandom(conn, 1_000_000), digestStream(remote)])
      expect(conn.stats.cwndBytes).toBeGreaterThan(4 * initial)
      expect(conn.stats.rttMs).toBeGreaterThan(0)
    })
  })
})
