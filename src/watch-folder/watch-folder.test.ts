import { existsSync, mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { AddDownloadOptions, DownloadHandle, DownloadManager } from '../bittorrent/engine/index.js'
import { configureLogging } from '../common/index.js'
import { createTorrent, parseTorrent } from '../metainfo/index.js'
import { Session } from '../session/index.js'
import { WatchFolder } from './index.js'

configureLogging({ level: 'silent' })

// Records what the watch folder asks of the engine; the real engine is exercised by the integration tests.
function recordingManager(refuse = false) {
  const added: AddDownloadOptions[] = []
  const known = new Set<string>()
  const manager = {
    added,
    known,
    attempts: 0,
    get: (infoHash: string) => (known.has(infoHash) ? ({ infoHash } as DownloadHandle) : undefined),
    add: async (options: AddDownloadOptions) => {
      manager.attempts++
      if (refuse) throw new Error('no circuits')
      added.push(options)
      const source = options.source
      const infoHash = source.kind === 'torrent' ? parseTorrent(source.torrent).infoHashHex : ''
      known.add(infoHash)
      return { infoHash, added: true }
    },
  }
  return manager
}

const sessions: Session[] = []
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.stop()))
})

async function start(stateDir: string, folder: string, manager: unknown, enabled = true) {
  const session = new Session({ stateDir, publicNetwork: false })
  sessions.push(session)
  session.updateSettings({
    watch_folder: { enabled, directory: folder },
    download_defaults: { anonymity_enabled: false, safeseeding_enabled: false },
  })
  const watch = session.addService(
    (deps) => new WatchFolder(deps, { downloads: () => manager as DownloadManager, intervalMs: 3_600_000 }),
  )
  const corrupt: string[] = []
  session.events.on('watch_folder_corrupt_torrent', ({ name }) => corrupt.push(name))
  await session.start()
  return { session, watch, corrupt }
}

async function torrentOf(dir: string, name: string, size: number): Promise<Buffer> {
  const data = join(dir, 'data', name)
  mkdirSync(join(dir, 'data'), { recursive: true })
  writeFileSync(data, Buffer.alloc(size, name.length))
  return (await createTorrent(data)).torrent
}

describe('WatchFolder', () => {
  it('starts each torrent once, also across restarts, and again when the file changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tribler-watch-'))
    const folder = join(dir, 'watched')
    mkdirSync(join(folder, 'sub'), { recursive: true })
    const a = await torrentOf(dir, 'a.bin', 1000)
    const b = await torrentOf(dir, 'b.bin', 2000)
    writeFileSync(join(folder, 'a.torrent'), a)
    writeFileSync(join(folder, 'sub', 'b.TORRENT'), b)
    writeFileSync(join(folder, 'notes.txt'), 'not a torrent, not looked at')
    const manager = recordingManager()
    // the core's start triggers the first scan; scan() runs after it
    const first = await start(join(dir, 'state'), folder, manager)
    await first.watch.scan()
    const sources = manager.added.map((o) =>
      o.source.kind === 'torrent' ? o.source.torrent : Buffer.alloc(0),
    )
    expect(sources.sort(Buffer.compare)).toEqual([a, b].sort(Buffer.compare))
    expect(manager.added.map((o) => [o.hops, o.safeSeeding])).toEqual([
      [0, false],
      [0, false],
    ])
    expect((await first.watch.scan()).added).toEqual([])
    expect(manager.added).toHaveLength(2)
    await first.session.stop()

    // after a restart, with the downloads removed meanwhile, nothing is started again
    const fresh = recordingManager()
    const second = await start(join(dir, 'state'), folder, fresh)
    expect(await second.watch.scan()).toEqual({ added: [], present: [], corrupt: [], failed: [] })
    expect(fresh.added).toEqual([])
    // a changed file is handled again
    writeFileSync(join(folder, 'a.torrent'), await torrentOf(dir, 'a2.bin', 3000))
    utimesSync(join(folder, 'a.torrent'), new Date(), new Date(Date.now() + 5000))
    expect((await second.watch.scan()).added).toEqual([join(folder, 'a.torrent')])
    expect(fresh.added).toHaveLength(1)
  })

  it('renames a corrupt torrent once it stayed corrupt for two scans and reports it once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tribler-watch-'))
    const folder = join(dir, 'watched')
    mkdirSync(folder)
    const manager = recordingManager()
    const { watch, corrupt } = await start(join(dir, 'state'), folder, manager)
    await watch.scan()
    writeFileSync(join(folder, 'bad.torrent'), 'd4:infod4:name')
    expect((await watch.scan()).corrupt).toEqual([])
    expect(corrupt).toEqual([])
    expect((await watch.scan()).corrupt).toEqual([join(folder, 'bad.torrent')])
    expect(corrupt).toEqual(['bad.torrent'])
    expect(existsSync(join(folder, 'bad.torrent.corrupt'))).toBe(true)
    expect(existsSync(join(folder, 'bad.torrent'))).toBe(false)
    await watch.scan()
    expect(corrupt).toEqual(['bad.torrent'])
    expect(manager.added).toEqual([])
  })

  it('records a torrent already downloading without adding it, and retries one the engine refused only when it changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tribler-watch-'))
    const folder = join(dir, 'watched')
    mkdirSync(folder)
    const torrent = await torrentOf(dir, 'c.bin', 500)
    const present = recordingManager()
    present.known.add(parseTorrent(torrent).infoHashHex)
    const one = await start(join(dir, 'one'), folder, present)
    await one.watch.scan()
    writeFileSync(join(folder, 'c.torrent'), torrent)
    expect((await one.watch.scan()).present).toEqual([join(folder, 'c.torrent')])
    expect(present.added).toEqual([])

    const refusing = recordingManager(true)
    const two = await start(join(dir, 'two'), folder, refusing)
    await two.watch.scan()
    expect(refusing.attempts).toBe(1)
    await two.watch.scan()
    expect(refusing.attempts).toBe(1)
    writeFileSync(join(folder, 'c.torrent'), await torrentOf(dir, 'c2.bin', 600))
    utimesSync(join(folder, 'c.torrent'), new Date(), new Date(Date.now() + 5000))
    expect((await two.watch.scan()).failed).toEqual([join(folder, 'c.torrent')])
    expect(refusing.attempts).toBe(2)
  })

  it('does nothing while disabled, without a folder, or without the engine', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tribler-watch-'))
    const folder = join(dir, 'watched')
    mkdirSync(folder)
    writeFileSync(join(folder, 'd.torrent'), await torrentOf(dir, 'd.bin', 100))
    const empty = { added: [], present: [], corrupt: [], failed: [] }
    const manager = recordingManager()
    const off = await start(join(dir, 'off'), folder, manager, false)
    expect(await off.watch.scan()).toEqual(empty)
    const missing = await start(join(dir, 'missing'), join(dir, 'nope'), manager)
    expect(await missing.watch.scan()).toEqual(empty)
    const noEngine = await start(join(dir, 'none'), folder, undefined)
    expect(await noEngine.watch.scan()).toEqual(empty)
    expect(manager.added).toEqual([])
    // enabling it live takes effect at the next scan
    off.session.updateSettings({ watch_folder: { enabled: true } })
    expect((await off.watch.scan()).added).toEqual([join(folder, 'd.torrent')])
  })
})
