import { createHash, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import type { Encodable } from '../bencode/index.js'
import { encode } from '../bencode/index.js'
import { parseTorrent } from './parse.js'
import type { TorrentInfo } from './types.js'
import { MetainfoError } from './types.js'

const BLOCK_SIZE = 16 * 1024
const READ_CHUNK_BYTES = 1024 * 1024
// libtorrent's create_torrent table: the largest total size for each piece length from 16 KiB up to 8 MiB (it
// aims at a piece list of about twice the square root of the total size).
const AUTO_PIECE_SIZE_LIMITS = [
  2_684_355, 10_737_418, 42_949_673, 171_798_692, 687_194_767, 2_748_779_069, 10_995_116_278, 43_980_465_111,
  175_921_860_444, 703_687_441_777,
]

/**
 * The piece length libtorrent picks for a torrent of `totalLength` bytes: 16 KiB for up to about 2.5 MiB, doubling
 * as the size quadruples, up to 16 MiB.
 */
export function choosePieceLength(totalLength: number): number {
  let shift = 0
  for (const limit of AUTO_PIECE_SIZE_LIMITS) {
    if (limit >= totalLength) break
    shift++
  }
  return BLOCK_SIZE * 2 ** shift
}

/** Options of {@link createTorrent}. */
export interface CreateTorrentOptions {
  /** Piece length in bytes: a power of two of at least 16 KiB. Default: chosen from the total size like libtorrent. */
  readonly pieceLength?: number
  /** Trackers: each string is a tier of its own, each array one tier (BEP 12). */
  readonly trackers?: readonly (string | readonly string[])[]
  /** BEP 19 web seed URLs. */
  readonly webSeeds?: readonly string[]
  readonly comment?: string
  readonly createdBy?: string
  /** Seconds since the Unix epoch; default now; `null` leaves it out. */
  readonly creationDate?: number | null
  /** BEP 27 private flag. */
  readonly private?: boolean
  /** Torrent name; default the base name of the source. */
  readonly name?: string
  /**
   * Only these files of the source folder (absolute, or relative to it), instead of all of them. Each must be a
   * regular file inside the folder; they are laid out in the order a whole folder is.
   */
  readonly files?: readonly string[]
  /** Bytes hashed so far and in total, after each chunk. */
  readonly onProgress?: (hashedBytes: number, totalBytes: number) => void
  readonly signal?: AbortSignal
}

/** A torrent made by {@link createTorrent}. */
export interface CreatedTorrent {
  /** The .torrent file's bytes. */
  readonly torrent: Buffer
  /** The torrent as {@link parseTorrent} reads it. */
  readonly info: TorrentInfo
}

interface SourceFile {
  readonly absolute: string
  /** Path inside the torrent, without the torrent's name. */
  readonly components: readonly string[]
  readonly length: number
}

/**
 * Makes a v1 torrent of a file (single-file torrent) or a folder (multi-file torrent, files in byte order of their
 * paths, symbolic links and special files left out). Files are hashed as a stream, so memory does not grow with
 * their size.
 *
 * @throws {MetainfoError} `NO_FILES_TO_ADD`, `EMPTY_TORRENT`, `INVALID_OPTION`, `SOURCE_UNREADABLE`,
 *   `SOURCE_CHANGED`; an `AbortError` when `signal` aborts.
 * @example
 * ```ts
 * const { torrent, info } = await createTorrent('/data/album', { trackers: ['udp://tracker.example:6969'] })
 * await writeFile('album.torrent', torrent)
 * ```
 */
export async function createTorrent(
  source: string,
  options: CreateTorrentOptions = {},
): Promise<CreatedTorrent> {
  const root = path.resolve(source)
  const rootStat = await stat(root).catch((err: unknown) => {
    throw new MetainfoError('SOURCE_UNREADABLE', { path: root, cause: err })
  })
  const single = rootStat.isFile()
  if (single && options.files !== undefined) {
    throw new MetainfoError('INVALID_OPTION', { option: 'files', reason: 'the source is a file' })
  }
  const files = single
    ? [{ absolute: root, components: [], length: rootStat.size }]
    : options.files !== undefined
      ? await chosenFiles(root, options.files)
      : await listFiles(root, [], options.signal)
  if (files.length === 0) throw new MetainfoError('NO_FILES_TO_ADD', { path: root })
  const totalLength = files.reduce((sum, file) => sum + file.length, 0)
  if (totalLength === 0) throw new MetainfoError('EMPTY_TORRENT', { path: root })

  const pieceLength = options.pieceLength ?? choosePieceLength(totalLength)
  if (
    !Number.isSafeInteger(pieceLength) ||
    pieceLength < BLOCK_SIZE ||
    (pieceLength & (pieceLength - 1)) !== 0
  ) {
    throw new MetainfoError('INVALID_OPTION', { option: 'pieceLength', value: pieceLength })
  }
  const name = options.name ?? path.basename(root)
  if (name === '') throw new MetainfoError('INVALID_OPTION', { option: 'name' })

  const pieces = await hashPieces(files, pieceLength, totalLength, options)
  const info: Record<string, Encodable | undefined> = {
    name,
    'piece length': pieceLength,
    pieces,
    private: options.private ? 1 : undefined,
  }
  if (single) info.length = totalLength
  else info.files = files.map((file) => ({ length: file.length, path: [...file.components] }))

  const tiers = (options.trackers ?? []).map((tier) => (typeof tier === 'string' ? [tier] : [...tier]))
  const allTrackers = tiers.flat()
  const creationDate =
    options.creationDate === undefined ? Math.floor(Date.now() / 1000) : options.creationDate
  const torrent = encode({
    announce: allTrackers[0],
    // libtorrent writes announce-list only when there is more than one tracker.
    'announce-list': allTrackers.length > 1 ? tiers.filter((tier) => tier.length > 0) : undefined,
    comment: options.comment,
    'created by': options.createdBy,
    'creation date': creationDate ?? undefined,
    info,
    'url-list': options.webSeeds && options.webSeeds.length > 0 ? [...options.webSeeds] : undefined,
  })
  return { torrent, info: parseTorrent(torrent) }
}

async function listFiles(
  folder: string,
  prefix: readonly string[],
  signal?: AbortSignal,
): Promise<SourceFile[]> {
  signal?.throwIfAborted()
  const entries = await readdir(folder, { withFileTypes: true }).catch((err: unknown) => {
    throw new MetainfoError('SOURCE_UNREADABLE', { path: folder, cause: err })
  })
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
  const out: SourceFile[] = []
  for (const entry of entries) {
    const absolute = path.join(folder, entry.name)
    const components = [...prefix, entry.name]
    if (entry.isDirectory()) out.push(...(await listFiles(absolute, components, signal)))
    else if (entry.isFile()) out.push({ absolute, components, length: (await lstat(absolute)).size })
  }
  return out
}

async function chosenFiles(root: string, chosen: readonly string[]): Promise<SourceFile[]> {
  const out = new Map<string, SourceFile>()
  for (const file of chosen) {
    const absolute = path.resolve(root, file)
    const relative = path.relative(root, absolute)
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new MetainfoError('INVALID_OPTION', {
        option: 'files',
        path: absolute,
        reason: 'outside the source',
      })
    }
    const info = await lstat(absolute).catch((err: unknown) => {
      throw new MetainfoError('SOURCE_UNREADABLE', { path: absolute, cause: err })
    })
    if (!info.isFile()) throw new MetainfoError('SOURCE_UNREADABLE', { path: absolute, reason: 'not a file' })
    out.set(absolute, { absolute, components: relative.split(path.sep), length: info.size })
  }
  // component by component, the order listFiles walks a folder in
  return [...out.values()].sort((a, b) => {
    for (let i = 0; i < Math.min(a.components.length, b.components.length); i++) {
      const order = Buffer.compare(Buffer.from(a.components[i] ?? ''), Buffer.from(b.components[i] ?? ''))
      if (order !== 0) return order
    }
    return a.components.length - b.components.length
  })
}

/** SHA-1 of every piece, concatenated, reading the files once in order. */
async function hashPieces(
  files: readonly SourceFile[],
  pieceLength: number,
  totalLength: number,
  options: CreateTorrentOptions,
): Promise<Buffer> {
  const pieceCount = Math.ceil(totalLength / pieceLength)
  const out = Buffer.alloc(pieceCount * 20)
  let piece = 0
  let hash: Hash = createHash('sha1')
  let inPiece = 0
  let hashed = 0
  for (const file of files) {
    let read = 0
    const stream = createReadStream(file.absolute, {
      highWaterMark: READ_CHUNK_BYTES,
      signal: options.signal,
    })
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (read + chunk.length > file.length) break
        read += chunk.length
        let at = 0
        while (at < chunk.length) {
          const take = Math.min(chunk.length - at, pieceLength - inPiece)
          hash.update(chunk.subarray(at, at + take))
          at += take
          inPiece += take
          if (inPiece === pieceLength) {
            hash.digest().copy(out, piece++ * 20)
            hash = createHash('sha1')
            inPiece = 0
          }
        }
        hashed += chunk.length
        options.onProgress?.(hashed, totalLength)
      }
    } catch (err) {
      if (options.signal?.aborted) throw err
      throw new MetainfoError('SOURCE_UNREADABLE', { path: file.absolute, cause: err })
    }
    if (read !== file.length) {
      throw new MetainfoError('SOURCE_CHANGED', { path: file.absolute, expected: file.length, read })
    }
  }
  if (inPiece > 0) hash.digest().copy(out, piece++ * 20)
  return out
}
