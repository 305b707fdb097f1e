/**
 * Torrent data on disk: pieces and blocks mapped onto files, SHA-1 verification, skipped files with a part file,
 * resume data, recheck, move and delete, with every path kept inside the download folder.
 *
 * @example
 * ```ts
 * import { Storage } from '../storage/index.js'
 * const storage = new Storage({ layout: torrent, downloadDir, id: torrent.infoHashHex })
 * const { have } = await storage.restore(savedResume)
 * ```
 */
export { allocPiece, type HashedPiece, HashPool, sha1Pool } from './hash-pool.js'
export { filePieces, mapBlock, pieceSize } from './layout.js'
export {
  decodeResumeData,
  encodeResumeData,
  RESUME_FORMAT,
  RESUME_VERSION,
  type ResumeData,
} from './resume.js'
export { DEFAULT_MAX_OPEN_FILES, type OpenFile, Storage, type StorageOptions } from './storage.js'
export {
  type CheckProgress,
  type FilePriority,
  type FileSpan,
  StorageError,
  type StorageErrorCode,
  type StorageLayout,
} from './types.js'
