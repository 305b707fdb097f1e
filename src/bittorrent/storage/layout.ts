import { type FileSpan, StorageError, type StorageLayout } from './types.js'

/** Bytes in piece `index` (the last piece may be shorter). */
export function pieceSize(layout: StorageLayout, index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= layout.pieceCount) {
    throw new StorageError('INVALID_BLOCK', { piece: index })
  }
  return Math.min(layout.pieceLength, layout.totalLength - index * layout.pieceLength)
}

/**
 * The file runs covering `length` bytes at `begin` of piece `index`, in order. Zero-length files cover nothing.
 * Throws `INVALID_BLOCK` for a range outside the piece.
 */
export function mapBlock(layout: StorageLayout, index: number, begin: number, length: number): FileSpan[] {
  const size = pieceSize(layout, index)
  if (
    !Number.isInteger(begin) ||
    !Number.isInteger(length) ||
    begin < 0 ||
    length <= 0 ||
    begin + length > size
  ) {
    throw new StorageError('INVALID_BLOCK', { piece: index, begin, length })
  }
  const start = index * layout.pieceLength + begin
  const end = start + length
  const files = layout.files
  // First file whose end is past `start` (binary search on offsets).
  let lo = 0
  let hi = files.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const f = files[mid]!
    if (f.offset + f.length <= start) lo = mid + 1
    else hi = mid
  }
  const spans: FileSpan[] = []
  for (let i = lo; i < files.length; i++) {
    const f = files[i]!
    if (f.offset >= end) break
    if (f.length === 0) continue
    const from = Math.max(start, f.offset)
    const to = Math.min(end, f.offset + f.length)
    if (to <= from) continue
    spans.push({ fileIndex: i, fileOffset: from - f.offset, blockOffset: from - start, length: to - from })
  }
  return spans
}

/** The pieces that hold bytes of file `fileIndex` (none for an empty file): `[first, last]` inclusive. */
export function filePieces(layout: StorageLayout, fileIndex: number): [number, number] | undefined {
  const f = layout.files[fileIndex]
  if (f === undefined || f.length === 0) return undefined
  return [
    Math.floor(f.offset / layout.pieceLength),
    Math.floor((f.offset + f.length - 1) / layout.pieceLength),
  ]
}
