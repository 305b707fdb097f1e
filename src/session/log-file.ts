import {
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs'
import type { LogSink } from '../common/index.js'

/**
 * A log sink appending JSON lines to `path`. When the file would grow beyond `maxBytes` it is renamed to
 * `<path>.1` (replacing the previous one) and a new file begins, so logs take at most twice `maxBytes`.
 * Writes are synchronous so nothing is lost when the process exits.
 */
export function fileLogSink(path: string, maxBytes: number): LogSink & { close(): void } {
  let fd: number | undefined = openSync(path, 'a', 0o600)
  let size = fstatSync(fd).size
  const sink = (_record: unknown, line: string): void => {
    if (fd === undefined) return
    const bytes = Buffer.from(`${line}\n`, 'utf8')
    if (size + bytes.length > maxBytes && size > 0) {
      closeSync(fd)
      renameSync(path, `${path}.1`)
      fd = openSync(path, 'a', 0o600)
      size = 0
    }
    writeSync(fd, bytes)
    size += bytes.length
  }
  return Object.assign(sink, {
    close(): void {
      if (fd !== undefined) closeSync(fd)
      fd = undefined
    },
  })
}

/**
 * The last `maxLines` lines of a text file, read backwards from its end (never the whole file). A missing file
 * gives an empty string.
 */
export function tailFile(path: string, maxLines: number): string {
  if (!existsSync(path) || maxLines <= 0) return ''
  const size = statSync(path).size
  const fd = openSync(path, 'r')
  try {
    const chunks: Buffer[] = []
    let position = size
    let newlines = 0
    const chunkSize = 64 * 1024
    // one newline more than lines wanted, as the file normally ends with a newline
    while (position > 0 && newlines <= maxLines) {
      const length = Math.min(chunkSize, position)
      position -= length
      const chunk = Buffer.alloc(length)
      readSync(fd, chunk, 0, length, position)
      chunks.unshift(chunk)
      for (const byte of chunk) if (byte === 0x0a) newlines++
    }
    const lines = Buffer.concat(chunks).toString('utf8').split('\n')
    if (lines.at(-1) === '') lines.pop()
    return lines.slice(-maxLines).join('\n')
  } finally {
    closeSync(fd)
  }
}
