import { type ChildProcess, spawn } from 'node:child_process'
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'

const CHILD = fileURLToPath(new URL('../support/engine-process.ts', import.meta.url))
const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url))

interface ChildStatus {
  state: string
  states: string[]
  progress: number
  totalDown: number
  rechecked: boolean
  pieces: string
}

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

/** Starts the engine process and resolves with it and a way to wait for a status that satisfies a predicate. */
function startChild(options: Record<string, unknown>): {
  child: ChildProcess
  waitFor: (predicate: (s: ChildStatus) => boolean, timeoutMs: number) => Promise<ChildStatus>
  last: () => ChildStatus | undefined
} {
  const child = spawn(TSX, [CHILD, JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TRIBLER_NO_PUBLIC_NETWORK: '1' },
  })
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await new Promise((resolve) => child.once('exit', resolve))
    }
  })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  let latest: ChildStatus | undefined
  const waiters = new Set<() => void>()
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      latest = JSON.parse(line) as ChildStatus
    } catch {
      return
    }
    for (const w of [...waiters]) w()
  })
  const waitFor = (predicate: (s: ChildStatus) => boolean, timeoutMs: number): Promise<ChildStatus> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(
          new Error(
            `engine process: condition not met; last ${JSON.stringify(latest)}; ${stderr.slice(-2000)}`,
          ),
        )
      }, timeoutMs)
      const check = (): void => {
        if (latest !== undefined && predicate(latest)) {
          clearTimeout(timer)
          waiters.delete(check)
          resolve(latest)
        }
      }
      waiters.add(check)
      check()
      child.once('exit', () => {
        if (waiters.has(check)) {
          clearTimeout(timer)
          waiters.delete(check)
          reject(new Error(`engine process exited: ${stderr.slice(-2000)}`))
        }
      })
    })
  return { child, waitFor, last: () => latest }
}

function countPieces(hex: string): number {
  let n = 0
  for (const byte of Buffer.from(hex, 'hex')) for (let b = 0; b < 8; b++) if (byte & (0x80 >> b)) n++
  return n
}

describe.skipIf(!libtorrentAvailable())('engine crash and restart against libtorrent', () => {
  it('resumes after kill -9 without hashing again or downloading verified pieces again', async () => {
    const tmp = await fsp.mkdtemp(path.join(tmpdir(), 'engine-crash-'))
    cleanup.push(() => fsp.rm(tmp, { recursive: true, force: true }))
    const seedDir = path.join(tmp, 'seed')
    const contents = await writeRandomFiles(path.join(seedDir, 'share'), { 'big.bin': 16 * 1024 * 1024 })
    const pieceLength = 262_144
    const made = await createTorrent({
      path: path.join(seedDir, 'share'),
      out: path.join(tmp, 's.torrent'),
      pieceLength,
    })
    // Slow enough that the download is still running when it is killed.
    const seeder = await LibtorrentPeer.start({ host: '127.0.0.81', uploadRate: 2 * 1024 * 1024 })
    cleanup.push(() => seeder.stop())
    await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
    await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)

    const options = {
      stateDir: path.join(tmp, 'state'),
      host: '127.0.0.82',
      torrentPath: made.torrentPath,
      destination: path.join(tmp, 'out'),
      peer: { host: seeder.host, port: seeder.port },
      resumeSaveIntervalMs: 500,
    }
    await fsp.mkdir(options.stateDir, { recursive: true })
    const first = startChild(options)
    await first.waitFor((s) => s.progress >= 0.35, 120_000)
    // Wait for a periodic save after that point, then crash.
    const resumeFile = path.join(options.stateDir, 'resume', `${made.infoHash}.resume`)
    const reachedMs = Date.now()
    const deadline = reachedMs + 30_000
    const savedMs = async (): Promise<number> =>
      (await fsp.stat(resumeFile).catch(() => undefined))?.mtimeMs ?? 0
    while ((await savedMs()) <= reachedMs) {
      if (Date.now() > deadline) throw new Error('no resume data saved after 35% progress')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    first.child.kill('SIGKILL')
    await new Promise((resolve) => first.child.once('exit', resolve))
    const saved = await fsp.readFile(resumeFile)
    expect(saved.length).toBeGreaterThan(0)
    const before = first.last()!
    expect(before.state).toBe('DLSTATUS_DOWNLOADING')

    const second = startChild(options)
    const done = await second.waitFor((s) => s.state === 'DLSTATUS_SEEDING', 120_000)
    expect(done.rechecked).toBe(false)
    expect(done.states).not.toContain('DLSTATUS_HASHCHECKING')
    const got = await fsp.readFile(path.join(options.destination, 'share', 'big.bin'))
    expect(got.equals(contents.get('big.bin')!)).toBe(true)
    // Only what was not saved as verified came down again: at most the pieces the crash lost since the last
    // save (a 500 ms window at 2 MiB/s) on top of what was missing.
    const piecesBefore = countPieces(before.pieces)
    const remaining = made.totalLength - piecesBefore * pieceLength
    expect(done.totalDown).toBeLessThan(remaining + 4 * 1024 * 1024)
    expect(done.totalDown).toBeLessThan(made.totalLength * 0.8)
  })
})
