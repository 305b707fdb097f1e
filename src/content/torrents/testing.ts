import { type Encodable, encode } from '../../bencode/index.js'

/** What {@link buildTorrent} makes: a torrent's name, files (sizes in bytes), trackers by tier and flags. */
export interface TorrentSpec {
  readonly name: string
  /** One entry gives a single-file torrent named `name`; more give a folder. */
  readonly files: readonly { readonly path: string; readonly size: number }[]
  readonly trackers?: readonly (readonly string[])[]
  readonly private?: boolean
}

/**
 * The bytes of a valid v1 .torrent with the given layout and zeroed piece hashes (enough for the store, which
 * never checks data), for tests.
 */
export function buildTorrent(spec: TorrentSpec): Buffer {
  const pieceLength = 16 * 1024
  const total = spec.files.reduce((sum, f) => sum + f.size, 0)
  const pieces = Buffer.alloc(20 * Math.max(1, Math.ceil(total / pieceLength)))
  const info: Record<string, unknown> = { name: spec.name, 'piece length': pieceLength, pieces }
  const [only] = spec.files
  if (spec.files.length === 1 && only !== undefined && only.path === spec.name) info.length = only.size
  else info.files = spec.files.map((f) => ({ length: f.size, path: f.path.split('/') }))
  if (spec.private === true) info.private = 1
  const torrent: Record<string, unknown> = { info }
  const [first] = spec.trackers ?? []
  if (first?.[0] !== undefined) torrent.announce = first[0]
  if ((spec.trackers?.length ?? 0) > 0) torrent['announce-list'] = spec.trackers
  return Buffer.from(encode(torrent as Encodable))
}
