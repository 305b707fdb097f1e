import { TriblerError } from '../common/index.js'

/** One file of a torrent, in torrent order. */
export interface TorrentFile {
  /** Position in the torrent's file list (padding files included). */
  readonly index: number
  /**
   * Safe path relative to the download folder, components joined with `/`. For multi-file torrents it starts with
   * the torrent's (safe) name, as libtorrent lays files out. It never contains `..`, `.`, empty components, an
   * absolute prefix, control characters or Windows-reserved names, and no two files share it (compared without
   * case).
   */
  readonly path: string
  /** The components of `path`: join them with `path.join(downloadDir, ...components)`. */
  readonly pathComponents: readonly string[]
  /** The path as the torrent spells it (UTF-8, invalid bytes replaced), for display only: never a file name. */
  readonly displayPath: string
  readonly length: number
  /** Byte offset of the file in the torrent's concatenated data. */
  readonly offset: number
  /** A BEP 47 padding file: part of the piece layout, but never shown to the user nor written to disk. */
  readonly padding: boolean
  /** BEP 47 attribute letters as given (`x` executable, `h` hidden, `p` padding, `l` symlink, ignored). */
  readonly attributes: string
}

/**
 * A parsed v1 torrent (or the v1 side of a hybrid v1/v2 torrent): what the download engine works from.
 */
export interface TorrentInfo {
  /** SHA-1 of the exact bencoded `info` dictionary bytes: 20 bytes. */
  readonly infoHash: Uint8Array
  /** `infoHash` as 40 lowercase hex characters. */
  readonly infoHashHex: string
  /** Safe name (a single path component), from `name.utf-8` when present and valid. */
  readonly name: string
  /** The name as the torrent spells it, for display. */
  readonly displayName: string
  readonly pieceLength: number
  readonly pieceCount: number
  /** SHA-1 of each piece, 20 bytes each (views of `infoBytes`). */
  readonly pieces: readonly Uint8Array[]
  /** Every file in torrent order, padding files included (see `TorrentFile.padding`). */
  readonly files: readonly TorrentFile[]
  /** Sum of all file lengths, padding included: the byte length the pieces cover. */
  readonly totalLength: number
  /** Announce URLs by tier (BEP 12); `announce` alone makes one tier. Empty for trackerless torrents. */
  readonly trackers: readonly (readonly string[])[]
  /** BEP 19 web seed URLs (`url-list`). */
  readonly webSeeds: readonly string[]
  /** BEP 27 private torrent: no DHT, PEX or LSD. */
  readonly private: boolean
  /** The bencoded info dictionary exactly as received (what `ut_metadata` serves). */
  readonly infoBytes: Uint8Array
  /** The torrent also carries BEP 52 (v2) metadata; only its v1 side is used. */
  readonly hybrid: boolean
  readonly comment?: string
  readonly createdBy?: string
  /** Seconds since the Unix epoch. */
  readonly creationDate?: number
}

/** Why a .torrent or info dictionary was rejected. */
export type MetainfoErrorCode =
  | 'INVALID_BENCODE'
  | 'NOT_A_DICTIONARY'
  | 'MISSING_INFO'
  | 'INVALID_INFO'
  | 'V2_NOT_SUPPORTED'
  | 'MISSING_NAME'
  | 'INVALID_PIECE_LENGTH'
  | 'INVALID_PIECES'
  | 'PIECE_COUNT_MISMATCH'
  | 'MISSING_FILES'
  | 'INVALID_FILE'
  | 'INVALID_FILE_LENGTH'
  | 'INVALID_PATH'
  | 'EMPTY_TORRENT'
  | 'TOO_LARGE'
  | 'INFO_HASH_MISMATCH'
  | 'NO_FILES_TO_ADD'
  | 'SOURCE_UNREADABLE'
  | 'SOURCE_CHANGED'
  | 'INVALID_OPTION'

/** A .torrent, info dictionary or torrent-creation request was rejected. */
export class MetainfoError extends TriblerError<MetainfoErrorCode> {}

/** Peer address from a magnet's `x.pe`. */
export interface MagnetPeer {
  readonly host: string
  readonly port: number
}

/** An inclusive range of file indices from a magnet's `so` (BEP 53). */
export interface FileIndexRange {
  readonly first: number
  readonly last: number
}

/** A parsed magnet link (BEP 9). */
export interface MagnetLink {
  /** v1 infohash, 20 bytes. */
  readonly infoHash: Uint8Array
  readonly infoHashHex: string
  /** v2 infohash from `xt=urn:btmh:` (multihash, hex), noted but not used: v2 is not supported yet. */
  readonly infoHashV2Hex?: string
  /** `dn`: a suggested name for display until the metadata arrives. */
  readonly name?: string
  /** `tr`, in order, deduplicated; each is its own tier. */
  readonly trackers: readonly string[]
  /** `ws`: web seeds (BEP 19). */
  readonly webSeeds: readonly string[]
  /** `x.pe`: peers to dial directly. */
  readonly peers: readonly MagnetPeer[]
  /** `so` (BEP 53): only these files are wanted. */
  readonly selectOnly?: readonly FileIndexRange[]
  /** `xl`: exact total length in bytes. */
  readonly exactLength?: number
}

/** Why a magnet link was rejected. */
export type MagnetErrorCode =
  | 'NOT_A_MAGNET'
  | 'MISSING_INFO_HASH'
  | 'INVALID_INFO_HASH'
  | 'CONFLICTING_INFO_HASH'
  | 'V2_NOT_SUPPORTED'
  | 'INVALID_PEER'
  | 'INVALID_SELECT_ONLY'
  | 'INVALID_LENGTH'
  | 'TOO_LONG'

/** A magnet link was rejected. */
export class MagnetError extends TriblerError<MagnetErrorCode> {}
