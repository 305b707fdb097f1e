import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Duplex } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { type UtpConnection, UtpSocket } from '../../src/bittorrent/utp/index.js'
import { udpTransport } from '../../src/net/index.js'
import {
  createTorrent,
  LibtorrentPeer,
  type LibtorrentTorrent,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'

// The peer wire is encoded by hand here (BEP 3) so these tests depend on nothing but the uTP stream.
const PROTOCOL = Buffer.from('BitTorrent protocol')
const BLOCK_BYTES = 16 * 1024
const MSG = { choke: 0, unchoke: 1, interested: 2, bitfield: 5, request: 6, piece: 7 } as const

function handshake(infoHash: Buffer, peerId: Buffer): Buffer {
  return Buffer.concat([Buffer.from([PROTOCOL.length]), PROTOCOL, Buffer.alloc(8), infoHash, peerId])
}

function message(id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5)
  head.writeUInt32BE(payload.length + 1, 0)
  head[4] = id
  return Buffer.concat([head, payload])
}

function u32s(...values: number[]): Buffer {
  const buf = Buffer.alloc(4 * values.length)
  for (const [i, v] of values.entries()) buf.writeUInt32BE(v, 4 * i)
  return buf
}

/** Reads a handshake, then length-prefixed messages, from a stream. */
class WireReader {
  #buf: Buffer = Buffer.alloc(0)
  #wake: (() => void) | undefined
  #error: Error | undefined

  constructor(stream: Duplex) {
    stream.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
      this.#wake?.()
    })
    const fail = (err?: Error): void => {
      this.#error = err ?? new Error('stream ended')
      this.#wake?.()
    }
    stream.once('end', () => fail())
    stream.once('error', fail)
  }

  async take(n: number): Promise<Buffer> {
    while (this.#buf.length < n) {
      if (this.#error !== undefined) throw this.#error
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
    }
    const out = this.#buf.subarray(0, n)
    this.#buf = this.#buf.subarray(n)
    return out
  }

  async handshake(): Promise<{ infoHash: string; peerId: Buffer }> {
    const pstrlen = (await this.take(1))[0]
    expect(pstrlen).toBe(19)
    expect((await this.take(19)).equals(PROTOCOL)).toBe(true)
    await this.take(8)
    const infoHash = (await this.take(20)).toString('hex')
    return { infoHash, peerId: Buffer.from(await this.take(20)) }
  }

  /** The next message other than a keepalive. */
  async message(): Promise<{ id: number; payload: Buffer }> {
    for (;;) {
      const length = (await this.take(4)).readUInt32BE(0)
      if (length === 0) continue
      const body = await this.take(length)
      return { id: body[0] ?? -1, payload: body.subarray(1) }
    }
  }
}

describe.skipIf(!libtorrentAvailable())('uTP against libtorrent', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })

  async function shared(bytes: number): Promise<{ tmp: string; torrent: LibtorrentTorrent; data: Buffer }> {
    const tmp = await mkdtemp(path.join(tmpdir(), 'utp-interop-'))
    cleanup.push(() => rm(tmp, { recursive: true, force: true }))
    const files = await writeRandomFiles(path.join(tmp, 'seed'), { 'payload.bin': bytes })
    const torrent = await createTorrent({
      path: path.join(tmp, 'seed', 'payload.bin'),
      out: path.join(tmp, 'payload.torrent'),
      pieceLength: 256 * 1024,
    })
    return { tmp, torrent, data: files.get('payload.bin')! }
  }

  async function utpOn(host: string, listen: boolean): Promise<UtpSocket> {
    const socket = await udpTransport.bind({ host })
    const utp = new UtpSocket({ socket })
    if (listen) utp.listen()
    cleanup.push(async () => {
      await utp.close()
      await socket.close()
    })
    return utp
  }

  it('downloads and verifies every piece from a libtorrent seeder over uTP only', async () => {
    const { tmp, torrent } = await shared(3 * 1024 * 1024 + 12_345)
    const seeder = await LibtorrentPeer.start({ host: '127.0.0.31', tcp: false })
    cleanup.push(() => seeder.stop())
    await seeder.addTorrent({ torrentPath: torrent.torrentPath, savePath: path.join(tmp, 'seed') })
    await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)

    const utp = await utpOn('127.0.0.32', false)
    const conn = await utp.connect(
      { host: seeder.host, port: seeder.port },
      { signal: AbortSignal.timeout(10_000) },
    )
    const wire = new WireReader(conn)
    conn.write(handshake(Buffer.from(torrent.infoHash, 'hex'), randomBytes(20)))
    expect((await wire.handshake()).infoHash).toBe(torrent.infoHash)

    let bitfield: Buffer | undefined
    while (bitfield === undefined) {
      const m = await wire.message()
      if (m.id === MSG.bitfield) bitfield = m.payload
    }
    for (let i = 0; i < torrent.numPieces; i++) expect(((bitfield[i >> 3] ?? 0) >> (7 - (i & 7))) & 1).toBe(1)
    conn.write(message(MSG.interested))
    for (;;) if ((await wire.message()).id === MSG.unchoke) break

    const pieces = Array.from({ length: torrent.numPieces }, (_, i) =>
      Buffer.alloc(Math.min(torrent.pieceLength, torrent.totalLength - i * torrent.pieceLength)),
    )
    let outstanding = 0
    for (const [index, piece] of pieces.entries()) {
      for (let begin = 0; begin < piece.length; begin += BLOCK_BYTES) {
        conn.write(message(MSG.request, u32s(index, begin, Math.min(BLOCK_BYTES, piece.length - begin))))
        outstanding += 1
      }
    }
    while (outstanding > 0) {
      const m = await wire.message()
      expect(m.id).not.toBe(MSG.choke)
      if (m.id !== MSG.piece) continue
      const index = m.payload.readUInt32BE(0)
      const begin = m.payload.readUInt32BE(4)
      m.payload.subarray(8).copy(pieces[index]!, begin)
      outstanding -= 1
    }
    pieces.forEach((piece, i) => {
      expect(createHash('sha1').update(piece).digest('hex'), `piece ${i}`).toBe(torrent.pieces[i])
    })
    expect(conn.stats.bytesReceived).toBeGreaterThan(torrent.totalLength)
    conn.destroy()
  })

  it('serves a libtorrent leecher that dials our uTP listener', async () => {
    const { tmp, torrent, data } = await shared(2 * 1024 * 1024 + 777)
    const utp = await utpOn('127.0.0.34', true)
    const served = new Promise<UtpConnection>((resolve, reject) => {
      utp.events.once('connection', (conn) => {
        conn.on('error', () => {})
        serve(conn, torrent, data).then(() => resolve(conn), reject)
      })
    })
    const leecher = await LibtorrentPeer.start({ host: '127.0.0.33', tcp: false, encryption: 'disabled' })
    cleanup.push(() => leecher.stop())
    await leecher.addTorrent({ torrentPath: torrent.torrentPath, savePath: path.join(tmp, 'leech') })
    await leecher.addPeer({ ip: '127.0.0.34', port: utp.local.port })
    // Completion comes as an alert: the harness's status() cannot list peers connected over uTP.
    await leecher.waitForAlert((a) => a.type === 'torrent_finished_alert', { timeoutMs: 60_000 })
    expect((await readFile(path.join(tmp, 'leech', 'payload.bin'))).equals(data)).toBe(true)
    const peers = await served
    expect(peers.initiator).toBe(false)
    expect(peers.stats.bytesSent).toBeGreaterThanOrEqual(data.length)
  })
})

/** A minimal seeder on one incoming connection: handshake, full bitfield, unchoke on interest, answer requests. */
async function serve(conn: UtpConnection, torrent: LibtorrentTorrent, data: Buffer): Promise<void> {
  const wire = new WireReader(conn)
  const theirs = await wire.handshake()
  expect(theirs.infoHash).toBe(torrent.infoHash)
  conn.write(handshake(Buffer.from(torrent.infoHash, 'hex'), randomBytes(20)))
  const bitfield = Buffer.alloc(Math.ceil(torrent.numPieces / 8))
  for (let i = 0; i < torrent.numPieces; i++) bitfield[i >> 3] = (bitfield[i >> 3] ?? 0) | (0x80 >> (i & 7))
  conn.write(message(MSG.bitfield, bitfield))
  let served = 0
  while (served < data.length) {
    const m = await wire.message()
    if (m.id === MSG.interested) conn.write(message(MSG.unchoke))
    if (m.id !== MSG.request) continue
    const index = m.payload.readUInt32BE(0)
    const begin = m.payload.readUInt32BE(4)
    const length = m.payload.readUInt32BE(8)
    const offset = index * torrent.pieceLength + begin
    conn.write(
      message(MSG.piece, Buffer.concat([u32s(index, begin), data.subarray(offset, offset + length)])),
    )
    served += length
  }
}
