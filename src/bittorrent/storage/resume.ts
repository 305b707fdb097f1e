import { type BencodeDict, type BencodeValue, decode, encode } from '../../bencode/index.js'
import { StorageError } from './types.js'

/** Format name and version written in resume data. */
export const RESUME_FORMAT = 'tribler-ts resume file'
export const RESUME_VERSION = 1

/** The content of resume data. */
export interface ResumeData {
  pieceCount: number
  /** Have-bitfield, high bit first. */
  pieces: Uint8Array
  priorities: readonly number[]
  /** Per file: size in bytes (-1 if missing) and mtime in whole seconds, as libtorrent's `file sizes`. */
  files: ReadonlyArray<readonly [number, number]>
}

/** Encodes resume data as a bencoded dictionary. */
export function encodeResumeData(data: ResumeData): Buffer {
  return encode({
    'file-format': RESUME_FORMAT,
    'file-version': RESUME_VERSION,
    'num pieces': data.pieceCount,
    pieces: data.pieces,
    'file priority': [...data.priorities],
    'file sizes': data.files.map(([size, mtime]) => [size, mtime]),
  })
}

/**
 * Decodes resume data and checks it fits a torrent of `pieceCount` pieces and `fileCount` files.
 * @throws StorageError `INVALID_RESUME_DATA`
 */
export function decodeResumeData(bytes: Uint8Array, pieceCount: number, fileCount: number): ResumeData {
  const bad = (reason: string, cause?: unknown): StorageError =>
    new StorageError('INVALID_RESUME_DATA', cause === undefined ? { reason } : { reason, cause })
  let value: BencodeValue
  try {
    value = decode(bytes, { strict: false })
  } catch (err) {
    throw bad('not bencode', err)
  }
  if (typeof value !== 'object' || value instanceof Uint8Array || Array.isArray(value))
    throw bad('not a dictionary')
  const dict = value as BencodeDict
  const text = dict['file-format']
  if (!(text instanceof Uint8Array) || Buffer.from(text).toString() !== RESUME_FORMAT)
    throw bad('unknown format')
  if (dict['file-version'] !== RESUME_VERSION) throw bad('unknown version')
  if (dict['num pieces'] !== pieceCount) throw bad('piece count differs')
  const pieces = dict.pieces
  if (!(pieces instanceof Uint8Array) || pieces.length !== Math.ceil(pieceCount / 8))
    throw bad('bad bitfield')
  const priorities = dict['file priority']
  if (!Array.isArray(priorities) || priorities.length !== fileCount || !priorities.every(isSmallInt)) {
    throw bad('bad priorities')
  }
  const sizes = dict['file sizes']
  if (!Array.isArray(sizes) || sizes.length !== fileCount) throw bad('bad file sizes')
  const files: Array<[number, number]> = []
  for (const entry of sizes) {
    if (
      !Array.isArray(entry) ||
      entry.length !== 2 ||
      typeof entry[0] !== 'number' ||
      typeof entry[1] !== 'number'
    ) {
      throw bad('bad file size entry')
    }
    files.push([entry[0], entry[1]])
  }
  return { pieceCount, pieces: new Uint8Array(pieces), priorities: priorities as number[], files }
}

function isSmallInt(v: BencodeValue): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 7
}
