import { isIP } from 'node:net'
import { describe, expect, it, vi } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { type DatagramSocket, MemoryNetwork, type SocketAddress } from '../../net/index.js'
import { encodeCompactPeer } from './compact.js'
import type { AnnounceRequest } from './types.js'
import { UdpTrackerClient } from './udp.js'

const INFO_HASH = Buffer.alloc(20, 0xab)
const request: AnnounceRequest = {
  infoHash: INFO_HASH,
  peerId: Buffer.from('-TS0001-abcdefghijkl'),
  port: 6881,
  uploaded: 0,
  downloaded: 0,
  left: 1000,
  event: 'started',
  key: 0x1234,
}

interface FakeTracker {
  socket: DatagramSocket
  connects: number
  announces: Buffer[]
  /** Requests to ignore before answering (to force retransmissions). */
  drop: number
  peers: Array<{ host: string; port: number }>
  error?: string
}

/** A minimal BEP 15 tracker: enough to check what the client sends and how it handles replies. */
async function fakeTracker(net: MemoryNetwork, host: string): Promise<FakeTracker> {
  const socket = await net.bind({ host, port: 6969 })
  const state: FakeTracker = { socket, connects: 0, announces: [], drop: 0, peers: [] }
  const connectionId = Buffer.from('0102030405060708', 'hex')
  socket.onMessage((data, from) => {
    if (state.drop > 0) {
      state.drop -= 1
      return
    }
    const action = data.readUInt32BE(8)
    const tid = data.readUInt32BE(12)
    const header = (a: number) => {
      const b = Buffer.alloc(8)
      b.writeUInt32BE(a, 0)
      b.writeUInt32BE(tid, 4)
      return b
    }
    if (action === 0) {
      expect(data.readBigUInt64BE(0)).toBe(0x41727101980n)
      state.connects += 1
      socket.send(Buffer.concat([header(0), connectionId]), from)
    } else if (state.error !== undefined) {
      socket.send(Buffer.concat([header(3), Buffer.from(state.error)]), from)
    } else if (action === 1) {
      expect(data.subarray(0, 8)).toEqual(connectionId)
      state.announces.push(data)
      const counts = Buffer.alloc(12)
      counts.writeUInt32BE(900, 0)
      counts.writeUInt32BE(3, 4)
      counts.writeUInt32BE(5, 8)
      socket.send(Buffer.concat([header(1), counts, ...state.peers.map((p) => encodeCompactPeer(p)!)]), from)
    } else if (action === 2) {
      const n = (data.length - 16) / 20
      const body = Buffer.alloc(12 * n)
      for (let i = 0; i < n; i++) body.writeUInt32BE(i + 1, i * 12)
      socket.send(Buffer.concat([header(2), body]), from)
    }
  })
  return state
}

/**
 * A socket that, like a circuit, takes host names and resolves them at its far end (`names`): what the client
 * gets back comes from the resolved address. Records every destination it was given.
 */
async function farEndResolvingSocket(
  net: MemoryNetwork,
  host: string,
  names: Record<string, string>,
): Promise<{ socket: DatagramSocket; sentTo: SocketAddress[] }> {
  const socket = await net.bind({ host })
  const sentTo: SocketAddress[] = []
  const send = socket.send.bind(socket)
  socket.send = (data, to) => {
    sentTo.push(to)
    const resolved = isIP(to.host) === 0 ? names[to.host] : to.host
    // a name the far end cannot resolve goes nowhere, as an exit drops it
    if (resolved !== undefined) send(data, { host: resolved, port: to.port })
  }
  return { socket, sentTo }
}

describe('UdpTrackerClient', () => {
  it('connects, announces and parses IPv4 peers', async () => {
    const net = new MemoryNetwork()
    const tracker = await fakeTracker(net, '10.0.0.1')
    tracker.peers = [
      { host: '10.0.0.7', port: 51413 },
      { host: '10.0.0.8', port: 6881 },
    ]
    const client = new UdpTrackerClient({ socket: await net.bind({ host: '10.0.0.2' }) })
    const res = await client.announce('udp://10.0.0.1:6969/announce', request)
    expect(res).toEqual({ intervalSec: 900, incomplete: 3, complete: 5, peers: tracker.peers })
    const sent = tracker.announces[0]!
    expect(sent.subarray(16, 36)).toEqual(INFO_HASH)
    expect(sent.readUInt32BE(80)).toBe(2) // started
    expect(sent.readUInt32BE(88)).toBe(0x1234)
    expect(sent.readInt32BE(92)).toBe(-1)
    expect(sent.readUInt16BE(96)).toBe(6881)
    // BEP 41: "/announce" as URL data, then end of options.
    expect(sent.subarray(98)).toEqual(
      Buffer.concat([Buffer.from([2, 9]), Buffer.from('/announce'), Buffer.from([0])]),
    )
    client.close()
  })

  it('parses 18-byte peers from an IPv6 tracker', async () => {
    const net = new MemoryNetwork()
    const tracker = await fakeTracker(net, 'fd00::1')
    tracker.peers = [{ host: 'fd00::9', port: 7000 }]
    const client = new UdpTrackerClient({ socket: await net.bind({ host: 'fd00::2' }) })
    const res = await client.announce('udp://[fd00::1]:6969', request)
    expect(res.peers).toEqual([{ host: 'fd00::9', port: 7000 }])
    client.close()
  })

  it('reuses a connection id for a minute, then connects again', async () => {
    const clock = new ManualClock()
    const net = new MemoryNetwork()
    const tracker = await fakeTracker(net, '10.0.0.1')
    const client = new UdpTrackerClient({ socket: await net.bind({ host: '10.0.0.2' }), clock })
    await client.announce('udp://10.0.0.1:6969', request)
    clock.advance(30_000)
    await client.announce('udp://10.0.0.1:6969', request)
    expect(tracker.connects).toBe(1)
    clock.advance(31_000)
    await client.announce('udp://10.0.0.1:6969', request)
    expect(tracker.connects).toBe(2)
    expect(tracker.announces).toHaveLength(3)
    client.close()
  })

  it('connects again when a restarted tracker refuses a cached connection id', async () => {
    const net = new MemoryNetwork()
    const tracker = await fakeTracker(net, '10.0.0.1')
    const client = new UdpTrackerClient({ socket: await net.bind({ host: '10.0.0.2' }) })
    await client.announce('udp://10.0.0.1:6969', request)
    tracker.error = 'connection id mismatch'
    const second = client.announce('udp://10.0.0.1:6969', request)
    await expect(second).rejects.toMatchObject({ code: 'TRACKER_FAILURE' })
    expect(tracker.connects).toBe(2)
    client.close()
  })

  it('retransmits lost requests and succeeds', async () => {
    const net = new MemoryNetwork()
    const tracker = await fakeTracker(net, '10.0.0.1')
    tracker.drop = 3
    const client = new UdpTrackerClient(
      { socket: await net.bind({ host: '10.0.0.2' }) },
      { retransmitBaseMs: 5 },
    )
    await client.announce('udp://10.0.0.1:6969', request)
    expect(client.stats.retransmits).toBe(3)
    client.close()
  })

  it('gives up with TIMEOUT after the configured retransmissions', async () => {
    const net = new MemoryNetwork()
    const tracker = await fakeTracker(net, '10.0.0.1')
    tracker.drop = 1000
    const client = new UdpTrackerClient(
      { socket: await net.bind({ host: '10.0.0.2' }) },
      { retransmitBaseMs: 2, maxRetransmits: 3 },
    )
    await expect(client.announce('udp://10.0.0.1:6969', request)).rejects.toMatchObject({ code: 'TIMEOUT' })
    expect(client.stats.requestsSent).toBe(4)
    client.close()
  })

  it('reports the error action as TRACKER_FAILURE with the reason', async () => {
    const net = new MemoryNetwork()
    const tracker = await fakeTracker(net, '10.0.0.1')
    tracker.error = 'torrent not registered'
    const client = new UdpTrackerClient({ socket: await net.bind({ host: '10.0.0.2' }) })
    await expect(client.announce('udp://10.0.0.1:6969', request)).rejects.toMatchObject({
      code: 'TRACKER_FAILURE',
      details: { reason: 'torrent not registered' },
    })
    client.close()
  })

  it('scrapes several info hashes', async () => {
    const net = new MemoryNetwork()
    await fakeTracker(net, '10.0.0.1')
    const client = new UdpTrackerClient({ socket: await net.bind({ host: '10.0.0.2' }) })
    const res = await client.scrape('udp://10.0.0.1:6969', [INFO_HASH, Buffer.alloc(20, 1)])
    expect(res.get(INFO_HASH.toString('hex'))).toEqual({ complete: 1, downloaded: 0, incomplete: 0 })
    expect(res.get('01'.repeat(20))?.complete).toBe(2)
    client.close()
  })

  it('ignores replies from the wrong address and with unknown transaction ids', async () => {
    const net = new MemoryNetwork()
    await fakeTracker(net, '10.0.0.1')
    const socket = await net.bind({ host: '10.0.0.2' })
    const client = new UdpTrackerClient({ socket }, { receive: 'external' })
    socket.onMessage((data, from) => client.handleDatagram(data, from))
    const spoof = Buffer.alloc(16)
    expect(client.handleDatagram(spoof, { host: '10.0.0.66', port: 1 })).toBe(false)
    const res = await client.announce('udp://10.0.0.1:6969', request)
    expect(res.intervalSec).toBe(900)
    client.close()
  })

  it('rejects a malformed announce reply with MALFORMED_RESPONSE', async () => {
    const net = new MemoryNetwork()
    const server = await net.bind({ host: '10.0.0.1', port: 6969 })
    server.onMessage((data, from) => {
      const reply = Buffer.alloc(data.readUInt32BE(8) === 0 ? 16 : 23)
      reply.writeUInt32BE(data.readUInt32BE(8), 0)
      reply.writeUInt32BE(data.readUInt32BE(12), 4)
      server.send(reply, from)
    })
    const client = new UdpTrackerClient({ socket: await net.bind({ host: '10.0.0.2' }) })
    await expect(client.announce('udp://10.0.0.1:6969', request)).rejects.toMatchObject({
      code: 'MALFORMED_RESPONSE',
    })
    client.close()
  })

  it('rejects bad URLs and requests before sending anything', async () => {
    const net = new MemoryNetwork()
    const client = new UdpTrackerClient({ socket: await net.bind({ host: '10.0.0.2' }) })
    await expect(client.announce('http://x/announce', request)).rejects.toMatchObject({ code: 'INVALID_URL' })
    await expect(client.announce('udp://10.0.0.1', request)).rejects.toMatchObject({ code: 'INVALID_URL' })
    await expect(
      client.announce('udp://10.0.0.1:1', { ...request, infoHash: Buffer.alloc(3) }),
    ).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    client.close()
  })

  it('aborts a pending request when the signal aborts', async () => {
    const net = new MemoryNetwork()
    const tracker = await fakeTracker(net, '10.0.0.1')
    tracker.drop = 1000
    const client = new UdpTrackerClient({ socket: await net.bind({ host: '10.0.0.2' }) })
    const controller = new AbortController()
    const pending = client.announce('udp://10.0.0.1:6969', request, { signal: controller.signal })
    controller.abort()
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' })
    client.close()
  })

  describe("with hostNames 'remote' (a circuit socket whose exit resolves names)", () => {
    it('sends to the host name, never looks it up, and takes the reply from the resolved address', async () => {
      const net = new MemoryNetwork()
      const tracker = await fakeTracker(net, '10.0.0.1')
      tracker.peers = [{ host: '10.0.0.7', port: 51413 }]
      const { socket, sentTo } = await farEndResolvingSocket(net, '10.0.0.2', {
        'tracker.example': '10.0.0.1',
      })
      const lookups: string[] = []
      const client = new UdpTrackerClient(
        {
          socket,
          lookup: async (host) => {
            lookups.push(host)
            return ['10.0.0.1']
          },
        },
        { hostNames: 'remote' },
      )
      const res = await client.announce('udp://Tracker.Example:6969/announce', request)
      expect(res.peers).toEqual(tracker.peers)
      const scraped = await client.scrape('udp://tracker.example:6969/announce', [INFO_HASH])
      expect(scraped.get(INFO_HASH.toString('hex'))?.complete).toBe(1)
      expect(lookups).toEqual([])
      expect(sentTo.map((a) => a.host)).toEqual(Array(sentTo.length).fill('tracker.example'))
      // the connection id is kept per name: one connect for both requests
      expect(tracker.connects).toBe(1)
      client.close()
    })

    it('parses 18-byte peers when the name resolved to an IPv6 tracker', async () => {
      const net = new MemoryNetwork()
      const tracker = await fakeTracker(net, 'fd00::1')
      tracker.peers = [{ host: 'fd00::9', port: 7000 }]
      const { socket } = await farEndResolvingSocket(net, 'fd00::2', { 'tracker.example': 'fd00::1' })
      const client = new UdpTrackerClient({ socket }, { hostNames: 'remote' })
      const res = await client.announce('udp://tracker.example:6969', request)
      expect(res.peers).toEqual([{ host: 'fd00::9', port: 7000 }])
      client.close()
    })

    it('matches replies to a name by transaction id; IP-literal trackers still need the right source', async () => {
      const net = new MemoryNetwork()
      await fakeTracker(net, '10.0.0.1')
      const { socket } = await farEndResolvingSocket(net, '10.0.0.2', { 'tracker.example': '10.0.0.1' })
      const client = new UdpTrackerClient({ socket }, { receive: 'external', hostNames: 'remote' })
      socket.onMessage((data, from) => client.handleDatagram(data, from))
      // an unknown transaction id is not ours, whatever its source
      expect(client.handleDatagram(Buffer.alloc(16), { host: '10.0.0.1', port: 6969 })).toBe(false)
      expect((await client.announce('udp://tracker.example:6969', request)).intervalSec).toBe(900)
      expect((await client.announce('udp://10.0.0.1:6969', request)).intervalSec).toBe(900)
      // a reply to an IP-literal request from another address is dropped: catch the next connect and answer
      // it from elsewhere
      const send = socket.send
      let seen: Buffer | undefined
      socket.send = (data, to) => {
        if (to.host === '10.0.0.9') seen = Buffer.from(data)
        else send(data, to)
      }
      const pending = client.announce('udp://10.0.0.9:6969', request, { signal: AbortSignal.timeout(5_000) })
      await vi.waitFor(() => expect(seen).toBeDefined())
      const reply = Buffer.alloc(16)
      reply.writeUInt32BE(0, 0)
      reply.writeUInt32BE(seen!.readUInt32BE(12), 4)
      expect(client.handleDatagram(reply, { host: '10.0.0.66', port: 6969 })).toBe(false)
      expect(client.stats.dropped).toBe(1)
      client.close()
      await expect(pending).rejects.toMatchObject({ code: 'ABORTED' })
    })

    it('fails a name the far end cannot resolve with TIMEOUT saying so; other trackers are unaffected', async () => {
      const net = new MemoryNetwork()
      await fakeTracker(net, '10.0.0.1')
      const { socket } = await farEndResolvingSocket(net, '10.0.0.2', { 'tracker.example': '10.0.0.1' })
      const client = new UdpTrackerClient(
        { socket },
        { hostNames: 'remote', retransmitBaseMs: 5, maxRetransmits: 2 },
      )
      const [bad, good] = await Promise.allSettled([
        client.announce('udp://no-such-name.invalid:6969', request),
        client.announce('udp://tracker.example:6969', request),
      ])
      expect(bad).toMatchObject({
        status: 'rejected',
        reason: { code: 'TIMEOUT', details: { tracker: 'no-such-name.invalid|6969' } },
      })
      expect(String((bad as PromiseRejectedResult).reason.details.reason)).toMatch(/resolve/)
      expect(good).toMatchObject({ status: 'fulfilled', value: { intervalSec: 900 } })
      client.close()
    })
  })
})
