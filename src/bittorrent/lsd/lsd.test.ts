import { describe, expect, it } from 'vitest'
import { type DatagramSocket, MemoryNetwork, type SocketAddress } from '../../net/index.js'
import { LocalServiceDiscovery } from './lsd.js'
import { decodeLsdAnnounce, encodeLsdAnnounce } from './message.js'
import type { LsdPeer } from './types.js'

const GROUP: SocketAddress = { host: '10.255.0.1', port: 6771 }
const HASH_A = Buffer.alloc(20, 0xaa)
const HASH_B = Buffer.alloc(20, 0xbb)

/**
 * The in-memory network has no multicast: a datagram sent to the group goes to every member, from the sender's own
 * address, as a real group would deliver it.
 */
function memberOf(
  socket: DatagramSocket,
  members: DatagramSocket[],
): Pick<DatagramSocket, 'send' | 'onMessage'> {
  members.push(socket)
  return {
    send: (data, to) => {
      if (to.host !== GROUP.host || to.port !== GROUP.port) return socket.send(data, to)
      for (const member of members) socket.send(data, member.local)
    },
    onMessage: (handler) => socket.onMessage(handler),
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('LocalServiceDiscovery', () => {
  it('finds a peer on the group that announces a torrent we have, and ignores our own announces', async () => {
    const net = new MemoryNetwork()
    const members: DatagramSocket[] = []
    const a = new LocalServiceDiscovery(
      { socket: memberOf(await net.bind({ host: '10.0.0.1', port: 6771 }), members) },
      { port: 7001, group: GROUP, publicNetwork: true },
    )
    const b = new LocalServiceDiscovery(
      { socket: memberOf(await net.bind({ host: '10.0.0.2', port: 6771 }), members) },
      { port: 7002, group: GROUP, publicNetwork: true },
    )
    const seenByA: LsdPeer[] = []
    const seenByB: LsdPeer[] = []
    a.events.on('peer', (peer) => seenByA.push(peer))
    b.events.on('peer', (peer) => seenByB.push(peer))
    a.add(HASH_A)
    b.add(HASH_A)
    b.add(HASH_B)
    await a.start()
    await b.start()
    await tick()
    expect(seenByA).toEqual([{ infoHash: HASH_A.toString('hex'), host: '10.0.0.2', port: 7002 }])
    expect(seenByB).toEqual([{ infoHash: HASH_A.toString('hex'), host: '10.0.0.1', port: 7001 }])
    await a.stop()
    await b.stop()
  })

  it('stays silent when the public network is off', async () => {
    const net = new MemoryNetwork()
    const socket = await net.bind({ host: '10.0.0.1', port: 6771 })
    const lsd = new LocalServiceDiscovery({ socket }, { port: 7001, group: GROUP, publicNetwork: false })
    lsd.add(HASH_A)
    await lsd.start()
    lsd.announceAll()
    expect(lsd.enabled).toBe(false)
    expect(socket.stats.packetsSent).toBe(0)
    await lsd.stop()
  })

  it('drops malformed messages and rate-limits floods', async () => {
    const net = new MemoryNetwork()
    const socket = await net.bind({ host: '10.0.0.1', port: 6771 })
    const lsd = new LocalServiceDiscovery(
      { socket },
      { port: 7001, group: GROUP, publicNetwork: true, maxAnnouncesPerMinPerAddress: 3 },
    )
    const peers: LsdPeer[] = []
    lsd.events.on('peer', (peer) => peers.push(peer))
    lsd.add(HASH_A)
    await lsd.start()
    const from = { host: '10.0.0.9', port: 6771 }
    for (const junk of [
      'GET / HTTP/1.1\r\n\r\n',
      'BT-SEARCH * HTTP/1.1\r\nPort: 99999\r\nInfohash: aa\r\n\r\n',
      '',
    ]) {
      expect(lsd.handleDatagram(Buffer.from(junk), from)).toBe(false)
    }
    const good = encodeLsdAnnounce(GROUP, { port: 5000, infoHashes: [HASH_A.toString('hex')] })
    for (let i = 0; i < 10; i++) lsd.handleDatagram(good, from)
    expect(peers).toHaveLength(3)
    expect(lsd.stats).toMatchObject({ invalid: 3, rateLimited: 7 })
    await lsd.stop()
  })

  it('round-trips BT-SEARCH messages with several info hashes, case-insensitively', () => {
    const message = encodeLsdAnnounce(
      { host: 'ff15::efc0:988f', port: 6771 },
      {
        port: 6881,
        infoHashes: [HASH_A.toString('hex'), HASH_B.toString('hex')],
        cookie: 'c1',
      },
    )
    expect(message.toString('latin1')).toContain('Host: [ff15::efc0:988f]:6771\r\n')
    expect(decodeLsdAnnounce(message)).toEqual({
      port: 6881,
      infoHashes: [HASH_A.toString('hex'), HASH_B.toString('hex')],
      cookie: 'c1',
    })
    const upper = Buffer.from(`BT-SEARCH * HTTP/1.1\r\nPORT: 1\r\nINFOHASH: ${'AB'.repeat(20)}\r\n\r\n\r\n`)
    expect(decodeLsdAnnounce(upper)).toEqual({ port: 1, infoHashes: ['ab'.repeat(20)] })
  })
})
