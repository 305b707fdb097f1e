import { join } from 'node:path'
import { formatMagnet } from '../../../src/metainfo/index.js'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../../support/libtorrent.js'

/**
 * Whether tests with a libtorrent seeder run: when python3-libtorrent is installed, and always in CI
 * (`CI=true` or `TRIBLER_REQUIRE_INTEROP=1`), where its absence must fail rather than skip.
 */
export const seederTestsRun =
  libtorrentAvailable() || process.env.CI === 'true' || process.env.TRIBLER_REQUIRE_INTEROP === '1'

/** A libtorrent seeder of random files, and a magnet link that names it as a peer. */
export interface Seeded {
  readonly seeder: LibtorrentPeer
  /** File contents by path relative to `<work>/seed`. */
  readonly contents: Map<string, Buffer>
  readonly infoHash: string
  readonly magnet: string
}

/**
 * Writes `files` (relative path → size) under `<work>/seed`, makes a torrent of `<work>/seed/<name>` (a file or
 * a folder) and seeds it from a libtorrent session on `host`. Stop `seeder` when done.
 *
 * @example
 * ```ts
 * const { seeder, magnet } = await seedWithLibtorrent(work, '127.0.0.61', 'album', { 'album/a.bin': 1e6 })
 * ```
 */
export async function seedWithLibtorrent(
  work: string,
  host: string,
  name: string,
  files: Record<string, number>,
): Promise<Seeded> {
  const contents = await writeRandomFiles(join(work, 'seed'), files)
  const torrent = await createTorrent({
    path: join(work, 'seed', name),
    out: join(work, `${name}.torrent`),
    pieceLength: 64 * 1024,
  })
  const seeder = await LibtorrentPeer.start({ host })
  const { infoHash } = await seeder.addTorrent({
    torrentPath: torrent.torrentPath,
    savePath: join(work, 'seed'),
    seedMode: true,
  })
  const magnet = formatMagnet({
    infoHash: Buffer.from(infoHash, 'hex'),
    name,
    trackers: [],
    webSeeds: [],
    peers: [{ host: seeder.host, port: seeder.port }],
  })
  return { seeder, contents, infoHash, magnet }
}
