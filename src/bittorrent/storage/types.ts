import { TriblerError } from '../../common/index.js'
import type { TorrentInfo } from '../../metainfo/index.js'

/**
 * What storage needs of a torrent: its piece layout and files (a parsed {@link TorrentInfo} fits as is). File paths
 * are the safe relative paths of `metainfo`; storage checks them again against the download folder.
 */
export type StorageLayout = Pick<
  TorrentInfo,
  'pieceLength' | 'pieceCount' | 'pieces' | 'files' | 'totalLength'
>

/** A file priority as libtorrent counts them: 0 skips the file (never created), 1..7 download it. */
export type FilePriority = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7

/** Why a storage operation failed. Each concerns one torrent only. */
export type StorageErrorCode =
  /** A file path resolves outside the download folder (including through a symlink). */
  | 'PATH_ESCAPE'
  /** No space left on the device (ENOSPC, EDQUOT). */
  | 'DISK_FULL'
  /** Permission denied or read-only file system. */
  | 'PERMISSION_DENIED'
  /** Any other I/O failure; `details.cause` has the system error. */
  | 'IO_ERROR'
  /** A block or piece outside the torrent, or of the wrong length. */
  | 'INVALID_BLOCK'
  /** Reading data that is not on disk (a file or the part file is missing). */
  | 'DATA_MISSING'
  /** Resume data that cannot be decoded or belongs to another layout. */
  | 'INVALID_RESUME_DATA'
  /** Options out of range (priorities of the wrong length, ...). */
  | 'INVALID_OPTION'
  /** The storage was closed. */
  | 'CLOSED'

/** A storage failure, with the file and system error in `details`. */
export class StorageError extends TriblerError<StorageErrorCode> {}

/** One contiguous run of a block inside one file. */
export interface FileSpan {
  fileIndex: number
  /** Offset inside the file. */
  fileOffset: number
  /** Offset inside the block. */
  blockOffset: number
  length: number
}

/** Progress of a hash check. */
export interface CheckProgress {
  checkedPieces: number
  totalPieces: number
}
