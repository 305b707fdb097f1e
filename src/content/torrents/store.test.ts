import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { parseTorrent } from '../../metainfo/index.js'
import { Store } from '../../store/index.js'
import { TORRENT_MIGRATIONS, TorrentTable } from './store.js'
import { buildTorrent } from './testing.js'
import { TorrentsError } from './types.js'

const MIB = 1024 * 1024

function table(): { torrents: TorrentTable; store: Store; clock: ManualClock } {
  const store = new Store(':memory:')
  store.register(TORRENT_MIGRATIONS)
  store.open()
  store.migrate()
  const clock = new ManualClock(1_700_000_000_000)
  return { torrents: new TorrentTable(() => store.db, clock), store, clock }
}

const album = buildTorrent({
  name: 'Album',
  files: [
    { path: 'cd1/one.mp3', size: 5 * MIB },
    { path: 'cd1/two.mp3', size: 4 * MIB },
  ],
  trackers: [['http://127.0.0.1:6969/announce'], ['udp://127.0.0.1:6969', 'http://127.0.0.1:6969/announce']],
})

describe('TorrentTable', () => {
  it('remembers a torrent with its files inside the torrent, size, category and trackers', () => {
    const { torrents } = table()
    const known = torrents.remember(album)
    expect(known).toMatchObject({
      infohash: parseTorrent(album).infoHashHex,
      name: 'Album',
      size: 9 * MIB,
      category: 'Audio',
      private: false,
      numSeeders: 0,
      numLeechers: 0,
      lastTrackerCheck: 0,
      files: [
        { path: 'cd1/one.mp3', size: 5 * MIB },
        { path: 'cd1/two.mp3', size: 4 * MIB },
      ],
      trackers: ['http://127.0.0.1:6969/announce', 'udp://127.0.0.1:6969', 'DHT'],
    })
    expect(torrents.get(known.infohash.toUpperCase())).toEqual(known)
    expect(Buffer.from(torrents.torrentFile(known.infohash) ?? [])).toEqual(album)
    expect(torrents.count()).toBe(1)
  })

  it('names the single file of a single-file torrent after the torrent, and lists no DHT for a private one', () => {
    const { torrents } = table()
    const known = torrents.remember(
      buildTorrent({ name: 'film.mkv', files: [{ path: 'film.mkv', size: 800 * MIB }], private: true }),
    )
    expect(known.files).toEqual([{ path: 'film.mkv', size: 800 * MIB }])
    expect(known.trackers).toEqual([])
    expect(known.private).toBe(true)
    expect(known.category).toBe('Video')
  })

  it('adds new trackers when a torrent is remembered again and keeps its health figures', () => {
    const { torrents } = table()
    const first = torrents.remember(album)
    torrents.updateHealth(first.infohash, { seeders: 4, leechers: 2, checkedAtSec: 1_700_000_000 })
    const info = parseTorrent(
      buildTorrent({
        name: 'Album',
        files: [
          { path: 'cd1/one.mp3', size: 5 * MIB },
          { path: 'cd1/two.mp3', size: 4 * MIB },
        ],
        trackers: [['http://127.0.0.2:7000/announce']],
      }),
    )
    expect(info.infoHashHex).toBe(first.infohash)
    const again = torrents.remember(info)
    expect(again.id).toBe(first.id)
    expect(again.trackers).toEqual([
      'http://127.0.0.1:6969/announce',
      'udp://127.0.0.1:6969',
      'http://127.0.0.2:7000/announce',
      'DHT',
    ])
    expect(again).toMatchObject({ numSeeders: 4, numLeechers: 2, lastTrackerCheck: 1_700_000_000 })
    expect(torrents.count()).toBe(1)
  })

  it('rejects bytes that are not a torrent with INVALID_TORRENT and stores nothing', () => {
    const { torrents } = table()
    const err = (() => {
      try {
        torrents.remember(Buffer.from('d4:infoi1ee'))
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(TorrentsError)
    expect((err as TorrentsError).code).toBe('INVALID_TORRENT')
    expect(torrents.count()).toBe(0)
  })

  it('gives random torrents up to the limit, leaving out those the filter rejects', () => {
    const { torrents } = table()
    const names = ['a', 'b', 'c', 'd', 'e']
    for (const name of names) torrents.remember(buildTorrent({ name, files: [{ path: name, size: 1000 }] }))
    expect(torrents.random(3)).toHaveLength(3)
    const picked = torrents.random(10, (t) => t.name === 'c')
    expect(picked.map((t) => t.name).sort()).toEqual(['a', 'b', 'd', 'e'])
    expect(torrents.get('00'.repeat(20))).toBeUndefined()
  })

  it('keeps its rows across a reopen of the database file', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'tribler-torrents-')), 'tribler.db')
    const clock = new ManualClock(0)
    const first = new Store(dir)
    first.register(TORRENT_MIGRATIONS)
    first.open()
    first.migrate()
    const known = new TorrentTable(() => first.db, clock).remember(album)
    first.close()
    const second = new Store(dir)
    second.register(TORRENT_MIGRATIONS)
    second.open()
    expect(second.pending()).toEqual([])
    expect(new TorrentTable(() => second.db, clock).get(known.infohash)).toEqual(known)
    second.close()
  })
})
