// Message stream encryption against real libtorrent (python3-libtorrent 2.0) on loopback: we dial a libtorrent
// seeder that forces encryption (over TCP and over uTP) and download through the encrypted stream, and a
// libtorrent leecher that forces encryption dials us and downloads what we seed.
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Duplex } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import {
  acceptConnection,
  type CryptoMethod,
  infoHashLookup,
  type MseResult,
  openOutgoing,
} from '../../src/bittorrent/mse/index.js'
import { PeerWire } from '../../src/bittorrent/peer-wire/index.js'
import { Storage } from '../../src/bittorrent/storage/index.js'
import { UtpSocket } from '../../src/bittorrent/utp/index.js'
import { parseInfoDictionary, parseTorrent, type TorrentInfo } from '../../src/metainfo/index.js'
import { udpTransport } from '../../src/net/index.js'
import {
  createTorrent,
  LibtorrentPeer,
  type LibtorrentPeerOptions,
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

/** Requests every block of every piece over `wire` into `storage`; resolves with the pieces verified. */
async function downloadAll(wire: PeerWire, torrent: TorrentInfo, storage: Storage): Promise<number> {
  let verified = 0
  for (let p = 0; p < torrent.pieceCount; p++) {
    const size = Math.min(torrent.pieceLength, torrent.totalLength - p * torrent.pieceLength)
    const blocks: Array<Promise<void>> = []
    for (let b = 0; b < size; b += BLOCK) {
      const length = Math.min(BLOCK, size - b)
      blocks.push(wire.request(p, b, length).then((block) => storage.writeBlock(p, b, block)))
    }
    await Promise.all(blocks)
    if (!(await storage.verifyPiece(p))) throw new Error(`piece ${p} failed its hash`)
    verified++
  }
  return verified
}

describe.skipIf(!libtorrentAvailable())('message stream encryption against libtorrent', () => {
  const cleanup: Array<() => Promise<unknown>> = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })

  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'mse-lt-'))
    cleanup.push(() => rm(dir, { recursive: true, force: true }))
    return dir
  }

  const dialCases: Array<{
    name: string
    libtorrent: LibtorrentPeerOptions
    ours: readonly CryptoMethod[]
    expected: CryptoMethod
    transport?: 'tcp' | 'utp'
  }> = [
    {
      name: 'RC4 when libtorrent forces RC4',
      libtorrent: { encryption: 'forced', encryptionLevel: 'rc4' },
      ours: ['rc4'],
      expected: 'rc4',
    },
    {
      name: 'a plaintext payload when libtorrent allows only that after the encrypted handshake',
      libtorrent: { encryption: 'forced', encryptionLevel: 'plaintext' },
      ours: ['plaintext', 'rc4'],
      expected: 'plaintext',
    },
    {
      name: 'RC4 over uTP',
      libtorrent: { encryption: 'forced', encryptionLevel: 'rc4', tcp: false },
      ours: ['rc4'],
      expected: 'rc4',
      transport: 'utp',
    },
  ]

  async function dial(host: string, port: number, transport: 'tcp' | 'utp'): Promise<Duplex> {
    if (transport === 'tcp') return connect(host, port)
    const socket = await udpTransport.bind({ host: '127.0.0.1' })
    const utp = new UtpSocket({ socket })
    cleanup.push(async () => {
      await utp.close()
      await socket.close()
    })
    return utp.connect({ host, port }, { signal: AbortSignal.timeout(10_000) })
  }

  for (const c of dialCases) {
    it(`dials a libtorrent seeder with MSE and downloads everything: ${c.name}`, async () => {
      const tmp = await tempDir()
      const seedDir = path.join(tmp, 'seed')
      const contents = await writeRandomFiles(path.join(seedDir, 'share'), {
        'a.bin': 300_000,
        'b.bin': 4321,
      })
      const made = await createTorrent({
        path: path.join(seedDir, 'share'),
        out: path.join(tmp, 's.torrent'),
        pieceLength: 65_536,
      })
      const transport = c.transport ?? 'tcp'
      const seeder = await LibtorrentPeer.start({
        host: '127.0.0.2',
        utp: transport === 'utp',
        ...c.libtorrent,
      })
      cleanup.push(() => seeder.stop())
      await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
      await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)

      const infoHash = Buffer.from(made.infoHash, 'hex')
      const socket = await dial(seeder.host, seeder.port, transport)
      const conn = await openOutgoing(socket, { policy: 'forced', infoHash, allowedMethods: c.ours })
      expect(conn.encrypted).toBe(true)
      expect(conn.method).toBe(c.expected)
      const wire = new PeerWire(conn.stream, { peerId: peerId(), infoHash })
      cleanup.push(async () => wire.destroy())
      await new Promise((resolve) => wire.once('handshake', resolve))
      const info = await wire.fetchMetadata()
      expect(createHash('sha1').update(info).digest()).toEqual(infoHash)
      const torrent = parseInfoDictionary(info, { expectedInfoHash: infoHash })
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
      // The harness's status() lists TCP peers only.
      if (transport === 'tcp') {
        const status = await seeder.status()
        expect(status.torrents[0]?.peers[0]?.encryption).toBe(c.expected)
      }
    })
  }

  const acceptCases: Array<{ name: string; libtorrent: LibtorrentPeerOptions; expected: CryptoMethod }> = [
    { name: 'RC4', libtorrent: { encryption: 'forced', encryptionLevel: 'rc4' }, expected: 'rc4' },
    {
      name: 'plaintext payload',
      libtorrent: { encryption: 'forced', encryptionLevel: 'plaintext' },
      expected: 'plaintext',
    },
  ]

  for (const c of acceptCases) {
    it(`accepts a libtorrent leecher that dials with forced MSE and seeds it: ${c.name}`, async () => {
      const tmp = await tempDir()
      const ourDir = path.join(tmp, 'ours')
      const contents = await writeRandomFiles(path.join(ourDir, 'share'), { 'x.bin': 250_000, 'y.bin': 777 })
      const made = await createTorrent({
        path: path.join(ourDir, 'share'),
        out: path.join(tmp, 's.torrent'),
        pieceLength: 32_768,
      })
      const torrent = parseTorrent(await readFile(made.torrentPath))
      const storage = new Storage({ layout: torrent, downloadDir: ourDir, id: torrent.infoHashHex })
      cleanup.push(() => storage.close())
      await storage.restore(undefined)

      // Other torrents too, so the responder has to find the right SKEY among several.
      const lookup = infoHashLookup([randomBytes(20), torrent.infoHash, randomBytes(20)])
      const accepted: MseResult[] = []
      const failures: unknown[] = []
      const wires: PeerWire[] = []
      const server = net.createServer(async (socket) => {
        let conn: MseResult
        try {
          conn = await acceptConnection(socket, { policy: 'forced', lookup })
        } catch (err) {
          failures.push(err)
          return
        }
        accepted.push(conn)
        wires.push(seedingWire(conn.stream, torrent, storage))
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      cleanup.push(() => new Promise((resolve) => server.close(resolve)))
      cleanup.push(async () => {
        for (const w of wires) w.destroy()
      })
      const port = (server.address() as net.AddressInfo).port

      const leecher = await LibtorrentPeer.start({ host: '127.0.0.3', utp: false, ...c.libtorrent })
      cleanup.push(() => leecher.stop())
      await leecher.addTorrent({ torrentPath: made.torrentPath, savePath: path.join(tmp, 'leech') })
      await leecher.addPeer({ ip: '127.0.0.1', port })
      await leecher.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs: 60_000 })
      for (const [relative, data] of contents) {
        expect(await readFile(path.join(tmp, 'leech', 'share', relative))).toEqual(data)
      }
      expect(failures).toEqual([])
      expect(accepted.length).toBeGreaterThan(0)
      expect(accepted.every((a) => a.encrypted && a.method === c.expected)).toBe(true)
      expect(accepted[0]?.infoHash).toEqual(torrent.infoHash)
    })
  }
})
