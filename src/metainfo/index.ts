/**
 * Torrent metadata: .torrent parsing (v1 and the v1 side of hybrid torrents) with safe file paths, torrent
 * creation with streaming hashing, and magnet links (BEP 9, 53).
 *
 * @example
 * ```ts
 * import { magnetFromTorrent, parseTorrent } from '../metainfo/index.js'
 * const torrent = parseTorrent(await readFile('x.torrent'))
 * for (const file of torrent.files) if (!file.padding) console.log(file.path, file.length)
 * console.log(magnetFromTorrent(torrent))
 * ```
 */
export { type CreatedTorrent, type CreateTorrentOptions, choosePieceLength, createTorrent } from './create.js'
export { formatMagnet, isFileSelected, magnetFromTorrent, parseMagnet } from './magnet.js'
export {
  DEFAULT_MAX_TORRENT_BYTES,
  type ParseTorrentOptions,
  parseInfoDictionary,
  parseTorrent,
} from './parse.js'
export { MAX_COMPONENT_BYTES, sanitizeComponent } from './path-safety.js'
export {
  type FileIndexRange,
  MagnetError,
  type MagnetErrorCode,
  type MagnetLink,
  type MagnetPeer,
  MetainfoError,
  type MetainfoErrorCode,
  type TorrentFile,
  type TorrentInfo,
} from './types.js'
