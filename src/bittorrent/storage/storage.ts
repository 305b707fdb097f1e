import { createHash } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import * as fsp from 'node:fs/promises'
import path from 'node:path'
import { type AbortOptions, logger } from '../../common/index.js'
import { filePieces, mapBlock, pieceSize } from './layout.js'
import { decodeResumeData, encodeResumeData, type ResumeData } from './resume.js'
import { type CheckProgress, type FilePriority, StorageError, type StorageLayout } from './types.js'

const log = logger('bittorrent:storage')

/** Open file handles kept per torrent by default: enough that a torrent of a few hundred files never reopens one. */
export const DEFAULT_MAX_OPEN_FILES = 256

/** How storage opens files; tests inject one to simulate disk errors. */
export type OpenFile = (file: string, flags: number, mode?: number) => Promise<FileHandle>

/** Options of a {@link Storage}. */
export interface StorageOptions {
  layout: StorageLayout
  /** The download folder: every file lives under it. */
  downloadDir: string
  /** Names the part file `.<id>.parts` (use the info hash in hex). */
  id: string
  /** One per file (padding files included, ignored); default all 4. 0 skips a file. */
  priorities?: readonly FilePriority[]
  maxOpenFiles?: number
  openFile?: OpenFile
}

interface PooledHandle {
  handle: FileHandle
  writable: boolean
  busy: number
}

const PART_FILE = -1
/** Buffers joined into one `pwritev` at most (below every system's IOV_MAX). */
const MAX_WRITE_BUFFERS = 64
/** Bytes joined into one `pwritev` at most. */
const MAX_WRITE_BYTES = 16 * 1024 * 1024

interface QueuedWrite {
  readonly position: number
  readonly data: Uint8Array
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

/**
 * The files of one torrent on disk: blocks in and out, piece verification with SHA-1, skipped files kept out of the
 * folder (their share of boundary pieces goes to a sparse part file, as libtorrent does), resume data, recheck,
 * move and delete. Files are created lazily as sparse files. Every path is checked to stay inside the download
 * folder, symlinks included. Disk errors become a {@link StorageError} (`DISK_FULL`, `PERMISSION_DENIED`, ...).
 *
 * @example
 * ```ts
 * const storage = new Storage({ layout: torrent, downloadDir, id: torrent.infoHashHex })
 * await storage.writeBlock(0, 0, block)
 * if (await storage.verifyPiece(0)) wire.have(0)
 * ```
 */
export class Storage {
  readonly layout: StorageLayout
  readonly #id: string
  readonly #maxOpen: number
  readonly #open: OpenFile
  #downloadDir: string
  #realDownloadDir: string | undefined
  #priorities: FilePriority[]
  readonly #handles = new Map<number, PooledHandle>()
  readonly #opening = new Map<number, Promise<PooledHandle>>()
  /** Writes waiting for the writes in progress, by file (see {@link #queueWrite}). */
  #pendingWrites = new Map<number, QueuedWrite[]>()
  #writing = false
  /** Absolute paths of the files, by index, once computed and checked (see {@link filePath}). */
  #paths: Array<string | undefined> = []
  /**
   * Folders already created and found inside the download folder, and files already extended to their length: a
   * handle reopened after the pool let it go skips those calls (a torrent of many files reopens them often).
   */
  readonly #checkedDirs = new Set<string>()
  readonly #sizedFiles = new Set<number>()
  #closed = false

  constructor(opts: StorageOptions) {
    this.layout = opts.layout
    this.#downloadDir = path.resolve(opts.downloadDir)
    this.#id = opts.id
    this.#maxOpen = Math.max(1, opts.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES)
    this.#open = opts.openFile ?? ((file, flags, mode) => fsp.open(file, flags, mode))
    this.#priorities = this.#checkPriorities(opts.priorities)
  }

  get downloadDir(): string {
    return this.#downloadDir
  }

  /** The part file's path (it exists only while some piece spans a skipped file). */
  get partFilePath(): string {
    return path.join(this.#downloadDir, `.${this.#id}.parts`)
  }

  get filePriorities(): readonly FilePriority[] {
    return this.#priorities
  }

  /** The absolute path of file `fileIndex`, checked to stay inside the download folder. */
  filePath(fileIndex: number): string {
    const known = this.#paths[fileIndex]
    if (known !== undefined) return known
    const file = this.layout.files[fileIndex]
    if (file === undefined) throw new StorageError('INVALID_OPTION', { fileIndex })
    const full = path.resolve(this.#downloadDir, ...file.pathComponents)
    const relative = path.relative(this.#downloadDir, full)
    if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new StorageError('PATH_ESCAPE', { file: file.path })
    }
    this.#paths[fileIndex] = full
    return full
  }

  /**
   * Writes a block (padding bytes are dropped, skipped files' bytes go to the part file). `data` must stay unchanged
   * until the promise settles: writes to one file queue behind the one in progress and leave joined.
   */
  async writeBlock(index: number, begin: number, data: Uint8Array): Promise<void> {
    this.#checkOpen()
    const spans = mapBlock(this.layout, index, begin, data.length)
    const writes: Promise<void>[] = []
    for (const span of spans) {
      const file = this.layout.files[span.fileIndex]!
      if (file.padding) continue
      const chunk = data.subarray(span.blockOffset, span.blockOffset + span.length)
      if (this.#priorities[span.fileIndex] === 0) {
        writes.push(
          this.#queueWrite(PART_FILE, chunk, index * this.layout.pieceLength + begin + span.blockOffset),
        )
      } else {
        writes.push(this.#queueWrite(span.fileIndex, chunk, span.fileOffset))
      }
    }
    if (writes.length === 1) return writes[0]
    await Promise.all(writes)
  }

  /** Reads a block for seeding or hashing. Padding reads as zeros; data not on disk fails with `DATA_MISSING`. */
  async readBlock(index: number, begin: number, length: number): Promise<Buffer> {
    this.#checkOpen()
    const spans = mapBlock(this.layout, index, begin, length)
    const out = Buffer.alloc(length)
    for (const span of spans) {
      const file = this.layout.files[span.fileIndex]!
      if (file.padding) continue
      const target = out.subarray(span.blockOffset, span.blockOffset + span.length)
      if (this.#priorities[span.fileIndex] === 0) {
        await this.#io(PART_FILE, false, (h) =>
          readAll(h, target, index * this.layout.pieceLength + begin + span.blockOffset),
        )
      } else {
        await this.#io(span.fileIndex, false, (h) => readAll(h, target, span.fileOffset))
      }
    }
    return out
  }

  /** Reads a whole piece. */
  readPiece(index: number): Promise<Buffer> {
    return this.readBlock(index, 0, pieceSize(this.layout, index))
  }

  /** Whether piece `index` on disk hashes to its SHA-1. Missing data counts as a mismatch. */
  async verifyPiece(index: number): Promise<boolean> {
    let data: Buffer
    try {
      data = await this.readPiece(index)
    } catch (err) {
      if (err instanceof StorageError && err.code === 'DATA_MISSING') return false
      throw err
    }
    const expected = this.layout.pieces[index]!
    return createHash('sha1').update(data).digest().equals(expected)
  }

  /**
   * Hashes every piece (a forced recheck), reporting progress; returns the have-bitfield. Pieces that lie only in
   * skipped files are checked from the part file.
   */
  async recheck(
    opts: AbortOptions & { onProgress?: (progress: CheckProgress) => void } = {},
  ): Promise<Uint8Array> {
    const total = this.layout.pieceCount
    const have = new Uint8Array(Math.ceil(total / 8))
    for (let i = 0; i < total; i++) {
      opts.signal?.throwIfAborted()
      if (await this.verifyPiece(i)) have[i >> 3]! |= 0x80 >> (i & 7)
      opts.onProgress?.({ checkedPieces: i + 1, totalPieces: total })
    }
    return have
  }

  /** Changes file priorities. Data of pieces we have moves between files and the part file as needed. */
  async setFilePriorities(priorities: readonly FilePriority[], have?: Uint8Array): Promise<void> {
    this.#checkOpen()
    const next = this.#checkPriorities(priorities)
    const changed = next.map((p, i) => (p === 0) !== (this.#priorities[i] === 0))
    if (!changed.includes(true)) {
      this.#priorities = next
      return
    }
    // Move whole pieces we have, reading with the old priorities and writing with the new ones.
    const pieces = new Set<number>()
    changed.forEach((c, fileIndex) => {
      const range = c ? filePieces(this.layout, fileIndex) : undefined
      if (range === undefined) return
      for (let p = range[0]; p <= range[1]; p++) if (have !== undefined && hasBit(have, p)) pieces.add(p)
    })
    const saved = new Map<number, Buffer>()
    for (const p of pieces) saved.set(p, await this.readPiece(p))
    this.#priorities = next
    for (const [p, data] of saved) await this.writeBlock(p, 0, data)
    for (const [fileIndex, c] of changed.entries()) {
      if (c && next[fileIndex] === 0) await this.#removeFile(fileIndex)
    }
  }

  /**
   * Resume data for `have` (bencoded, like libtorrent's): the bitfield, priorities and each file's size and mtime,
   * so {@link restore} can trust it without hashing when nothing changed.
   */
  async resumeData(have: Uint8Array): Promise<Buffer> {
    const files: Array<[number, number]> = []
    for (let i = 0; i < this.layout.files.length; i++) files.push(await this.#statFile(i))
    const data: ResumeData = {
      pieces: have,
      priorities: this.#priorities,
      files,
      pieceCount: this.layout.pieceCount,
    }
    return encodeResumeData(data)
  }

  /**
   * The have-bitfield after a restart. With valid resume data whose files are unchanged (same size and mtime) it
   * is trusted as is; otherwise (no or bad resume data, a changed or missing file, or `forceRecheck`) every piece is
   * hashed with progress reports.
   */
  async restore(
    resume: Uint8Array | undefined,
    opts: AbortOptions & { forceRecheck?: boolean; onProgress?: (progress: CheckProgress) => void } = {},
  ): Promise<{ have: Uint8Array; rechecked: boolean }> {
    if (resume !== undefined && opts.forceRecheck !== true) {
      let data: ResumeData | undefined
      try {
        data = decodeResumeData(resume, this.layout.pieceCount, this.layout.files.length)
      } catch (err) {
        log.debug('resume data rejected', { err })
      }
      if (data !== undefined) {
        this.#priorities = data.priorities.map(toPriority)
        let unchanged = true
        for (let i = 0; i < this.layout.files.length && unchanged; i++) {
          const [size, mtime] = await this.#statFile(i)
          const [savedSize, savedMtime] = data.files[i]!
          unchanged = size === savedSize && mtime === savedMtime
        }
        if (unchanged) return { have: data.pieces, rechecked: false }
      }
    }
    return { have: await this.recheck(opts), rechecked: true }
  }

  /** Moves every file (and the part file) to `newDir`, keeping the layout; falls back to copying across devices. */
  async move(newDir: string): Promise<void> {
    this.#checkOpen()
    await this.#closeHandles()
    const target = path.resolve(newDir)
    const moves: Array<[string, string]> = []
    for (let i = 0; i < this.layout.files.length; i++) {
      if (this.layout.files[i]!.padding) continue
      const from = this.filePath(i)
      moves.push([from, path.join(target, path.relative(this.#downloadDir, from))])
    }
    moves.push([this.partFilePath, path.join(target, path.basename(this.partFilePath))])
    for (const [from, to] of moves) {
      if (!(await exists(from))) continue
      await this.#fsCall(from, async () => {
        await fsp.mkdir(path.dirname(to), { recursive: true })
        try {
          await fsp.rename(from, to)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
          await fsp.copyFile(from, to)
          await fsp.unlink(from)
        }
      })
    }
    await this.#removeEmptyDirs()
    this.#downloadDir = target
    this.#realDownloadDir = undefined
    this.#paths = []
    this.#checkedDirs.clear()
  }

  /** Deletes every file of the torrent and the part file, then empty folders the torrent created. */
  async deleteFiles(): Promise<void> {
    await this.#closeHandles()
    for (let i = 0; i < this.layout.files.length; i++) {
      if (!this.layout.files[i]!.padding) await this.#removeFile(i)
    }
    await fsp.rm(this.partFilePath, { force: true })
    await this.#removeEmptyDirs()
  }

  /** Closes open files. Later calls fail with `CLOSED`. */
  async close(): Promise<void> {
    this.#closed = true
    await this.#closeHandles()
  }

  // ---- internals

  #checkOpen(): void {
    if (this.#closed) throw new StorageError('CLOSED')
  }

  #checkPriorities(priorities: readonly FilePriority[] | undefined): FilePriority[] {
    const count = this.layout.files.length
    if (priorities === undefined) return new Array<FilePriority>(count).fill(4)
    if (priorities.length !== count || priorities.some((p) => !Number.isInteger(p) || p < 0 || p > 7)) {
      throw new StorageError('INVALID_OPTION', { reason: 'one priority 0..7 per file', files: count })
    }
    return [...priorities]
  }

  async #statFile(fileIndex: number): Promise<[number, number]> {
    const file = this.layout.files[fileIndex]!
    if (file.padding || this.#priorities[fileIndex] === 0) return [0, 0]
    try {
      const st = await fsp.stat(this.filePath(fileIndex))
      return [st.size, Math.floor(st.mtimeMs / 1000)]
    } catch {
      return [-1, 0]
    }
  }

  async #removeFile(fileIndex: number): Promise<void> {
    const pooled = this.#handles.get(fileIndex)
    if (pooled !== undefined) {
      this.#handles.delete(fileIndex)
      await pooled.handle.close()
    }
    this.#sizedFiles.delete(fileIndex)
    await fsp.rm(this.filePath(fileIndex), { force: true })
  }

  async #removeEmptyDirs(): Promise<void> {
    const dirs = new Set<string>()
    for (let i = 0; i < this.layout.files.length; i++) {
      let dir = path.dirname(this.filePath(i))
      while (dir !== this.#downloadDir && dir.startsWith(this.#downloadDir)) {
        dirs.add(dir)
        dir = path.dirname(dir)
      }
    }
    // Deepest first, so parents are empty by the time they are tried.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
      await fsp.rmdir(dir).catch(() => undefined)
    }
    this.#checkedDirs.clear()
  }

  async #realRoot(): Promise<string> {
    if (this.#realDownloadDir === undefined) {
      await fsp.mkdir(this.#downloadDir, { recursive: true })
      this.#realDownloadDir = await fsp.realpath(this.#downloadDir)
    }
    return this.#realDownloadDir
  }

  /**
   * Writes `data` at `position` of a file (or the part file). One batch of writes is in progress at a time: writes
   * that come meanwhile wait, then leave together, each file's neighbours joined into one `pwritev` and different
   * files written side by side. A download's blocks come faster than single writes finish, so waiting turns them
   * into a few large writes, and blocks of many files (pieces picked at random across a torrent of many files) are
   * joined as well as those of one file: a block written on its own costs about as much as a large write.
   */
  #queueWrite(fileIndex: number, data: Uint8Array, position: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const write = { position, data, resolve, reject }
      const queue = this.#pendingWrites.get(fileIndex)
      if (queue !== undefined) queue.push(write)
      else this.#pendingWrites.set(fileIndex, [write])
      if (!this.#writing) {
        this.#writing = true
        void this.#drainWrites()
      }
    })
  }

  async #drainWrites(): Promise<void> {
    while (this.#pendingWrites.size > 0) {
      // Taken now; writes that come while these run wait for the next batch.
      const batch = this.#pendingWrites
      this.#pendingWrites = new Map()
      await Promise.all([...batch].map(([fileIndex, writes]) => this.#writeFile(fileIndex, writes)))
    }
    this.#writing = false
  }

  async #writeFile(fileIndex: number, writes: QueuedWrite[]): Promise<void> {
    for (const run of writeRuns(writes)) {
      const buffers = run.map((w) => w.data)
      try {
        await this.#io(fileIndex, true, (h) => writevAll(h, buffers, run[0]!.position))
        for (const w of run) w.resolve()
      } catch (err) {
        for (const w of run) w.reject(err)
      }
    }
  }

  /** Runs `fn` with an open handle of file `fileIndex` (or the part file), opening it (pooled) if needed. */
  async #io<T>(fileIndex: number, write: boolean, fn: (handle: FileHandle) => Promise<T>): Promise<T> {
    const file = fileIndex === PART_FILE ? this.partFilePath : this.filePath(fileIndex)
    return this.#fsCall(file, async () => {
      const pooled = await this.#acquire(fileIndex, file, write)
      try {
        return await fn(pooled.handle)
      } finally {
        pooled.busy--
        // A handle the pool let go while it was in use (reopened for writing, or the storage closed) is closed by
        // its last user.
        if (pooled.busy === 0 && this.#handles.get(fileIndex) !== pooled) {
          await pooled.handle.close().catch(() => undefined)
        }
      }
    })
  }

  /**
   * One open at a time per file: concurrent reads and writes of a file share the handle being opened. The handle
   * comes back counted busy, so no eviction closes it between here and its use.
   */
  async #acquire(fileIndex: number, file: string, write: boolean): Promise<PooledHandle> {
    for (;;) {
      const opening = this.#opening.get(fileIndex)
      if (opening === undefined) break
      await opening.catch(() => undefined)
    }
    const run = this.#acquireNow(fileIndex, file, write)
    this.#opening.set(fileIndex, run)
    try {
      const pooled = await run
      if (this.#closed) {
        // Closed while opening: the handle must not outlive the storage.
        this.#handles.delete(fileIndex)
        pooled.busy--
        if (pooled.busy === 0) await pooled.handle.close().catch(() => undefined)
        throw new StorageError('CLOSED')
      }
      return pooled
    } finally {
      if (this.#opening.get(fileIndex) === run) this.#opening.delete(fileIndex)
    }
  }

  async #acquireNow(fileIndex: number, file: string, write: boolean): Promise<PooledHandle> {
    const existing = this.#handles.get(fileIndex)
    if (existing !== undefined && (existing.writable || !write)) {
      // Map order is the LRU order.
      this.#handles.delete(fileIndex)
      this.#handles.set(fileIndex, existing)
      existing.busy++
      return existing
    }
    if (existing !== undefined) {
      this.#handles.delete(fileIndex)
      if (existing.busy === 0) await existing.handle.close()
    }
    const dir = path.dirname(file)
    if (!this.#checkedDirs.has(dir)) {
      const root = await this.#realRoot()
      if (write) await fsp.mkdir(dir, { recursive: true })
      // A symlinked folder on the way out of the download folder is refused, and O_NOFOLLOW refuses a symlinked
      // file.
      let realDir: string
      try {
        realDir = await fsp.realpath(dir)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StorageError('DATA_MISSING', { file })
        throw err
      }
      if (realDir !== root && !realDir.startsWith(root + path.sep))
        throw new StorageError('PATH_ESCAPE', { file })
      this.#checkedDirs.add(dir)
    }
    const flags =
      (write ? fsConstants.O_RDWR | fsConstants.O_CREAT : fsConstants.O_RDONLY) | fsConstants.O_NOFOLLOW
    let handle: FileHandle
    try {
      handle = await this.#open(file, flags, 0o644)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' && write && this.#checkedDirs.delete(dir)) {
        // Its folder went away since it was checked: create and check it again.
        return this.#acquireNow(fileIndex, file, write)
      }
      if (code === 'ENOENT' && !write) throw new StorageError('DATA_MISSING', { file })
      if (code === 'ELOOP') throw new StorageError('PATH_ESCAPE', { file, reason: 'symlink' })
      throw err
    }
    if (write && fileIndex !== PART_FILE && !this.#sizedFiles.has(fileIndex)) {
      // Full length at once (sparse), so sizes match the torrent whatever order blocks come in.
      const length = this.layout.files[fileIndex]!.length
      const st = await handle.stat()
      if (st.size < length) await handle.truncate(length)
      this.#sizedFiles.add(fileIndex)
    }
    // Busy from the start: the eviction below must not pick the handle it was opened for.
    const pooled: PooledHandle = { handle, writable: write, busy: 1 }
    this.#handles.set(fileIndex, pooled)
    await this.#evict()
    return pooled
  }

  async #evict(): Promise<void> {
    for (const [index, pooled] of this.#handles) {
      if (this.#handles.size <= this.#maxOpen) return
      if (pooled.busy > 0) continue
      this.#handles.delete(index)
      await pooled.handle.close()
    }
  }

  async #closeHandles(): Promise<void> {
    const handles = [...this.#handles.values()]
    this.#handles.clear()
    this.#checkedDirs.clear()
    this.#sizedFiles.clear()
    await Promise.all(handles.map((h) => h.handle.close().catch(() => undefined)))
  }

  /** Runs a file system call, turning system errors into storage errors. */
  async #fsCall<T>(file: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof StorageError) throw err
      const code = (err as NodeJS.ErrnoException).code
      const details = { file, cause: err }
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new StorageError('DISK_FULL', details)
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
        throw new StorageError('PERMISSION_DENIED', details)
      throw new StorageError('IO_ERROR', details)
    }
  }
}

async function writeAll(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let written = 0
  while (written < data.length) {
    const { bytesWritten } = await handle.write(data, written, data.length - written, position + written)
    written += bytesWritten
  }
}

/**
 * Splits queued writes of one file into runs that are each one `pwritev`: sorted by position and joined where one
 * ends where the next starts. When writes overlap, their order decides the bytes, so they stay in queue order.
 */
function writeRuns(batch: QueuedWrite[]): QueuedWrite[][] {
  if (batch.length === 1) return [batch]
  const sorted = [...batch].sort((a, b) => a.position - b.position)
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!
    if (sorted[i]!.position < prev.position + prev.data.length) {
      return batch.map((w) => [w])
    }
  }
  const runs: QueuedWrite[][] = []
  let run: QueuedWrite[] = []
  let end = -1
  let bytes = 0
  for (const w of sorted) {
    if (
      run.length > 0 &&
      (w.position !== end || run.length >= MAX_WRITE_BUFFERS || bytes + w.data.length > MAX_WRITE_BYTES)
    ) {
      runs.push(run)
      run = []
      bytes = 0
    }
    run.push(w)
    end = w.position + w.data.length
    bytes += w.data.length
  }
  runs.push(run)
  return runs
}

/** Writes every byte of `buffers`, in order, from `position` on (pwritev, continued after a short write). */
async function writevAll(handle: FileHandle, buffers: Uint8Array[], position: number): Promise<void> {
  if (buffers.length === 1) return writeAll(handle, buffers[0]!, position)
  let pending = buffers
  let at = position
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at)
    if (bytesWritten <= 0)
      throw new StorageError('IO_ERROR', { reason: 'write made no progress', position: at })
    at += bytesWritten
    let skip = bytesWritten
    let i = 0
    while (i < pending.length && skip >= pending[i]!.length) {
      skip -= pending[i]!.length
      i++
    }
    pending = pending.slice(i)
    if (skip > 0) pending[0] = pending[0]!.subarray(skip)
  }
}

async function readAll(handle: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let read = 0
  while (read < target.length) {
    const { bytesRead } = await handle.read(target, read, target.length - read, position + read)
    if (bytesRead === 0) throw new StorageError('DATA_MISSING', { reason: 'file too short', position })
    read += bytesRead
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file)
    return true
  } catch {
    return false
  }
}

function hasBit(bits: Uint8Array, index: number): boolean {
  return ((bits[index >> 3] ?? 0) & (0x80 >> (index & 7))) !== 0
}

function toPriority(p: number): FilePriority {
  return Math.max(0, Math.min(7, Math.trunc(p))) as FilePriority
}
