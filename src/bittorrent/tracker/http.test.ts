import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { encode } from '../../bencode/index.js'
import { encodeCompactPeer } from './compact.js'
import {
  HttpTrackerClient,
  parseHttpAnnounce,
  parseHttpScrape,
  percentEncodeBytes,
  scrapeUrlOf,
} from './http.js'
import type { AnnounceRequest } from './types.js'

const INFO_HASH = Buffer.from('00ff20417e2d2e5f7e80' + 'a'.repeat(20), 'hex')
const request: AnnounceRequest = {
  infoHash: INFO_HASH,
  peerId: Buffer.from('-TS0001-abcdefghijkl'),
  port: 6881,
  uploaded: 10,
  downloaded: 20,
  left: 30,
  event: 'completed',
  numWant: 50,
  key: 0xdeadbeef,
}

let server: Server | undefined
afterEach(() => {
  server?.close()
  server = undefined
})

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler)
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('HTTP tracker URLs', () => {
  it('percent-encodes every byte that is not unreserved', () => {
    expect(percentEncodeBytes(Buffer.from([0x00, 0xff, 0x20, 0x41, 0x7e, 0x2d, 0x2e, 0x5f]))).toBe(
      '%00%FF%20A~-._',
    )
  })

  it('derives the scrape URL only from an announce path', () => {
    expect(scrapeUrlOf('http://t.example/announce')).toBe('http://t.example/scrape')
    expect(scrapeUrlOf('http://t.example/x/announce.php?passkey=1')).toBe(
      'http://t.example/x/scrape.php?passkey=1',
    )
    expect(scrapeUrlOf('http://t.example/a')).toBeUndefined()
    expect(scrapeUrlOf('http://t.example/announce/x')).toBeUndefined()
  })
})

describe('HttpTrackerClient', () => {
  it('sends the BEP 3 parameters and parses compact IPv4 and IPv6 peers', async () => {
    let query = ''
    const base = await serve((req, res) => {
      query = req.url ?? ''
      res.end(
        encode({
          interval: 1200,
          'min interval': 60,
          complete: 4,
          incomplete: 2,
          'tracker id': 'tid-1',
          'warning message': 'be nice',
          peers: encodeCompactPeer({ host: '127.0.0.5', port: 7001 })!,
          peers6: encodeCompactPeer({ host: '::1', port: 7002 })!,
        }),
      )
    })
    const client = new HttpTrackerClient()
    const res = await client.announce(`${base}/announce?passkey=abc`, request)
    expect(res).toEqual({
      intervalSec: 1200,
      minIntervalSec: 60,
      complete: 4,
      incomplete: 2,
      trackerId: 'tid-1',
      warning: 'be nice',
      peers: [
        { host: '127.0.0.5', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    })
    expect(query).toContain('/announce?passkey=abc&info_hash=%00%FF%20A~-._~%80' + '%AA'.repeat(10))
    expect(query).toContain(
      '&peer_id=-TS0001-abcdefghijkl&port=6881&uploaded=10&downloaded=20&left=30&compact=1',
    )
    expect(query).toContain('&event=completed&numwant=50&key=deadbeef')
  })

  it('parses dictionary peers with peer ids', () => {
    const res = parseHttpAnnounce(
      encode({
        interval: 30,
        peers: [
          { ip: '10.1.2.3', port: 1000, 'peer id': Buffer.alloc(20, 7) },
          { ip: '2001:db8::1', port: 1001 },
          { ip: 'evil host', port: 1 },
          { ip: '10.1.2.4', port: 0 },
        ],
      }),
    )
    expect(res.peers).toEqual([
      { host: '10.1.2.3', port: 1000, peerId: Buffer.alloc(20, 7) },
      { host: '2001:db8::1', port: 1001 },
    ])
  })

  it('reports a failure reason as TRACKER_FAILURE', async () => {
    const base = await serve((_req, res) => res.end(encode({ 'failure reason': 'unregistered torrent' })))
    await expect(new HttpTrackerClient().announce(`${base}/announce`, request)).rejects.toMatchObject({
      code: 'TRACKER_FAILURE',
      details: { reason: 'unregistered torrent' },
    })
  })

  it('follows redirects up to the limit', async () => {
    const base = await serve((req, res) => {
      const hop = Number(new URL(req.url ?? '/', 'http://x').pathname.slice(1).replace('announce', '') || 0)
      if (hop < 3) {
        res.writeHead(302, { location: `/announce${hop + 1}` })
        res.end()
      } else {
        res.end(encode({ interval: 5, peers: Buffer.alloc(0) }))
      }
    })
    expect((await new HttpTrackerClient().announce(`${base}/announce`, request)).intervalSec).toBe(5)
    await expect(
      new HttpTrackerClient({}, { maxRedirects: 2 }).announce(`${base}/announce`, request),
    ).rejects.toMatchObject({ code: 'TOO_MANY_REDIRECTS' })
  })

  it('refuses bodies over the size limit', async () => {
    const base = await serve((_req, res) => res.end(Buffer.alloc(5000, 0x61)))
    await expect(
      new HttpTrackerClient({}, { maxResponseBytes: 1000 }).announce(`${base}/announce`, request),
    ).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE' })
  })

  it('times out a tracker that does not answer', async () => {
    const base = await serve(() => undefined)
    await expect(
      new HttpTrackerClient({}, { timeoutMs: 100 }).announce(`${base}/announce`, request),
    ).rejects.toMatchObject({ code: 'TIMEOUT' })
  })

  it('reports non-200 statuses and garbage bodies with codes', async () => {
    const base = await serve((req, res) => {
      if (req.url?.startsWith('/missing') === true) {
        res.writeHead(404)
        res.end()
      } else {
        res.end('<html>not bencode</html>')
      }
    })
    const client = new HttpTrackerClient()
    await expect(client.announce(`${base}/missing`, request)).rejects.toMatchObject({ code: 'HTTP_STATUS' })
    await expect(client.announce(`${base}/announce`, request)).rejects.toMatchObject({
      code: 'MALFORMED_RESPONSE',
    })
  })

  it('scrapes several info hashes', async () => {
    let path = ''
    const base = await serve((req, res) => {
      path = req.url ?? ''
      res.end(
        encode({
          files: new Map([[INFO_HASH.toString('latin1'), { complete: 3, downloaded: 9, incomplete: 1 }]]),
        }),
      )
    })
    const res = await new HttpTrackerClient().scrape(`${base}/announce`, [INFO_HASH, Buffer.alloc(20, 1)])
    expect(path.startsWith('/scrape?info_hash=%00%FF')).toBe(true)
    expect(path).toContain('&info_hash=' + '%01'.repeat(20))
    expect([...res]).toEqual([[INFO_HASH.toString('hex'), { complete: 3, downloaded: 9, incomplete: 1 }]])
  })

  it('rejects a scrape without a scrape URL as NOT_SUPPORTED', async () => {
    await expect(new HttpTrackerClient().scrape('http://127.0.0.1:1/a', [INFO_HASH])).rejects.toMatchObject({
      code: 'NOT_SUPPORTED',
    })
  })

  it('rejects scrape bodies without files', () => {
    expect(() => parseHttpScrape(encode({ x: 1 }))).toThrow(
      expect.objectContaining({ code: 'MALFORMED_RESPONSE' }),
    )
  })
})
