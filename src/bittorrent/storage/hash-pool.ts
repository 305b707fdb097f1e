import { createHash } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import { logger } from '../../common/index.js'

const log = logger('bittorrent:storage')

/**
 * The worker's code, plain CommonJS run with `eval` so it needs no file of its own (the same under tsx and in
 * dist/) and no loader flags: it hashes the buffer it was handed and hands it back with the digest.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
parentPort.on('message', (m) => {
  const digest = createHash('sha1').update(new Uint8Array(m[1])).digest()
  const out = digest.buffer.slice(digest.byteOffset, digest.byteOffset + 20)
  parentPort.postMessage([m[0], m[1], out], [m[1]])
})
`

/** What {@link HashPool.sha1Piece} gives back. */
export interface HashedPiece {
  /** The SHA-1 digest, or undefined when the bytes were lost with a failed worker (fetch the piece again). */
  readonly digest: Buffer | undefined
  /** The piece's bytes, handed back: use this buffer from now on, not the one given. */
  readonly data: Buffer
}

interface Pending {
  readonly resolve: (piece: HashedPiece) => void
}

/**
 * SHA-1 of pieces on a worker thread, beside the thread that reads the sockets: a download at hundreds of MB/s
 * spends a third of its main-thread time hashing otherwise. A piece buffer that owns its whole `ArrayBuffer` (see
 * {@link allocPiece}) is moved to the worker and back without a copy; meanwhile the buffer given is empty
 * (detached), and the bytes come back as {@link HashedPiece.data}. Other buffers, and everything once the worker
 * failed, are hashed on the calling thread. The worker does not keep the process alive while idle.
 *
 * @example
 * ```ts
 * const piece = allocPiece(pieceLength)
 * // ... fill it ...
 * const { digest, data } = await sha1Pool.sha1Piece(piece)
 * if (digest?.equals(expected)) await storage.writeBlock(index, 0, data)
 * ```
 */
export class HashPool {
  #worker: Worker | undefined
  #failed = false
  #nextId = 0
  readonly #pending = new Map<number, Pending>()

  /** Whether pieces are hashed on the worker thread (false once it failed). */
  get usesWorker(): boolean {
    return !this.#failed
  }

  /** Hashes `data`, moving it to the worker when it can (see the class). Never rejects. */
  sha1Piece(data: Buffer): Promise<HashedPiece> {
    const buffer = data.buffer
    const worker =
      this.#failed ||
      !(buffer instanceof ArrayBuffer) ||
      data.byteOffset !== 0 ||
      data.byteLength !== buffer.byteLength
        ? undefined
        : (this.#worker ?? this.#start())
    if (worker === undefined || !(buffer instanceof ArrayBuffer)) {
      return Promise.resolve({ digest: hashNow(data), data })
    }
    const id = this.#nextId++
    if (this.#pending.size === 0) worker.ref()
    return new Promise((resolve) => {
      this.#pending.set(id, { resolve })
      worker.postMessage([id, buffer], [buffer])
    })
  }

  #start(): Worker | undefined {
    let worker: Worker
    try {
      // No flags of the parent (a TypeScript loader, say): the worker runs only the code above.
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        execArgv: [],
        resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
      })
    } catch (err) {
      this.#fail(err)
      return undefined
    }
    worker.unref()
    worker.on('message', (m: [number, ArrayBuffer, ArrayBuffer]) =>
      this.#done(m[0], { digest: Buffer.from(m[2]), data: Buffer.from(m[1]) }),
    )
    worker.on('error', (err) => this.#fail(err))
    worker.on('exit', (code) => {
      if (this.#worker === worker) this.#fail(new Error(`hash worker exited with code ${code}`))
    })
    this.#worker = worker
    return worker
  }

  #done(id: number, piece: HashedPiece): void {
    const pending = this.#pending.get(id)
    if (pending === undefined) return
    this.#pending.delete(id)
    if (this.#pending.size === 0) this.#worker?.unref()
    pending.resolve(piece)
  }

  /** The worker is gone, and with it the pieces it held: they are reported lost; later ones hash here. */
  #fail(err: unknown): void {
    if (this.#failed) return
    this.#failed = true
    const worker = this.#worker
    this.#worker = undefined
    log.warn('piece hashing runs on the main thread: the hash worker failed', { err })
    void worker?.terminate()
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const p of pending) p.resolve({ digest: undefined, data: Buffer.alloc(0) })
  }
}

function hashNow(data: Uint8Array): Buffer {
  return createHash('sha1').update(data).digest()
}

/** A piece buffer of `size` bytes that owns its `ArrayBuffer`, so {@link HashPool} can move it to its worker. */
export function allocPiece(size: number): Buffer {
  return Buffer.allocUnsafeSlow(size)
}

/** The process's hash pool: one worker, shared by every download. */
export const sha1Pool = new HashPool()
