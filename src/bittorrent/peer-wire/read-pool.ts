import type { OnReadOpts, Socket } from 'node:net'

/** Bytes a pooled socket read may fill (Node's own read size). */
export const POOLED_READ_BYTES = 64 * 1024
/** Read buffers kept for reuse across every socket of the process (4 MiB). */
const MAX_FREE = 64
/**
 * Reads shorter than this are copied into a buffer of their own size and the pool buffer serves the next read: a
 * chunk pins its whole buffer while it waits to be parsed, so a peer sending a message a few bytes per segment
 * would otherwise hold 64 KiB per segment. Longer reads pin at most twice their bytes.
 */
export const MIN_POOLED_READ_BYTES = POOLED_READ_BYTES / 2

const free: Buffer[] = []
/** Chunks handed out by pooled reads and not given back yet. */
const lent = new WeakSet<Buffer>()

/**
 * Read options for `net.connect` that take socket reads from a pool of buffers instead of a fresh allocation per
 * read, so a download does not leave a gigabyte of read buffers behind for the garbage collector. The socket stays
 * an ordinary Duplex: each read is pushed as a chunk. A chunk's buffer goes back to the pool only when its one
 * consumer hands it back with {@link releaseRead} (the peer wire does, once it parsed every byte of it and kept no
 * view of it); a chunk never handed back is simply garbage collected.
 *
 * @example
 * ```ts
 * const socket: net.Socket = net.connect({ host, port, onread: pooledReads(() => socket) })
 * ```
 */
export function pooledReads(socket: () => Socket): OnReadOpts {
  return {
    buffer: () => free.pop() ?? Buffer.allocUnsafeSlow(POOLED_READ_BYTES),
    callback: (bytes: number, buf: Uint8Array): boolean => {
      if (bytes < MIN_POOLED_READ_BYTES) {
        const copy = Buffer.allocUnsafeSlow(bytes)
        copy.set(buf.subarray(0, bytes))
        if (free.length < MAX_FREE) free.push(buf as Buffer)
        return socket().push(copy)
      }
      const chunk = (buf as Buffer).subarray(0, bytes)
      lent.add(chunk)
      return socket().push(chunk)
    },
  }
}

/** Whether `chunk` came from a pooled read and may be handed back with {@link releaseRead}. */
export function isPooledRead(chunk: Buffer): boolean {
  return lent.has(chunk)
}

/**
 * Hands a chunk of a pooled read back: its buffer is filled by a later read. Only the chunk's one consumer may call
 * this, once nothing refers to the chunk or a view of it any more. Chunks that did not come from a pooled read are
 * ignored.
 */
export function releaseRead(chunk: Buffer): void {
  if (!lent.delete(chunk)) return
  if (free.length < MAX_FREE) free.push(Buffer.from(chunk.buffer, chunk.byteOffset, POOLED_READ_BYTES))
}
