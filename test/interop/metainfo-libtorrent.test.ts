import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  choosePieceLength,
  createTorrent,
  magnetFromTorrent,
  parseMagnet,
  parseTorrent,
  type TorrentInfo,
} from '../../src/metainfo/index.js'
import {
  LibtorrentPeer,
  type LibtorrentTorrent,
  libtorrentAvailable,
  createTorrent as libtorrentCreate,
  libtorrentPython,
  writeRandomFiles,
} from '../support/libtorrent.js'

// Asks python libtorrent about a .torrent, a magnet link, or the piece size it would choose.
const PROBE = `
import json, sys
import libtorrent as lt
mode = sys.argv[1]
if mode == "load":
    ti = lt.torrent_info(sys.argv[2])
    fs = ti.files()
    print(json.dumps({
        "infoHash": str(ti.info_hashes().v1),
        "name": ti.name(),
        "pieceLength": ti.piece_length(),
        "numPieces": ti.num_pieces(),
        "totalLength": ti.total_size(),
        "private": ti.priv(),
        "trackers": [[t.url, t.tier] for t in ti.trackers()],
        "webSeeds": [w["url"] for w in ti.web_seeds()],
        "files": [[fs.file_path(i), fs.file_size(i), fs.file_offset(i)] for i in range(fs.num_files())],
        "magnet": lt.make_magnet_uri(ti),
    }))
elif mode == "magnet":
    p = lt.parse_magnet_uri(sys.argv[2])
    print(json.dumps({
        "infoHash": str(p.info_hashes.v1),
        "name": p.name,
        "trackers": list(p.trackers),
        "peers": [[e[0], e[1]] for e in p.peers],
    }))
elif mode == "piece-size":
    sizes = []
    for size in map(int, sys.argv[2:]):
        fs = lt.file_storage()
        fs.add_file("x", size)
        sizes.append(lt.create_torrent(fs, 0, flags=lt.create_torrent.v1_only).piece_length())
    print(json.dumps(sizes))
`

function probe<T>(...args: string[]): T {
  const result = spawnSync(libtorrentPython()!, ['-c', PROBE, ...args], { encoding: 'utf8', timeout: 60_000 })
  if (result.status !== 0) throw new Error(`libtorrent probe failed: ${result.stderr}`)
  return JSON.parse(result.stdout) as T
}

interface LoadedByLibtorrent {
  infoHash: string
  name: string
  pieceLength: number
  numPieces: number
  totalLength: number
  private: boolean
  trackers: [string, number][]
  webSeeds: string[]
  files: [string, number, number][]
  magnet: string
}

/** What we read from a torrent libtorrent made must be exactly what libtorrent reads from it. */
function expectSameAsLibtorrent(ours: TorrentInfo, theirs: LibtorrentTorrent): void {
  expect(ours.infoHashHex).toBe(theirs.infoHash)
  expect(ours.name).toBe(theirs.name)
  expect(ours.pieceLength).toBe(theirs.pieceLength)
  expect(ours.pieceCount).toBe(theirs.numPieces)
  expect(ours.totalLength).toBe(theirs.totalLength)
  expect(ours.pieces.map((p) => Buffer.from(p).toString('hex'))).toEqual(theirs.pieces)
  expect(Buffer.from(ours.infoBytes).toString('hex')).toBe(theirs.infoHex)
  expect(
    ours.files.map((f) => ({ path: f.path, length: f.length, offset: f.offset, pad: f.padding })),
  ).toEqual(theirs.files)
}

describe.skipIf(!libtorrentAvailable())('metainfo against libtorrent', () => {
  let tmp: string
  const share = () => path.join(tmp, 'share')
  let contents: Map<string, Buffer>

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'metainfo-lt-'))
    contents = await writeRandomFiles(share(), {
      'b.bin': 100_000,
      'a.bin': 33_000,
      'sub/deeper/c.bin': 70_001,
      'sub/d.txt': 5,
    })
    await writeFile(path.join(tmp, 'single.bin'), contents.get('b.bin')!)
  })
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true })
  })

  it('reads a single-file torrent made by libtorrent exactly as libtorrent does', async () => {
    const theirs = await libtorrentCreate({
      path: path.join(tmp, 'single.bin'),
      out: path.join(tmp, 'lt-single.torrent'),
      pieceLength: 16384,
      private: true,
    })
    const ours = parseTorrent(await readFile(theirs.torrentPath))
    expectSameAsLibtorrent(ours, theirs)
    expect(ours.private).toBe(true)
    expect(ours.createdBy).toBe('tribler-ts test harness')
  })

  it('reads a multi-file torrent made by libtorrent exactly as libtorrent does', async () => {
    const theirs = await libtorrentCreate({
      path: share(),
      out: path.join(tmp, 'lt-multi.torrent'),
      pieceLength: 32768,
    })
    expectSameAsLibtorrent(parseTorrent(await readFile(theirs.torrentPath)), theirs)
  })

  it('reads the v1 side of a hybrid torrent with pad files exactly as libtorrent does', async () => {
    const theirs = await libtorrentCreate({
      path: share(),
      out: path.join(tmp, 'lt-hybrid.torrent'),
      pad: true,
    })
    const ours = parseTorrent(await readFile(theirs.torrentPath))
    expectSameAsLibtorrent(ours, theirs)
    expect(ours.hybrid).toBe(true)
    expect(ours.files.some((f) => f.padding)).toBe(true)
  })

  it('makes the same single-file torrent as libtorrent, byte for byte in the info dictionary', async () => {
    const theirs = await libtorrentCreate({
      path: path.join(tmp, 'single.bin'),
      out: path.join(tmp, 'lt-same.torrent'),
    })
    const ours = await createTorrent(path.join(tmp, 'single.bin'))
    expect(ours.info.pieceLength).toBe(theirs.pieceLength)
    expect(ours.info.infoHashHex).toBe(theirs.infoHash)
  })

  it('makes the same multi-file torrent as libtorrent', async () => {
    const theirs = await libtorrentCreate({ path: share(), out: path.join(tmp, 'lt-same-multi.torrent') })
    const ours = await createTorrent(share())
    expect(ours.info.files.map((f) => f.path)).toEqual(theirs.files.map((f) => f.path))
    expect(ours.info.infoHashHex).toBe(theirs.infoHash)
  })

  it('makes torrents that libtorrent loads with the same infohash, trackers and web seeds', async () => {
    const { torrent, info } = await createTorrent(share(), {
      pieceLength: 16384,
      trackers: [
        'udp://127.0.0.1:6969/announce',
        ['http://127.0.0.1:1/announce', 'http://127.0.0.2:1/announce'],
      ],
      webSeeds: ['http://127.0.0.1:8080/share/'],
      comment: 'interop',
      private: true,
    })
    const file = path.join(tmp, 'ours.torrent')
    await writeFile(file, torrent)
    const loaded = probe<LoadedByLibtorrent>('load', file)
    expect(loaded.infoHash).toBe(info.infoHashHex)
    expect(loaded.name).toBe(info.name)
    expect(loaded.pieceLength).toBe(info.pieceLength)
    expect(loaded.numPieces).toBe(info.pieceCount)
    expect(loaded.totalLength).toBe(info.totalLength)
    expect(loaded.private).toBe(true)
    // BEP 12: libtorrent shuffles the trackers inside each tier.
    expect(loaded.trackers.sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))).toEqual([
      ['udp://127.0.0.1:6969/announce', 0],
      ['http://127.0.0.1:1/announce', 1],
      ['http://127.0.0.2:1/announce', 1],
    ])
    expect(loaded.webSeeds).toEqual(['http://127.0.0.1:8080/share/'])
    expect(loaded.files).toEqual(info.files.map((f) => [f.path, f.length, f.offset]))
  })

  it('makes torrents whose piece hashes libtorrent verifies against the data', async () => {
    const { torrent, info } = await createTorrent(share(), { pieceLength: 16384 })
    const file = path.join(tmp, 'verify.torrent')
    await writeFile(file, torrent)
    const peer = await LibtorrentPeer.start({ host: '127.0.0.1' })
    try {
      await peer.addTorrent({ torrentPath: file, savePath: tmp })
      const status = await peer.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs: 60_000 })
      expect(status.torrents[0]!.infoHash).toBe(info.infoHashHex)
    } finally {
      await peer.stop()
    }
  })

  it('chooses the same automatic piece length as libtorrent', () => {
    const sizes = [
      1, 2_684_355, 2_684_356, 10_737_419, 200_000_000, 3_000_000_000, 50_000_000_000, 800_000_000_000,
    ]
    expect(sizes.map(choosePieceLength)).toEqual(probe<number[]>('piece-size', ...sizes.map(String)))
  })

  it('exchanges magnet links with libtorrent in both directions', async () => {
    const { info } = await createTorrent(share(), {
      trackers: ['udp://127.0.0.1:6969/announce', 'http://127.0.0.1:1/announce'],
      webSeeds: ['http://127.0.0.1:8080/'],
    })
    const parsed = probe<{ infoHash: string; name: string; trackers: string[] }>(
      'magnet',
      magnetFromTorrent(info),
    )
    expect(parsed.infoHash).toBe(info.infoHashHex)
    expect(parsed.name).toBe(info.name)
    expect(parsed.trackers).toEqual(['udp://127.0.0.1:6969/announce', 'http://127.0.0.1:1/announce'])

    const file = path.join(tmp, 'magnet.torrent')
    await writeFile(
      file,
      (await createTorrent(share(), { trackers: ['http://127.0.0.1:1/announce'] })).torrent,
    )
    const theirs = parseMagnet(probe<LoadedByLibtorrent>('load', file).magnet)
    expect(theirs.infoHashHex).toBe(parseTorrent(await readFile(file)).infoHashHex)
    expect(theirs.name).toBe('share')
    expect(theirs.trackers).toEqual(['http://127.0.0.1:1/announce'])
  })

  it('reads peers from a magnet link as libtorrent does', () => {
    const uri = `magnet:?xt=urn:btih:${'ab'.repeat(20)}&x.pe=127.0.0.1:6881&x.pe=[::1]:51413`
    const theirs = probe<{ peers: [string, number][] }>('magnet', uri)
    expect(parseMagnet(uri).peers.map((p) => [p.host, p.port])).toEqual(theirs.peers)
  })
})

function transmissionAvailable(): boolean {
  return spawnSync('transmission-create', ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0
}

describe.skipIf(!libtorrentAvailable() || !transmissionAvailable())(
  'metainfo against transmission-create',
  () => {
    let tmp: string
    beforeAll(async () => {
      tmp = await mkdtemp(path.join(tmpdir(), 'metainfo-tr-'))
      // No empty file: transmission-create leaves them out, libtorrent and we keep them.
      await writeRandomFiles(path.join(tmp, 'share'), { 'x.bin': 90_000, 'y/z.bin': 12_345, 'y/w.bin': 1 })
    })
    afterAll(async () => {
      await rm(tmp, { recursive: true, force: true })
    })

    it('reads a torrent made by Transmission as libtorrent does, and makes the same one', async () => {
      const out = path.join(tmp, 'tr.torrent')
      const made = spawnSync(
        'transmission-create',
        [
          '-o',
          out,
          '-s',
          '32',
          '-p',
          '-c',
          'from transmission',
          '-t',
          'http://127.0.0.1:1/announce',
          'share',
        ],
        { cwd: tmp, encoding: 'utf8', timeout: 60_000 },
      )
      expect(made.status).toBe(0)
      const ours = parseTorrent(await readFile(out))
      const theirs = probe<LoadedByLibtorrent>('load', out)
      expect(ours.infoHashHex).toBe(theirs.infoHash)
      expect(ours.files.map((f) => [f.path, f.length, f.offset])).toEqual(theirs.files)
      expect(ours.private).toBe(theirs.private)
      expect(ours.comment).toBe('from transmission')
      expect(ours.trackers).toEqual([['http://127.0.0.1:1/announce']])

      const recreated = await createTorrent(path.join(tmp, 'share'), {
        pieceLength: 32 * 1024,
        private: true,
      })
      expect(recreated.info.infoHashHex).toBe(ours.infoHashHex)
    })
  },
)
