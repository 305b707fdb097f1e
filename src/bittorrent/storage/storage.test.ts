import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { TorrentFile } from '../../metainfo/index.js'
import { mapBlock } from './layout.js'
import { Storage } from './storage.js'
import type { StorageLayout } from './types.js'

/** A layout over `data` from file specs (`pad` marks BEP 47 padding files), like a parsed torrent. */
function layoutOf(
  specs: Array<{ path: string; length: number; pad?: boolean }>,
  pieceLength: number,
): { layout: StorageLayout; data: Buffer } {
  let offset = 0
  const files: TorrentFile[] = specs.map((s, index) => {
    const file: TorrentFile = {
      index,
      path: s.path,
      pathComponents: s.path.split('/'),
      displayPath: s.path,
      length: s.length,
      offset,
      padding: s.pad === true,
      attributes: s.pad === true ? 'p' : '',
    }
    offset += s.length
    return file
  })
  const data = Buffer.concat(
    specs.map((s) => (s.pad === true ? Buffer.alloc(s.length) : randomBytes(s.length))),
  )
  const pieceCount = Math.ceil(offset / pieceLength)
  const pieces = Array.from({ length: pieceCount }, (_, i) =>
    createHash('sha1')
      .update(data.subarray(i * pieceLength, (i + 1) * pieceLength))
      .digest(),
  )
  return { layout: { pieceLength, pieceCount, pieces, files, totalLength: offset }, data }
}

async function writeAll(storage: Storage, data: Buffer, blockBytes = 4096): Promise<void> {
  const { pieceLength, pieceCount, totalLength } = storage.layout
  const blocks: Array<[number, number, number]> = []
  for (let p = 0; p < pieceCount; p++) {
    const size = Math.min(pieceLength, totalLength - p * pieceLength)
    for (let b = 0; b < size; b += blockBytes) blocks.push([p, b, Math.min(blockBytes, size - b)])
  }
  // reverse order: files get written from their ends first, still sparse and correct
  for (const [p, b, len] of blocks.reverse()) {
    const start = p * pieceLength + b
    await storage.writeBlock(p, b, data.subarray(start, start + len))
  }
}

const bits = (have: Uint8Array, count: number): string =>
  Array.from({ length: count }, (_, i) => ((have[i >> 3]! & (0x80 >> (i & 7))) !== 0 ? '1' : '0')).join('')

let dir: string
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(tmpdir(), 'storage-'))
})
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true })
})

describe('Storage', () => {
  const SPECS = [
    { path: 't/a.bin', length: 10_000 },
    { path: 't/empty', length: 0 },
    { path: 't/sub/b.bin', length: 5 },
    { path: 't/c.bin', length: 30_000 },
  ]

  it('maps blocks across file boundaries', () => {
    const { layout } = layoutOf(SPECS, 16_384)
    expect(mapBlock(layout, 0, 9_000, 2_000)).toEqual([
      { fileIndex: 0, fileOffset: 9_000, blockOffset: 0, length: 1_000 },
      { fileIndex: 2, fileOffset: 0, blockOffset: 1_000, length: 5 },
      { fileIndex: 3, fileOffset: 0, blockOffset: 1_005, length: 995 },
    ])
    expect(() => mapBlock(layout, 2, 0, 10_000)).toThrow(expect.objectContaining({ code: 'INVALID_BLOCK' }))
  })

  it('writes spanning pieces, verifies them and reads them back', async () => {
    const { layout, data } = layoutOf(SPECS, 16_384)
    const storage = new Storage({ layout, downloadDir: dir, id: 'x', maxOpenFiles: 2 })
    expect(await storage.verifyPiece(0)).toBe(false)
    await writeAll(storage, data)
    for (let p = 0; p < layout.pieceCount; p++) expect(await storage.verifyPiece(p)).toBe(true)
    expect(await storage.readBlock(0, 9_990, 20)).toEqual(data.subarray(9_990, 10_010))
    await storage.close()
    expect(await fsp.readFile(path.join(dir, 't/c.bin'))).toEqual(data.subarray(10_005))
    await expect(storage.readBlock(0, 0, 1)).rejects.toMatchObject({ code: 'CLOSED' })
  })

  it('joins blocks that come while writes are in progress, across many files, into few writes', async () => {
    const specs = Array.from({ length: 40 }, (_, i) => ({ path: `m/f${i}.bin`, length: 5_000 + i * 97 }))
    const { layout, data } = layoutOf(specs, 4_096)
    let writeCalls = 0
    const opens = new Map<string, number>()
    const openFile = async (file: string, flags: number, mode?: number): Promise<FileHandle> => {
      opens.set(file, (opens.get(file) ?? 0) + 1)
      const handle = await fsp.open(file, flags, mode)
      const write = handle.write.bind(handle)
      const writev = handle.writev.bind(handle)
      handle.write = ((...args: Parameters<FileHandle['write']>) => {
        writeCalls++
        return write(...args)
      }) as FileHandle['write']
      handle.writev = ((...args: Parameters<FileHandle['writev']>) => {
        writeCalls++
        return writev(...args)
      }) as FileHandle['writev']
      return handle
    }
    const storage = new Storage({ layout, downloadDir: dir, id: 'x', openFile })
    // 1 KiB blocks of every piece, pieces in a scattered order, all at once.
    const writes: Array<Promise<void>> = []
    let blocks = 0
    for (let i = 0; i < layout.pieceCount; i++) {
      const p = (i * 7) % layout.pieceCount
      const start = p * layout.pieceLength
      const end = Math.min(start + layout.pieceLength, data.length)
      for (let b = start; b < end; b += 1_024) {
        blocks++
        writes.push(storage.writeBlock(p, b - start, data.subarray(b, Math.min(b + 1_024, end))))
      }
    }
    await Promise.all(writes)
    await storage.close()
    // Each file's blocks leave as one run (plus the first block, written on its own).
    expect(writeCalls).toBeLessThanOrEqual(specs.length + 2)
    expect(writeCalls).toBeLessThan(blocks / 4)
    expect([...opens.values()].every((n) => n === 1)).toBe(true)
    for (const [i, spec] of specs.entries()) {
      const file = layout.files[i]!
      expect(await fsp.readFile(path.join(dir, spec.path))).toEqual(
        data.subarray(file.offset, file.offset + file.length),
      )
    }
  })

  it('keeps the handles of writes in flight open while many files contend for a few handles', async () => {
    const specs = Array.from({ length: 12 }, (_, i) => ({ path: `t/f${i}.bin`, length: 3_000 + i * 517 }))
    const { layout, data } = layoutOf(specs, 4_096)
    const storage = new Storage({ layout, downloadDir: dir, id: 'x', maxOpenFiles: 2 })
    // Every block at once, as a fast swarm completes pieces of many files together.
    const writes: Array<Promise<void>> = []
    for (let p = 0; p < layout.pieceCount; p++) {
      const start = p * layout.pieceLength
      writes.push(
        storage.writeBlock(p, 0, data.subarray(start, Math.min(start + layout.pieceLength, data.length))),
      )
    }
    await Promise.all(writes)
    const checks = await Promise.all(
      Array.from({ length: layout.pieceCount }, (_, p) => storage.verifyPiece(p)),
    )
    expect(checks.every(Boolean)).toBe(true)
    await storage.close()
    for (const [i, spec] of specs.entries()) {
      const file = layout.files[i]!
      expect(await fsp.readFile(path.join(dir, spec.path))).toEqual(
        data.subarray(file.offset, file.offset + file.length),
      )
    }
  })

  it('joins the writes queued behind one in progress into few pwritev calls, overlapping ones in order', async () => {
    const { layout, data } = layoutOf([{ path: 'one.bin', length: 64 * 4_096 }], 4_096)
    const calls: number[] = []
    const storage = new Storage({
      layout,
      downloadDir: dir,
      id: 'x',
      openFile: async (file, flags, mode) => {
        const handle = await fsp.open(file, flags, mode)
        return new Proxy(handle, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver)
            if (prop === 'write' || prop === 'writev') {
              return (...args: unknown[]) => {
                calls.push(prop === 'write' ? 1 : (args[0] as unknown[]).length)
                return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
              }
            }
            return typeof value === 'function' ? value.bind(target) : value
          },
        })
      },
    })
    // Pieces out of order, all at once: the first write goes alone, the rest queue and leave joined.
    const order = Array.from({ length: 64 }, (_, i) => (i * 37) % 64)
    await Promise.all(order.map((p) => storage.writeBlock(p, 0, data.subarray(p * 4_096, (p + 1) * 4_096))))
    expect(calls.reduce((a, b) => a + b, 0)).toBe(64)
    expect(calls.length).toBeLessThanOrEqual(3)
    // Overlapping writes queued together keep their order: the last one's bytes win.
    const first = Buffer.alloc(4_096, 1)
    const second = Buffer.alloc(4_096, 2)
    const third = Buffer.alloc(100, 3)
    await Promise.all([
      storage.writeBlock(5, 0, first),
      storage.writeBlock(5, 0, second),
      storage.writeBlock(5, 50, third),
    ])
    const expected = Buffer.concat([second.subarray(0, 50), third, second.subarray(150)])
    expect(await storage.readBlock(5, 0, 4_096)).toEqual(expected)
    for (let p = 0; p < 64; p++) {
      if (p !== 5) expect(await storage.verifyPiece(p)).toBe(true)
    }
    await storage.close()
  })

  it('closes a read-only handle that a write to its file replaced while a read still used it', async () => {
    const { layout, data } = layoutOf([{ path: 'one.bin', length: 8_192 }], 4_096)
    const seed = new Storage({ layout, downloadDir: dir, id: 'x' })
    await writeAll(seed, data)
    await seed.close()
    const opened: FileHandle[] = []
    let release: () => void = () => undefined
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    let reading = false
    const storage = new Storage({
      layout,
      downloadDir: dir,
      id: 'x',
      openFile: async (file, flags, mode) => {
        const handle = await fsp.open(file, flags, mode)
        opened.push(handle)
        if (opened.length === 1) {
          // The first (read-only) handle's read waits until the write below has reopened the file.
          const read = handle.read.bind(handle) as (...args: unknown[]) => Promise<unknown>
          ;(handle as unknown as { read: (...args: unknown[]) => Promise<unknown> }).read = async (
            ...args
          ) => {
            reading = true
            await gate
            return read(...args)
          }
        }
        return handle
      },
    })
    const read = storage.readBlock(0, 0, 4_096)
    await vi.waitFor(() => expect(reading).toBe(true))
    await storage.writeBlock(1, 0, data.subarray(4_096))
    release()
    expect(await read).toEqual(data.subarray(0, 4_096))
    await storage.close()
    expect(opened).toHaveLength(2)
    expect(opened.map((h) => h.fd)).toEqual([-1, -1])
  })

  it('never writes padding files', async () => {
    const { layout, data } = layoutOf(
      [
        { path: 't/a', length: 1000 },
        { path: 't/.pad/15384', length: 15_384, pad: true },
        { path: 't/b', length: 20_000 },
      ],
      16_384,
    )
    const storage = new Storage({ layout, downloadDir: dir, id: 'x' })
    await writeAll(storage, data)
    expect(await storage.verifyPiece(0)).toBe(true)
    expect(existsSync(path.join(dir, 't/.pad'))).toBe(false)
    await storage.close()
  })

  it('keeps skipped files off disk, with boundary pieces in the part file, and restores them when wanted', async () => {
    const { layout, data } = layoutOf(SPECS, 16_384)
    const storage = new Storage({ layout, downloadDir: dir, id: 'abc', priorities: [4, 4, 4, 0] })
    await writeAll(storage, data)
    expect(existsSync(path.join(dir, 't/c.bin'))).toBe(false)
    expect(existsSync(storage.partFilePath)).toBe(true)
    expect(path.basename(storage.partFilePath)).toBe('.abc.parts')
    for (let p = 0; p < layout.pieceCount; p++) expect(await storage.verifyPiece(p)).toBe(true)
    await storage.setFilePriorities([4, 4, 4, 1], Uint8Array.from([0xe0]))
    expect(await fsp.readFile(path.join(dir, 't/c.bin'))).toEqual(data.subarray(10_005))
    await storage.setFilePriorities([0, 4, 4, 1], Uint8Array.from([0xe0]))
    expect(existsSync(path.join(dir, 't/a.bin'))).toBe(false)
    expect(await storage.verifyPiece(0)).toBe(true)
    await storage.close()
  })

  it('trusts resume data after a restart when files are unchanged, and rechecks when one changed', async () => {
    const { layout, data } = layoutOf(SPECS, 16_384)
    const first = new Storage({ layout, downloadDir: dir, id: 'x' })
    await writeAll(first, data)
    const have = await first.recheck()
    expect(bits(have, 3)).toBe('111')
    const resume = await first.resumeData(have)
    await first.close()

    const second = new Storage({ layout, downloadDir: dir, id: 'x' })
    const restored = await second.restore(resume)
    expect(restored).toEqual({ have, rechecked: false })
    await second.close()

    const file = path.join(dir, 't/c.bin')
    const handle = await fsp.open(file, 'r+')
    await handle.write(Buffer.from([data[10_005]! ^ 0xff]), 0, 1, 0)
    await handle.close()
    await fsp.utimes(file, new Date(), new Date(Date.now() + 5_000))
    const progress: number[] = []
    const third = new Storage({ layout, downloadDir: dir, id: 'x' })
    const after = await third.restore(resume, { onProgress: (p) => progress.push(p.checkedPieces) })
    expect(after.rechecked).toBe(true)
    expect(bits(after.have, 3)).toBe('011')
    expect(progress).toEqual([1, 2, 3])
    expect((await third.restore(resume, { forceRecheck: true })).rechecked).toBe(true)
    expect((await third.restore(Buffer.from('garbage'))).rechecked).toBe(true)
    await third.close()
  })

  it('refuses paths that escape the download folder, through .. or symlinks', async () => {
    const outside = await fsp.mkdtemp(path.join(tmpdir(), 'outside-'))
    try {
      const dotdot = layoutOf([{ path: '../evil', length: 10 }], 16)
      ;(dotdot.layout.files as TorrentFile[])[0] = {
        ...dotdot.layout.files[0]!,
        pathComponents: ['..', 'evil'],
      }
      const s1 = new Storage({ layout: dotdot.layout, downloadDir: dir, id: 'x' })
      await expect(s1.writeBlock(0, 0, dotdot.data)).rejects.toMatchObject({ code: 'PATH_ESCAPE' })

      await fsp.symlink(outside, path.join(dir, 'link'))
      const viaDir = layoutOf([{ path: 'link/evil', length: 10 }], 16)
      const s2 = new Storage({ layout: viaDir.layout, downloadDir: dir, id: 'x' })
      await expect(s2.writeBlock(0, 0, viaDir.data)).rejects.toMatchObject({ code: 'PATH_ESCAPE' })

      await fsp.symlink(path.join(outside, 'target'), path.join(dir, 'file-link'))
      const viaFile = layoutOf([{ path: 'file-link', length: 10 }], 16)
      const s3 = new Storage({ layout: viaFile.layout, downloadDir: dir, id: 'x' })
      await expect(s3.writeBlock(0, 0, viaFile.data)).rejects.toMatchObject({ code: 'PATH_ESCAPE' })
      expect(await fsp.readdir(outside)).toEqual([])
    } finally {
      await fsp.rm(outside, { recursive: true, force: true })
    }
  })

  it('reports a full disk and a permission error as coded errors', async () => {
    const { layout, data } = layoutOf([{ path: 'f', length: 100 }], 64)
    const failing = (code: string) => async (file: string, flags: number, mode?: number) => {
      const handle = await fsp.open(file, flags, mode)
      return new Proxy(handle, {
        get(target, prop, receiver) {
          if (prop === 'write' || prop === 'writev') {
            return () => Promise.reject(Object.assign(new Error(code), { code }))
          }
          const value = Reflect.get(target, prop, receiver)
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
    }
    const full = new Storage({ layout, downloadDir: dir, id: 'x', openFile: failing('ENOSPC') })
    await expect(full.writeBlock(0, 0, data.subarray(0, 64))).rejects.toMatchObject({ code: 'DISK_FULL' })
    await full.close()
    const denied = new Storage({ layout, downloadDir: dir, id: 'x', openFile: failing('EACCES') })
    await expect(denied.writeBlock(1, 0, data.subarray(64))).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    })
    await denied.close()
  })

  it('moves files to another folder and deletes them', async () => {
    const { layout, data } = layoutOf(SPECS, 16_384)
    const storage = new Storage({
      layout,
      downloadDir: path.join(dir, 'one'),
      id: 'x',
      priorities: [4, 4, 4, 0],
    })
    await writeAll(storage, data)
    await storage.move(path.join(dir, 'two'))
    expect(existsSync(path.join(dir, 'one', 't'))).toBe(false)
    expect(await storage.verifyPiece(2)).toBe(true)
    expect(await fsp.readFile(path.join(dir, 'two', 't/a.bin'))).toEqual(data.subarray(0, 10_000))
    await storage.deleteFiles()
    expect(await fsp.readdir(path.join(dir, 'two'))).toEqual([])
    await storage.close()
  })
})
