import { createHash } from 'node:crypto'
import type { Encodable } from '../bencode/index.js'
import { encode } from '../bencode/index.js'

/** A .torrent for tests: `info` fields override a valid single-file torrent of `length` bytes. */
export function torrentBytes(
  info: Record<string, Encodable | undefined> = {},
  root: Record<string, Encodable | undefined> = {},
): Buffer {
  const pieceLength = typeof info['piece length'] === 'number' ? info['piece length'] : 16384
  const total = totalOf(info)
  const pieces = 'pieces' in info ? undefined : Buffer.alloc(Math.ceil(total / pieceLength) * 20, 0xab)
  return encode({
    announce: 'http://tracker.example/announce',
    ...root,
    info: {
      name: 'file.bin',
      'piece length': pieceLength,
      pieces,
      ...(info.files ? {} : { length: total }),
      ...info,
    },
  })
}

function totalOf(info: Record<string, Encodable | undefined>): number {
  if (Array.isArray(info.files)) {
    return (info.files as { length?: number }[]).reduce((sum, file) => sum + (file.length ?? 0), 0)
  }
  return typeof info.length === 'number' ? info.length : 40000
}

/** SHA-1 hex of bytes. */
export function sha1Hex(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex')
}

/** The `code` of the error `fn` throws when it is an instance of `errorClass` (others propagate), else undefined. */
export function codeOf<Code extends string>(
  fn: () => unknown,
  errorClass: abstract new (...args: never[]) => { code: Code },
): Code | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof errorClass) return err.code
    throw err
  }
  return undefined
}
