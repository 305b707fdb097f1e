import { createHash } from 'node:crypto'
import type { BencodeDict, BencodeValue } from '../bencode/index.js'
import { BencodeError, decode, locate } from '../bencode/index.js'
import { toHex } from '../common/index.js'
import { PathAllocator, sanitizeComponent, strictTextOf, textOf } from './path-safety.js'
import type { TorrentFile, TorrentInfo } from './types.js'
import { MetainfoError } from './types.js'

/** Largest .torrent accepted by default (libtorrent's default limit is 10 MB; some real torrents exceed it). */
export const DEFAULT_MAX_TORRENT_BYTES = 64 * 1024 * 1024
const MAX_PIECE_LENGTH = 2 ** 30
const SHA1_LENGTH = 20
const MAX_FILES = 1_000_000

/** Options of {@link parseTorrent}. */
export interface ParseTorrentOptions {
  /** Largest input accepted, in bytes (default 64 MiB). */
  readonly maxBytes?: number
}

/**
 * Parses a .torrent file (v1, or the v1 side of a hybrid v1/v2 torrent). The infohash is the SHA-1 of the `info`
 * dictionary's bytes exactly as they appear in the file. Dictionaries with unsorted keys are accepted, since real
 * torrents have them.
 *
 * @throws {MetainfoError} with a code for every malformed case; `V2_NOT_SUPPORTED` for pure v2 torrents.
 * @example
 * ```ts
 * const torrent = parseTorrent(await readFile('ubuntu.torrent'))
 * console.log(torrent.infoHashHex, torrent.files.filter((f) => !f.padding).map((f) => f.path))
 * ```
 */
export function parseTorrent(data: Uint8Array, options: ParseTorrentOptions = {}): TorrentInfo {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_TORRENT_BYTES
  if (data.length > maxBytes) throw new MetainfoError('TOO_LARGE', { length: data.length, maxBytes })
  const root = decodeOrThrow(data, maxBytes)
  if (!isDict(root)) throw new MetainfoError('NOT_A_DICTIONARY')
  if (root.info === undefined) throw new MetainfoError('MISSING_INFO')
  const span = locate(data, ['info'], { strict: false, maxBytes })!
  return buildInfo(data.subarray(span.start, span.end), root.info, root)
}

/**
 * Parses a bare info dictionary, as received over `ut_metadata` (BEP 9), with the trackers and web seeds known
 * from elsewhere (the magnet link). When `expectedInfoHash` is given, the SHA-1 of `infoBytes` must match it.
 *
 * @throws {MetainfoError} `INFO_HASH_MISMATCH` and every code of {@link parseTorrent}.
 */
export function parseInfoDictionary(
  infoBytes: Uint8Array,
  extra: {
    trackers?: readonly (readonly string[])[]
    webSeeds?: readonly string[]
    expectedInfoHash?: Uint8Array
  } = {},
): TorrentInfo {
  const info = decodeOrThrow(infoBytes, DEFAULT_MAX_TORRENT_BYTES)
  const torrent = buildInfo(infoBytes, info, Object.create(null))
  if (extra.expectedInfoHash !== undefined && toHex(extra.expectedInfoHash) !== torrent.infoHashHex) {
    throw new MetainfoError('INFO_HASH_MISMATCH', {
      expected: toHex(extra.expectedInfoHash),
      actual: torrent.infoHashHex,
    })
  }
  return {
    ...torrent,
    trackers: normalizeTiers((extra.trackers ?? []).map((tier) => [...tier])),
    webSeeds: normalizeUrls([...(extra.webSeeds ?? [])], WEB_SEED_PROTOCOLS),
  }
}

function decodeOrThrow(data: Uint8Array, maxBytes: number): BencodeValue {
  try {
    return decode(data, { strict: false, maxBytes })
  } catch (err) {
    if (err instanceof BencodeError) {
      throw new MetainfoError('INVALID_BENCODE', { reason: err.code, offset: err.details.offset, cause: err })
    }
    throw err
  }
}

function buildInfo(infoBytes: Uint8Array, info: BencodeValue, root: BencodeDict): TorrentInfo {
  if (!isDict(info)) throw new MetainfoError('INVALID_INFO', { reason: 'not a dictionary' })
  const infoHash = createHash('sha1').update(infoBytes).digest()
  const infoHashHex = infoHash.toString('hex')
  const hybrid = info['meta version'] === 2
  if (info.pieces === undefined && (hybrid || info['file tree'] !== undefined)) {
    throw new MetainfoError('V2_NOT_SUPPORTED', { infoHash: infoHashHex })
  }

  const pieceLength = info['piece length']
  if (typeof pieceLength !== 'number' || !Number.isInteger(pieceLength) || pieceLength <= 0) {
    throw new MetainfoError('INVALID_PIECE_LENGTH', { value: String(pieceLength) })
  }
  if (pieceLength > MAX_PIECE_LENGTH) throw new MetainfoError('INVALID_PIECE_LENGTH', { value: pieceLength })

  const rawName = preferUtf8(info, 'name')
  if (rawName === undefined) throw new MetainfoError('MISSING_NAME')
  const displayName = textOf(rawName)
  // A name that sanitizes to nothing still needs a folder or file name of its own.
  const name = sanitizeComponent(displayName) ?? infoHashHex

  const files =
    info.files !== undefined ? multiFile(info, name, displayName) : singleFile(info, name, displayName)
  const totalLength = files.reduce((sum, file) => sum + file.length, 0)
  if (!Number.isSafeInteger(totalLength))
    throw new MetainfoError('INVALID_FILE_LENGTH', { reason: 'total too large' })
  if (totalLength === 0) throw new MetainfoError('EMPTY_TORRENT')

  const pieceBytes = info.pieces
  if (!(pieceBytes instanceof Uint8Array) || pieceBytes.length % SHA1_LENGTH !== 0) {
    throw new MetainfoError('INVALID_PIECES', {
      length: pieceBytes instanceof Uint8Array ? pieceBytes.length : null,
    })
  }
  const pieceCount = pieceBytes.length / SHA1_LENGTH
  const expectedPieces = Math.ceil(totalLength / pieceLength)
  if (pieceCount !== expectedPieces) {
    throw new MetainfoError('PIECE_COUNT_MISMATCH', { pieces: pieceCount, expected: expectedPieces })
  }
  const pieces: Uint8Array[] = new Array(pieceCount)
  for (let i = 0; i < pieceCount; i++) pieces[i] = pieceBytes.subarray(i * SHA1_LENGTH, (i + 1) * SHA1_LENGTH)

  const comment = optionalText(root, 'comment')
  const createdBy = optionalText(root, 'created by')
  const creationDate = root['creation date']
  return {
    infoHash,
    infoHashHex,
    name,
    displayName,
    pieceLength,
    pieceCount,
    pieces,
    files,
    totalLength,
    trackers: trackerTiers(root),
    webSeeds: webSeeds(root),
    private: info.private === 1,
    infoBytes,
    hybrid,
    ...(comment !== undefined && { comment }),
    ...(createdBy !== undefined && { createdBy }),
    ...(typeof creationDate === 'number' && creationDate >= 0 && { creationDate }),
  }
}

function singleFile(info: BencodeDict, name: string, displayName: string): TorrentFile[] {
  const length = fileLength(info.length, 0)
  return [
    {
      index: 0,
      path: name,
      pathComponents: [name],
      displayPath: displayName,
      length,
      offset: 0,
      padding: attributesOf(info).includes('p'),
      attributes: attributesOf(info),
    },
  ]
}

function multiFile(info: BencodeDict, name: string, displayName: string): TorrentFile[] {
  const list = info.files
  if (!Array.isArray(list)) throw new MetainfoError('MISSING_FILES', { reason: 'files is not a list' })
  if (list.length === 0) throw new MetainfoError('MISSING_FILES', { reason: 'empty file list' })
  if (list.length > MAX_FILES)
    throw new MetainfoError('INVALID_FILE', { reason: 'too many files', count: list.length })
  if (info.length !== undefined) throw new MetainfoError('INVALID_INFO', { reason: 'both length and files' })
  const allocator = new PathAllocator()
  const files: TorrentFile[] = []
  let offset = 0
  for (let index = 0; index < list.length; index++) {
    const entry = list[index]
    if (!isDict(entry)) throw new MetainfoError('INVALID_FILE', { index, reason: 'not a dictionary' })
    const length = fileLength(entry.length, index)
    const attributes = attributesOf(entry)
    const components = pathOf(entry, index)
    const safe = components.map(sanitizeComponent).filter((c): c is string => c !== undefined)
    const pathComponents = allocator.allocate([name, ...(safe.length > 0 ? safe : ['_'])])
    files.push({
      index,
      path: pathComponents.join('/'),
      pathComponents,
      displayPath: [displayName, ...components].join('/'),
      length,
      offset,
      padding: attributes.includes('p'),
      attributes,
    })
    offset += length
  }
  return files
}

function pathOf(entry: BencodeDict, index: number): string[] {
  const utf8 = entry['path.utf-8']
  if (Array.isArray(utf8) && utf8.length > 0 && utf8.every((c) => c instanceof Uint8Array)) {
    const texts = utf8.map((c) => strictTextOf(c as Uint8Array))
    if (texts.every((t) => t !== undefined)) return texts as string[]
  }
  const path = entry.path
  if (!Array.isArray(path) || path.length === 0) throw new MetainfoError('INVALID_PATH', { index })
  return path.map((component) => {
    if (!(component instanceof Uint8Array)) throw new MetainfoError('INVALID_PATH', { index })
    return textOf(component)
  })
}

function fileLength(value: BencodeValue | undefined, index: number): number {
  if (typeof value !== 'number' || value < 0) {
    throw new MetainfoError('INVALID_FILE_LENGTH', {
      index,
      value: value === undefined ? null : String(value),
    })
  }
  return value
}

function attributesOf(dict: BencodeDict): string {
  const attr = dict.attr
  return attr instanceof Uint8Array ? Buffer.from(attr).toString('latin1') : ''
}

/** `key.utf-8` when it is valid UTF-8, else `key`. */
function preferUtf8(dict: BencodeDict, key: string): Uint8Array | undefined {
  const utf8 = dict[`${key}.utf-8`]
  if (utf8 instanceof Uint8Array && strictTextOf(utf8) !== undefined) return utf8
  const plain = dict[key]
  return plain instanceof Uint8Array ? plain : undefined
}

function optionalText(dict: BencodeDict, key: string): string | undefined {
  const bytes = preferUtf8(dict, key)
  return bytes === undefined ? undefined : textOf(bytes)
}

const TRACKER_PROTOCOLS = new Set(['http:', 'https:', 'udp:', 'ws:', 'wss:'])
const WEB_SEED_PROTOCOLS = new Set(['http:', 'https:'])

function trackerTiers(root: BencodeDict): string[][] {
  const list = root['announce-list']
  // BEP 12: a client that understands announce-list ignores announce.
  if (Array.isArray(list)) {
    const tiers = normalizeTiers(list.map((tier) => (Array.isArray(tier) ? tier.map(urlText) : [])))
    if (tiers.length > 0) return tiers
  }
  return normalizeTiers([[urlText(root.announce)]])
}

function webSeeds(root: BencodeDict): string[] {
  const value = root['url-list']
  const list = Array.isArray(value) ? value.map(urlText) : [urlText(value)]
  return normalizeUrls(list, WEB_SEED_PROTOCOLS)
}

function urlText(value: BencodeValue | undefined): string | undefined {
  return value instanceof Uint8Array ? textOf(value).trim() : undefined
}

/** Drops invalid URLs, duplicates across tiers and empty tiers. */
export function normalizeTiers(tiers: readonly (readonly (string | undefined)[])[]): string[][] {
  const seen = new Set<string>()
  const out: string[][] = []
  for (const tier of tiers) {
    const urls = normalizeUrls(tier, TRACKER_PROTOCOLS).filter((url) => !seen.has(url) && seen.add(url))
    if (urls.length > 0) out.push(urls)
  }
  return out
}

function normalizeUrls(list: readonly (string | undefined)[], protocols: ReadonlySet<string>): string[] {
  const out: string[] = []
  for (const text of list) {
    if (text === undefined || text === '' || out.includes(text)) continue
    if (!URL.canParse(text) || !protocols.has(new URL(text).protocol)) continue
    out.push(text)
  }
  return out
}

function isDict(value: BencodeValue | undefined): value is BencodeDict {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
  )
}
