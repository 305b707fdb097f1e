import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { apiUrl, type CliProcess, ROOT, runCli, tempStateDir } from '../integration/cli-harness.js'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'
import { freePort } from '../support/tracker-servers.js'

const KEY = 'cli-k3y'
const CLIENT_ENV = { TRIBLER_API_KEY: KEY, TRIBLER_CLI_POLL_MS: '200', TRIBLER_CLI_LINE_MS: '500' }

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function cli(args: string[], opts: Parameters<typeof runCli>[1] = {}): CliProcess {
  const proc = runCli(args, opts)
  cleanups.push(() => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL')
  })
  return proc
}

/** Runs a client command to its end; resolves with its exit code and output. */
async function client(
  args: string[],
  port: number,
): Promise<{ code: number | null; out: string; err: string }> {
  const proc = cli([...args, '--port', String(port)], { client: true, env: CLIENT_ENV })
  const { code } = await proc.exited
  return { code, out: proc.stdout(), err: proc.stderr() }
}

/** `script` from util-linux gives the command a pseudo-terminal. */
function scriptAvailable(): boolean {
  return existsSync('/usr/bin/script')
}

const PROGRESS =
  /^\s*\d{1,3}\.\d% (\?\/\?|\S+ \S+\/\S+ \S+) {2}down .+\/s {2}up .+\/s {2}peers \d+ {2}eta \S+ {2}[a-z ]+$/

describe.skipIf(!libtorrentAvailable())(
  'tribler download against a real core and a libtorrent seeder',
  () => {
    it('downloads a .torrent with progress lines, exits 0 with verified bytes, then lists, pauses, resumes and removes it', async () => {
      const tmp = mkdtempSync(join(tmpdir(), 'tribler-cli-dl-'))
      const contents = await writeRandomFiles(join(tmp, 'seed', 'share'), {
        'a.bin': 3 * 1024 * 1024 + 12_345,
        'sub/b.bin': 500_000,
      })
      const made = await createTorrent({
        path: join(tmp, 'seed', 'share'),
        out: join(tmp, 'share.torrent'),
        pieceLength: 65_536,
      })
      const seeder = await LibtorrentPeer.start({ host: '127.0.0.61' })
      cleanups.push(() => seeder.stop())
      await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: join(tmp, 'seed') })
      await seeder.waitFor((s) => s.torrents[0]?.state === 'seeding')

      // The core: its BitTorrent port fixed so the seeder can dial it; no download into the home folder.
      const stateDir = tempStateDir()
      const enginePort = await freePort('127.0.0.1')
      writeFileSync(
        join(stateDir, 'settings.json'),
        JSON.stringify({
          libtorrent: { port: enginePort, dht: false },
          download_defaults: { saveas: join(tmp, 'default') },
        }),
      )
      const core = cli(['--port', '0', '--api-key', KEY], { stateDir })
      const port = Number(new URL(await apiUrl(core)).port)

      const dest = join(tmp, 'got')
      const download = cli(['download', made.torrentPath, '--port', String(port), '--dest', dest], {
        client: true,
        env: CLIENT_ENV,
      })
      await download.line(/^Downloading share \(/, 60_000)
      // The engine turns connections away until the download has checked its files and runs: dial once it does.
      await download.line(/ downloading$/, 60_000)
      await seeder.addPeer({ ip: '127.0.0.1', port: enginePort })
      const { code } = await download.exited
      expect({ code, err: download.stderr() }).toEqual({ code: 0, err: '' })
      const lines = download.stdout().trim().split('\n')
      expect(lines[0]).toBe(`Downloading share (${made.infoHash})`)
      const progress = lines.slice(1, -1)
      expect(progress.length).toBeGreaterThan(0)
      for (const line of progress) expect(line).toMatch(PROGRESS)
      expect(progress.at(-1)).toMatch(/^100\.0% 3\.\d+ MiB\/3\.\d+ MiB .* seeding$/)
      expect(lines.at(-1)).toBe(`Completed: share (${made.infoHash}); it keeps seeding in the core`)
      for (const [relative, data] of contents)
        expect(readFileSync(join(dest, 'share', relative)).equals(data)).toBe(true)

      // The core's torrent store learned the torrent from the download.
      const known = await fetch(`http://127.0.0.1:${port}/torrents/${made.infoHash}`, {
        headers: { 'x-api-key': KEY },
      })
      expect(known.status).toBe(200)
      expect(await known.json()).toMatchObject({ name: 'share', size: 3 * 1024 * 1024 + 12_345 + 500_000 })

      const short = made.infoHash.slice(0, 8)
      const listed = await client(['downloads'], port)
      expect(listed.code).toBe(0)
      expect(listed.out).toMatch(/^INFOHASH\s+NAME\s+SIZE\s+PROGRESS\s+STATE\s+DOWN\s+UP\s+PEERS\n/)
      expect(listed.out).toMatch(new RegExp(`\\n${short}\\s+share\\s+3\\.\\d+ MiB\\s+100\\.0%\\s+seeding\\s`))

      expect(await client(['pause', short], port)).toMatchObject({
        code: 0,
        out: `Paused share (${short})\n`,
      })
      await vi.waitFor(async () => expect((await client(['downloads'], port)).out).toMatch(/\s+stopped\s/), {
        timeout: 30_000,
        interval: 250,
      })
      expect(await client(['resume', made.infoHash], port)).toMatchObject({
        code: 0,
        out: `Resumed share (${short})\n`,
      })
      await vi.waitFor(async () => expect((await client(['downloads'], port)).out).toMatch(/\s+seeding\s/), {
        timeout: 60_000,
        interval: 250,
      })
      expect(await client(['remove', short], port)).toMatchObject({
        code: 0,
        out: `Removed share (${short}); its files stay on disk\n`,
      })
      expect(await client(['downloads'], port)).toMatchObject({ code: 0, out: 'No downloads.\n' })
      expect(existsSync(join(dest, 'share', 'a.bin'))).toBe(true)
      expect(await client(['pause', made.infoHash], port)).toMatchObject({
        code: 1,
        err: 'tribler: this download does not exist\n',
      })

      if (scriptAvailable()) {
        // Again under a pseudo-terminal, one file only: one line redrawn in place, ending at 100 %. Another torrent of the same
        // files (another piece size), as libtorrent waits before it dials a peer of a torrent again.
        const other = await createTorrent({
          path: join(tmp, 'seed', 'share'),
          out: join(tmp, 'share-32k.torrent'),
          pieceLength: 32_768,
        })
        await seeder.addTorrent({ torrentPath: other.torrentPath, savePath: join(tmp, 'seed') })
        await seeder.waitFor((s) => s.torrents.length === 2 && s.torrents.every((t) => t.state === 'seeding'))
        const again = spawn(
          '/usr/bin/script',
          [
            '-qec',
            [
              process.execPath,
              join(ROOT, 'bin', 'tribler.js'),
              'download',
              other.torrentPath,
              '--port',
              String(port),
              '--dest',
              join(tmp, 'tty'),
              '--select',
              'sub/b.bin',
            ]
              .map((arg) => `'${arg.replaceAll("'", "'\\''")}'`)
              .join(' '),
            '/dev/null',
          ],
          { env: { ...process.env, ...CLIENT_ENV }, stdio: ['ignore', 'pipe', 'pipe'] },
        )
        cleanups.push(() => {
          if (again.exitCode === null) again.kill('SIGKILL')
        })
        let out = ''
        again.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString()
        })
        const exited = new Promise<number | null>((resolve) => again.on('exit', (c) => resolve(c)))
        await vi.waitFor(() => expect(out).toMatch(/Downloading share[\s\S]*downloading/), {
          timeout: 60_000,
        })
        await seeder.addPeer({ ip: '127.0.0.1', port: enginePort, infoHash: other.infoHash })
        expect(await exited).toBe(0)
        expect(out).toMatch(/\r\x1b\[2K\s*100\.0% \[#+\] .* seeding/)
        expect(out).toContain('Completed: share')
        expect(
          readFileSync(join(tmp, 'tty', 'share', 'sub', 'b.bin')).equals(contents.get('sub/b.bin') as Buffer),
        ).toBe(true)
      }

      core.child.kill('SIGTERM')
      expect((await core.exited).code).toBe(0)
    })

    it('downloads a magnet link: fetches the metadata from the peer in it, then the data', async () => {
      const tmp = mkdtempSync(join(tmpdir(), 'tribler-cli-magnet-'))
      const contents = await writeRandomFiles(join(tmp, 'seed', 'album'), {
        'one.bin': 700_000,
        'two.bin': 300_000,
      })
      const made = await createTorrent({ path: join(tmp, 'seed', 'album'), out: join(tmp, 'album.torrent') })
      const seeder = await LibtorrentPeer.start({ host: '127.0.0.62' })
      cleanups.push(() => seeder.stop())
      await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: join(tmp, 'seed') })
      await seeder.waitFor((s) => s.torrents[0]?.state === 'seeding')

      const stateDir = tempStateDir()
      writeFileSync(
        join(stateDir, 'settings.json'),
        JSON.stringify({ libtorrent: { dht: false }, download_defaults: { saveas: join(tmp, 'default') } }),
      )
      const core = cli(['--port', '0', '--api-key', KEY], { stateDir })
      const port = Number(new URL(await apiUrl(core)).port)

      const magnet = `magnet:?xt=urn:btih:${made.infoHash}&dn=album&x.pe=127.0.0.62:${seeder.port}`
      const dest = join(tmp, 'got')
      const download = cli(['download', magnet, '--port', String(port), '--dest', dest], {
        client: true,
        env: CLIENT_ENV,
      })
      const { code } = await download.exited
      expect({ code, err: download.stderr() }).toEqual({ code: 0, err: '' })
      const lines = download.stdout().trim().split('\n')
      expect(lines[0]).toMatch(new RegExp(`^Downloading .+ \\(${made.infoHash}\\)$`))
      for (const line of lines.slice(1, -1)) expect(line).toMatch(PROGRESS)
      expect(lines.at(-2)).toMatch(/^100\.0% .* seeding$/)
      expect(lines.at(-1)).toBe(`Completed: album (${made.infoHash}); it keeps seeding in the core`)
      for (const [relative, data] of contents)
        expect(readFileSync(join(dest, 'album', relative)).equals(data)).toBe(true)

      core.child.kill('SIGTERM')
      expect((await core.exited).code).toBe(0)
    })
  },
)
