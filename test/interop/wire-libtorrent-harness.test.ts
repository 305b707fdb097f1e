import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'

describe.skipIf(!libtorrentAvailable())('libtorrent test harness', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn()
  })

  it('moves a torrent between two libtorrent peers on distinct loopback addresses', async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), 'lt-harness-'))
    cleanup.push(() => rm(tmp, { recursive: true, force: true }))
    const seedDir = path.join(tmp, 'seed')
    const data = await writeRandomFiles(path.join(seedDir, 'share'), {
      'a.bin': 200_000,
      'sub/b.bin': 70_000,
    })
    const torrent = await createTorrent({
      path: path.join(seedDir, 'share'),
      out: path.join(tmp, 'share.torrent'),
      pieceLength: 32768,
    })
    expect(torrent.files.map((f) => f.path).sort()).toEqual(['share/a.bin', 'share/sub/b.bin'])
    expect(torrent.pieces).toHaveLength(Math.ceil(270_000 / 32768))

    const seeder = await LibtorrentPeer.start({ host: '127.0.0.2' })
    cleanup.push(() => seeder.stop())
    const leecher = await LibtorrentPeer.start({ host: '127.0.0.3' })
    cleanup.push(() => leecher.stop())
    await seeder.addTorrent({ torrentPath: torrent.torrentPath, savePath: seedDir })
    await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)
    await leecher.addTorrent({ torrentPath: torrent.torrentPath, savePath: path.join(tmp, 'leech') })
    await leecher.addPeer({ ip: seeder.host, port: seeder.port })

    const done = await leecher.waitFor((s) => s.torrents[0]?.isSeeding === true)
    expect(done.torrents[0]?.totalPayloadDownload).toBeGreaterThanOrEqual(270_000)
    expect(await readFile(path.join(tmp, 'leech', 'share', 'sub', 'b.bin'))).toEqual(data.get('sub/b.bin'))
    const uploaded = await seeder.status()
    expect(uploaded.torrents[0]?.totalPayloadUpload).toBeGreaterThanOrEqual(270_000)
    const connected = await seeder.waitForAlert((a) => a.type === 'peer_connect_alert')
    expect(connected.message).toContain('127.0.0.3')
  })
})
