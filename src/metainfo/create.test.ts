import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decode } from '../bencode/index.js'
import type { MetainfoErrorCode } from './index.js'
import { choosePieceLength, createTorrent, MetainfoError, parseTorrent } from './index.js'

let dir: string

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tribler-create-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function pattern(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length)
  for (let i = 0; i < length; i++) out[i] = (i * 7 + seed * 13 + (i >> 8)) & 0xff
  return out
}

function pieceHashes(data: Buffer, pieceLength: number): string[] {
  const out: string[] = []
  for (let at = 0; at < data.length; at += pieceLength) {
    out.push(
      createHash('sha1')
        .update(data.subarray(at, at + pieceLength))
        .digest('hex'),
    )
  }
  return out
}

async function codeOf(promise: Promise<unknown>): Promise<MetainfoErrorCode | undefined> {
  try {
    await promise
  } catch (err) {
    if (err instanceof MetainfoError) return err.code
    throw err
  }
  return undefined
}

describe('createTorrent', () => {
  it('makes a single-file torrent whose pieces hash the file', async () => {
    const data = pattern(100_000, 1)
    const file = path.join(dir, 'single.bin')
    await writeFile(file, data)
    const { torrent, info } = await createTorrent(file, {
      pieceLength: 32768,
      trackers: ['udp://a.example:1', ['http://b.example/announce', 'http://c.example/announce']],
      webSeeds: ['http://seed.example/single.bin'],
      comment: 'made in a test',
      createdBy: 'Tribler.ts',
      creationDate: 1_700_000_000,
      private: true,
    })
    expect(info.name).toBe('single.bin')
    expect(info.files).toHaveLength(1)
    expect(info.totalLength).toBe(100_000)
    expect(info.pieces.map((p) => Buffer.from(p).toString('hex'))).toEqual(pieceHashes(data, 32768))
    expect(info.trackers).toEqual([
      ['udp://a.example:1'],
      ['http://b.example/announce', 'http://c.example/announce'],
    ])
    expect(info.webSeeds).toEqual(['http://seed.example/single.bin'])
    expect(info.private).toBe(true)
    expect(info.comment).toBe('made in a test')
    expect(info.createdBy).toBe('Tribler.ts')
    expect(info.creationDate).toBe(1_700_000_000)
    const root = decode(torrent) as Record<string, unknown>
    expect(Buffer.from(root.announce as Uint8Array).toString()).toBe('udp://a.example:1')
  })

  it('makes a multi-file torrent with files in byte order and pieces across file boundaries', async () => {
    const folder = path.join(dir, 'album')
    await mkdir(path.join(folder, 'b-sub'), { recursive: true })
    const files: [string, Buffer][] = [
      ['B.txt', pattern(5000, 2)],
      ['a.txt', pattern(20_000, 3)],
      ['b-sub/z.bin', pattern(40_000, 4)],
      ['empty', Buffer.alloc(0)],
    ]
    for (const [name, data] of files) await writeFile(path.join(folder, name), data)
    await symlink('/etc/passwd', path.join(folder, 'link'))
    const { info } = await createTorrent(folder, { pieceLength: 16384, creationDate: null })
    expect(info.files.map((f) => [f.path, f.length])).toEqual([
      ['album/B.txt', 5000],
      ['album/a.txt', 20_000],
      ['album/b-sub/z.bin', 40_000],
      ['album/empty', 0],
    ])
    const all = Buffer.concat(files.map(([, data]) => data))
    expect(info.pieces.map((p) => Buffer.from(p).toString('hex'))).toEqual(pieceHashes(all, 16384))
    expect(info.creationDate).toBeUndefined()
    expect(info.trackers).toEqual([])
  })

  it('makes a torrent of chosen files of a folder, laid out as the whole folder would be', async () => {
    const folder = path.join(dir, 'chosen')
    await mkdir(path.join(folder, 'a'), { recursive: true })
    await writeFile(path.join(folder, 'a', 'b'), pattern(3000, 7))
    await writeFile(path.join(folder, 'a.txt'), pattern(2000, 8))
    await writeFile(path.join(folder, 'skipped'), pattern(10, 9))
    const chosen = [path.join(folder, 'a.txt'), 'a/b', path.join(folder, 'a', 'b')]
    const { info } = await createTorrent(folder, { files: chosen, name: 'picked' })
    const whole = await createTorrent(folder)
    expect(info.files.map((f) => f.path)).toEqual(['picked/a/b', 'picked/a.txt'])
    expect(whole.info.files.map((f) => f.path)).toEqual(['chosen/a/b', 'chosen/a.txt', 'chosen/skipped'])
    expect(await codeOf(createTorrent(folder, { files: [path.join(dir, 'same.bin')] }))).toBe(
      'INVALID_OPTION',
    )
    expect(await codeOf(createTorrent(folder, { files: ['missing'] }))).toBe('SOURCE_UNREADABLE')
    expect(await codeOf(createTorrent(folder, { files: ['a'] }))).toBe('SOURCE_UNREADABLE')
    expect(await codeOf(createTorrent(path.join(folder, 'a.txt'), { files: ['x'] }))).toBe('INVALID_OPTION')
  })

  it('reproduces the same infohash for the same content and options', async () => {
    const file = path.join(dir, 'same.bin')
    await writeFile(file, pattern(50_000, 5))
    const a = await createTorrent(file, { creationDate: 1 })
    const b = await createTorrent(file, { creationDate: 2 })
    expect(a.info.infoHashHex).toBe(b.info.infoHashHex)
    expect(parseTorrent(a.torrent).infoHashHex).toBe(a.info.infoHashHex)
  })

  it('chooses the piece length like libtorrent', () => {
    expect(choosePieceLength(1)).toBe(16384)
    expect(choosePieceLength(2_684_355)).toBe(16384)
    expect(choosePieceLength(2_684_356)).toBe(32768)
    expect(choosePieceLength(700_000_000)).toBe(512 * 1024)
    expect(choosePieceLength(4 * 2 ** 30)).toBe(1024 * 1024)
    expect(choosePieceLength(2 ** 50)).toBe(16 * 1024 * 1024)
  })

  it('reports progress and stops when aborted', async () => {
    const file = path.join(dir, 'progress.bin')
    await writeFile(file, pattern(3 * 1024 * 1024, 6))
    const seen: number[] = []
    await createTorrent(file, { onProgress: (done) => seen.push(done) })
    expect(seen.at(-1)).toBe(3 * 1024 * 1024)
    const controller = new AbortController()
    controller.abort()
    await expect(createTorrent(file, { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    })
  })

  it('rejects what cannot make a torrent', async () => {
    const empty = path.join(dir, 'empty-folder')
    await mkdir(empty)
    expect(await codeOf(createTorrent(empty))).toBe('NO_FILES_TO_ADD')
    await writeFile(path.join(empty, 'zero'), '')
    expect(await codeOf(createTorrent(empty))).toBe('EMPTY_TORRENT')
    expect(await codeOf(createTorrent(path.join(dir, 'missing')))).toBe('SOURCE_UNREADABLE')
    const file = path.join(dir, 'small.bin')
    await writeFile(file, 'x')
    expect(await codeOf(createTorrent(file, { pieceLength: 1000 }))).toBe('INVALID_OPTION')
  })
})
