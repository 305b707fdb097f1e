import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { DhtNode } from '../../src/bittorrent/dht/index.js'
import { UdpTrackerClient } from '../../src/bittorrent/tracker/index.js'
import { type UtpConnection, UtpSocket } from '../../src/bittorrent/utp/index.js'
import { udpTransport } from '../../src/net/index.js'
import { announceRequest, startUdpTracker } from '../support/tracker-servers.js'

describe('DHT, UDP tracker and uTP on one UDP port', () => {
  it('each gets its own datagrams through the uTP fallback', async () => {
    const tracker = await startUdpTracker('127.0.0.53', '::1')
    const shared = await udpTransport.bind({ host: '127.0.0.51', port: 0 })
    const utp = new UtpSocket({ socket: shared })
    const dht = new DhtNode({ socket: shared }, { receive: 'external', bootstrap: [], queryTimeoutMs: 1000 })
    const trackerClient = new UdpTrackerClient(
      { socket: shared },
      { receive: 'external', retransmitBaseMs: 1000 },
    )
    utp.onFallback((data, from) => {
      if (!dht.handleDatagram(data, from)) trackerClient.handleDatagram(data, from)
    })
    utp.listen()
    utp.events.on('connection', (conn: UtpConnection) => conn.pipe(conn))

    const otherSocket = await udpTransport.bind({ host: '127.0.0.52', port: 0 })
    const other = new DhtNode({ socket: otherSocket }, { bootstrap: [], queryTimeoutMs: 1000 })
    const utpSocket = await udpTransport.bind({ host: '127.0.0.54', port: 0 })
    const otherUtp = new UtpSocket({ socket: utpSocket })
    try {
      await dht.start()
      await other.start()
      const infoHash = randomBytes(20)
      await other.ping(shared.local)
      expect(dht.tableSize).toBe(1)
      await other.announce(infoHash, 7777)
      expect((await dht.getPeers(infoHash)).peers).toContainEqual({ host: '127.0.0.52', port: 7777 })

      const url = `udp://127.0.0.53:${tracker.port}/announce`
      const res = await trackerClient.announce(url, announceRequest(infoHash, 7778, { left: 0 }))
      expect(res.complete).toBe(1)

      const conn = await otherUtp.connect(shared.local)
      conn.write(Buffer.from('ping over utp'))
      const [echo] = await once(conn, 'data')
      expect(Buffer.from(echo as Buffer).toString()).toBe('ping over utp')
      conn.destroy()
    } finally {
      await dht.stop()
      await other.stop()
      trackerClient.close()
      await utp.close()
      await otherUtp.close()
      await utpSocket.close()
      await shared.close()
      await otherSocket.close()
      await tracker.stop()
    }
  })
})
