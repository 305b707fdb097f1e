import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DhtNode } from '../../src/bittorrent/dht/index.js'
import { type DatagramSocket, udpTransport } from '../../src/net/index.js'
import { DhtLibtorrentNode } from '../support/dht-libtorrent.js'
import { createTorrent, libtorrentAvailable, writeRandomFiles } from '../support/libtorrent.js'

const OUR_HOST = '127.0.0.41'
const LIBTORRENT_HOST = '127.0.0.42'

/** Retries `attempt` until it returns a value or `timeoutMs` passes. */
async function eventually<T>(
  attempt: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const value = await attempt()
    if (value !== undefined) return value
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  return undefined
}

describe.skipIf(!libtorrentAvailable())('DHT interop with libtorrent', () => {
  const cleanup: Array<() => Promise<unknown>> = []
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined)
    cleanup.length = 0
  })

  it("finds each other's peers through the DHT alone", async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), 'dht-interop-'))
    cleanup.push(() => rm(tmp, { recursive: true, force: true }))
    const socket: DatagramSocket = await udpTransport.bind({ host: OUR_HOST, port: 0 })
    cleanup.push(() => socket.close())
    const dht = new DhtNode({ socket }, { bootstrap: [], publicNetwork: false, queryTimeoutMs: 2000 })
    await dht.start()
    cleanup.push(() => dht.stop())

    const data = path.join(tmp, 'share')
    await writeRandomFiles(data, { 'a.bin': 100_000 })
    const torrent = await createTorrent({ path: data, out: path.join(tmp, 'a.torrent'), pieceLength: 16384 })
    const libtorrent = await DhtLibtorrentNode.start({ host: LIBTORRENT_HOST, bootstrap: socket.local })
    cleanup.push(() => libtorrent.stop())
    await libtorrent.addTorrent(torrent.torrentPath, tmp)

    // libtorrent bootstraps from our node, so it joins our routing table.
    const joined = await eventually(async () => (dht.tableSize > 0 ? true : undefined), 30_000)
    expect(joined).toBe(true)

    // libtorrent seeds and announces the torrent; our lookup finds it.
    const infoHash = Buffer.from(torrent.infoHash, 'hex')
    const found = await eventually(async () => {
      await libtorrent.announce(torrent.infoHash)
      const { peers } = await dht.getPeers(infoHash)
      return peers.find((peer) => peer.host === LIBTORRENT_HOST && peer.port === libtorrent.port)
    }, 60_000)
    expect(found).toEqual({ host: LIBTORRENT_HOST, port: libtorrent.port })

    // We announce a torrent; libtorrent's lookup finds us.
    const ours = randomBytes(20)
    const announced = await dht.announce(ours, 6543)
    expect(announced.announcedTo).toBeGreaterThanOrEqual(1)
    const peers = await eventually(async () => {
      const result = await libtorrent.getPeers(ours.toString('hex'), 5)
      return result.length > 0 ? result : undefined
    }, 30_000)
    expect(peers).toContainEqual({ ip: OUR_HOST, port: 6543 })
  })
})
