import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { type AnnounceRequest, UdpTrackerClient } from '../../src/bittorrent/tracker/index.js'
import { type DatagramSocket, udpTransport } from '../../src/net/index.js'
import { announceRequest, type RunningUdpTracker, startUdpTracker } from '../support/tracker-servers.js'

function request(infoHash: Buffer, port: number, left: number): AnnounceRequest {
  return announceRequest(infoHash, port, { left, key: 7 })
}

describe('UDP trackers against the bittorrent-tracker server', () => {
  let tracker: RunningUdpTracker | undefined
  const sockets: DatagramSocket[] = []
  afterEach(async () => {
    await tracker?.stop()
    tracker = undefined
    for (const socket of sockets.splice(0)) await socket.close()
  })

  async function client(host: string): Promise<UdpTrackerClient> {
    const socket = await udpTransport.bind({ host, port: 0 })
    sockets.push(socket)
    return new UdpTrackerClient({ socket }, { retransmitBaseMs: 1000, maxRetransmits: 3 })
  }

  it('announces over IPv4 and IPv6 and scrapes', async () => {
    tracker = await startUdpTracker('127.0.0.34', '::1')
    const infoHash = randomBytes(20)
    const v4url = `udp://127.0.0.34:${tracker.port}/announce`
    const seeder = await client('127.0.0.35')
    const leecher = await client('127.0.0.36')
    await seeder.announce(v4url, request(infoHash, 7101, 0))
    const res = await leecher.announce(v4url, request(infoHash, 7102, 500))
    expect(res.peers).toContainEqual({ host: '127.0.0.35', port: 7101 })
    expect(res.complete).toBe(1)
    expect(res.intervalSec).toBe(60)

    const v6 = await client('::1')
    const res6 = await v6.announce(`udp://[::1]:${tracker.port}`, request(infoHash, 7103, 500))
    expect(res6.complete).toBe(1)
    expect(res6.incomplete).toBe(2)

    const scrape = await leecher.scrape(v4url, [infoHash])
    expect(scrape.get(infoHash.toString('hex'))).toMatchObject({ complete: 1, incomplete: 2 })
    for (const c of [seeder, leecher, v6]) c.close()
  })
})
