import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PeerWire } from '../../src/bittorrent/peer-wire/index.js'
import { Storage } from '../../src/bittorrent/storage/index.js'
import { parseInfoDictionary, parseTorrent, type TorrentInfo } from '../../src/metainfo/index.js'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'
import { seedingWire } from '../support/seeding-wire.js'

const BLOCK = 16_384
const peerId = (): Buffer => Buffer.concat([Buffer.from('-TS0001-'), randomBytes(12)])

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress: '127.0.0.1' })
    socket.once('connect', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Downloads every piece over `wire` into `storage`, keeping the pipeline full; returns pieces verified. */
async function downloadAll(wire: PeerWire, torrent: TorrentInfo, storage: Storage): Promise<number> {
  const blocks: Array<[number, number, number]> = []
  for (let p = 0; p < torrent.pieceCount; p++) {
    const size = Math.min(torrent.pieceLength, torrent.totalLength - p * torrent.pieceLength)
    for (let b = 0; b < size; b += BLOCK) blocks.push([p, b, Math.min(BLOCK, size - b)])
  }
  const remaining = new Map<number, number>()
  for (const [p] of blocks) remaining.set(p, (remaining.get(p) ?? 0) + 1)
  let verified = 0
  let next = 0
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (next < blocks.length && wire.requestSlots > 0) {
        const [p, b, len] = blocks[next++]!
        wire
          .request(p, b, len)
          .then(async (block) => {
            await storage.writeBlock(p, b, block)
            const left = remaining.get(p)! - 1
            remaining.set(p, left)
            if (left === 0) {
              if (!(await storage.verifyPiece(p))) throw new Error(`piece ${p} failed its hash`)
              verified++
              if (verified === torrent.pieceCount) resolve()
            }
            pump()
          })
          .catch(reject)
      }
    }
    pump()
  })
  return verified
}

describe.skipIf(!libtorrentAvailable())('PeerWire against libtorrent over TCP', () => {
  const cleanup: Array<() => Promise<unknown>> = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })

  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'wire-lt-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
    return dir
  }

  for (const pad of [false, true]) {
    it(`fetches metadata with ut_metadata and downloads every piece from a libtorrent seeder${pad ? ' (pad files)' : ''}`, async () => {
      const tmp = await tempDir()
      const seedDir = path.join(tmp, 'seed')
      const sizes = { 'a.bin': 700_000, 'sub/b.bin': 33_333, 'c.bin': 1 }
      const contents = await writeRandomFiles(path.join(seedDir, 'share'), sizes)
      const made = await createTorrent({
        path: path.join(seedDir, 'share'),
        out: path.join(tmp, 's.torrent'),
        pieceLength: 65_536,
        pad,
      })
      const seeder = await LibtorrentPeer.start({ host: '127.0.0.2', utp: false })
      cleanup.push(() => seeder.stop())
      await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
      await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)

      const infoHash = Buffer.from(made.infoHash, 'hex')
      const wire = new PeerWire(await connect(seeder.host, seeder.port), {
        peerId: peerId(),
        infoHash,
        remoteAddress: { host: seeder.host, port: seeder.port },
      })
      cleanup.push(async () => wire.destroy())
      const handshake = await new Promise<import('../../src/bittorrent/peer-wire/index.js').Handshake>(
        (resolve) => wire.once('handshake', resolve),
      )
      expect(handshake.extensions.extended && handshake.extensions.fast).toBe(true)
      const ext = await wire.waitForExtendedHandshake()
      expect(ext.m.ut_metadata).toBeGreaterThan(0)
      expect(ext.v).toMatch(/libtorrent/i)
      expect(ext.yourip).toEqual(Buffer.from([127, 0, 0, 1]))

      const info = await wire.fetchMetadata()
      expect(createHash('sha1').update(info).digest()).toEqual(infoHash)
      const torrent = parseInfoDictionary(info, { expectedInfoHash: infoHash })
      expect(torrent.files.filter((f) => f.padding).length > 0).toBe(pad)
      wire.setNumPieces(torrent.pieceCount)
      await new Promise<void>((resolve) =>
        wire.peerIsSeed ? resolve() : wire.once('haveAll', () => resolve()),
      )

      const storage = new Storage({
        layout: torrent,
        downloadDir: path.join(tmp, 'ours'),
        id: torrent.infoHashHex,
      })
      cleanup.push(() => storage.close())
      const unchoked = new Promise((resolve) => wire.once('unchoke', resolve))
      wire.interested()
      await unchoked
      expect(await downloadAll(wire, torrent, storage)).toBe(torrent.pieceCount)
      for (const [relative, data] of contents) {
        expect(await readFile(path.join(tmp, 'ours', 'share', relative))).toEqual(data)
      }
      expect(wire.stats.payloadBytesDown).toBe(torrent.totalLength)
    })
  }

  it('seeds from storage to a libtorrent leecher that dials us', async () => {
    const tmp = await tempDir()
    const ourDir = path.join(tmp, 'ours')
    const contents = await writeRandomFiles(path.join(ourDir, 'share'), {
      'x.bin': 500_000,
      'y/z.bin': 12_345,
    })
    const made = await createTorrent({
      path: path.join(ourDir, 'share'),
      out: path.join(tmp, 's.torrent'),
      pieceLength: 32_768,
    })
    const torrent = parseTorrent(await readFile(made.torrentPath))
    const storage = new Storage({ layout: torrent, downloadDir: ourDir, id: torrent.infoHashHex })
    cleanup.push(() => storage.close())
    const { have, rechecked } = await storage.restore(undefined)
    expect(rechecked).toBe(true)
    expect(have.every((byte, i) => i === have.length - 1 || byte === 0xff)).toBe(true)

    const wires: PeerWire[] = []
    const server = net.createServer((socket) => {
      wires.push(
        seedingWire(socket, torrent, storage, {
          remoteAddress: { host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
        }),
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanup.push(() => new Promise((resolve) => server.close(resolve)))
    cleanup.push(async () => {
      for (const w of wires) w.destroy()
    })
    const port = (server.address() as net.AddressInfo).port

    const leecher = await LibtorrentPeer.start({ host: '127.0.0.3', utp: false })
    cleanup.push(() => leecher.stop())
    await leecher.addTorrent({ torrentPath: made.torrentPath, savePath: path.join(tmp, 'leech') })
    await leecher.addPeer({ ip: '127.0.0.1', port })
    const done = await leecher.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs: 60_000 })
    expect(done.torrents[0]?.totalPayloadDownload).toBeGreaterThanOrEqual(512_345)
    for (const [relative, data] of contents) {
      expect(await readFile(path.join(tmp, 'leech', 'share', relative))).toEqual(data)
    }
    expect(wires.some((w) => w.stats.payloadBytesUp >= 512_345)).toBe(true)
  })
})
