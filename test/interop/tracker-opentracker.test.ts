import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type AnnounceRequest,
  HttpTrackerClient,
  TrackerManager,
  UdpTrackerClient,
} from '../../src/bittorrent/tracker/index.js'
import { udpTransport } from '../../src/net/index.js'
import {
  announceRequest,
  opentrackerAvailable,
  type RunningTracker,
  startOpentracker,
} from '../support/tracker-servers.js'

function request(infoHash: Buffer, port: number, event: AnnounceRequest['event']): AnnounceRequest {
  // Random binary peer ids with bytes that need percent-encoding: the tracker must see the same 20 bytes.
  return announceRequest(infoHash, port, { event, numWant: 50 })
}

describe.skipIf(!opentrackerAvailable())('HTTP trackers against opentracker', () => {
  let tracker: RunningTracker | undefined
  afterEach(async () => {
    await tracker?.stop()
    tracker = undefined
  })

  it('announces, gets the other peer back, scrapes and stops', async () => {
    const infoHash = randomBytes(20)
    tracker = await startOpentracker('127.0.0.31', [infoHash])
    const client = new HttpTrackerClient()
    const url = `${tracker.url}/announce`
    const first = await client.announce(url, request(infoHash, 7001, 'started'))
    expect(first.intervalSec).toBeGreaterThan(0)
    const second = await client.announce(url, { ...request(infoHash, 7002, 'completed'), left: 0 })
    // Both announces come from 127.0.0.1 (the client's source address); opentracker leaves the asking peer out.
    expect(second.peers).toContainEqual({ host: '127.0.0.1', port: 7001 })
    expect(second.complete).toBe(1)
    expect(second.incomplete).toBe(1)
    const scrape = await client.scrape(url, [infoHash, randomBytes(20)])
    expect(scrape.get(infoHash.toString('hex'))).toMatchObject({ complete: 1, incomplete: 1 })
    await client.announce(url, request(infoHash, 7001, 'stopped'))
    const after = await client.scrape(url, [infoHash])
    expect(after.get(infoHash.toString('hex'))?.incomplete).toBe(0)
  })

  it('announces and scrapes over UDP (the Debian build serves whitelisted torrents only)', async () => {
    const infoHash = randomBytes(20)
    tracker = await startOpentracker('127.0.0.37', [infoHash])
    const socket = await udpTransport.bind({ host: '127.0.0.38', port: 0 })
    const client = new UdpTrackerClient({ socket }, { retransmitBaseMs: 1000, maxRetransmits: 3 })
    const url = tracker.url.replace('http:', 'udp:')
    await client.announce(url, request(infoHash, 7011, 'started'))
    const res = await client.announce(url, request(infoHash, 7012, 'started'))
    expect(res.peers).toContainEqual({ host: '127.0.0.38', port: 7011 })
    expect(res.incomplete).toBe(2)
    const scrape = await client.scrape(url, [infoHash])
    expect(scrape.get(infoHash.toString('hex'))?.incomplete).toBe(2)
    // A torrent that is not whitelisted is refused rather than answered with peers.
    await expect(client.announce(url, request(randomBytes(20), 7013, 'started'))).rejects.toMatchObject({
      code: expect.stringMatching(/^(TRACKER_FAILURE|MALFORMED_RESPONSE)$/),
    })
    client.close()
    await socket.close()
  })

  it('moves past a dead tracker to opentracker and reports per-tracker status', async () => {
    const infoHash = randomBytes(20)
    tracker = await startOpentracker('127.0.0.32', [infoHash])
    const manager = new TrackerManager(
      { clients: { http: new HttpTrackerClient({}, { timeoutMs: 2000 }) }, random: () => 0.999 },
      {
        tiers: [['http://127.0.0.33:1/announce', `${tracker.url}/announce`]],
        infoHash,
        peerId: randomBytes(20),
        port: 7003,
        stats: () => ({ uploaded: 0, downloaded: 0, left: 10 }),
      },
    )
    await manager.start()
    expect(manager.tiers[0]![0]).toBe(`${tracker.url}/announce`)
    const status = manager.status
    expect(status[0]).toMatchObject({ url: `${tracker.url}/announce`, status: 'Working' })
    expect(status[1]!.status).toBe('Not working')
    expect(status[0]!.nextAnnounceMs).toBeGreaterThan(Date.now())
    await manager.stop()
  })
})
