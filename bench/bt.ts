/**
 * BitTorrent download throughput on loopback: one libtorrent seeder, then one leecher at a time — Tribler.ts, a
 * libtorrent leecher and aria2 (when installed; TCP only, finds the seeder through opentracker) — each over TCP and
 * over uTP, for a 1 GiB single-file torrent and a 512 MiB torrent of 200 files. Prints MB/s, CPU seconds per GiB and
 * peak RSS of each leecher, and Tribler.ts's throughput as a ratio of libtorrent's (targets: 1.0× over TCP, 0.8×
 * over uTP, peak RSS under 200 MB). Tribler.ts runs from the built `dist/` under plain `node`, as the product does
 * (`npm run bench:bt` builds first).
 *
 *   npm run bench:bt                 # full sizes
 *   npm run bench:bt -- --quick      # 128 MiB and 64 MiB/40 files, for a smoke run
 *   npm run bench:bt -- --tcp --single   # only TCP, only the single-file torrent (also --utp, --multi)
 *   BENCH_BT_CPU_PROF=dir npm run bench:bt -- --quick   # also writes a CPU profile of each Tribler.ts leecher
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BencodeDict, decode, encode } from '../src/bencode/index.js'
import { createTorrent } from '../src/metainfo/index.js'
import { LibtorrentPeer, libtorrentAvailable } from '../test/support/libtorrent.js'
import { opentrackerAvailable, startOpentracker } from '../test/support/tracker-servers.js'

const quick = process.argv.includes('--quick')
const onlyTransport = process.argv.includes('--tcp')
  ? 'tcp'
  : process.argv.includes('--utp')
    ? 'utp'
    : undefined
const onlyShape = process.argv.includes('--single') ? 0 : process.argv.includes('--multi') ? 1 : undefined
const MiB = 1024 * 1024
const GiB = 1024 * MiB
const PIECE = 256 * 1024
const SEEDER_HOST = '127.0.0.81'
const LEECHER_HOST = '127.0.0.82'
const TIMEOUT_MS = 30 * 60_000
const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)))

interface Shape {
  readonly name: string
  /** Relative path → size. */
  readonly files: Record<string, number>
}

function shapes(): Shape[] {
  const single = quick ? 128 * MiB : GiB
  const multiTotal = quick ? 64 * MiB : 512 * MiB
  const count = quick ? 40 : 200
  const files: Record<string, number> = {}
  // Unequal sizes, so files straddle piece boundaries.
  const weights = Array.from({ length: count }, (_, i) => 1 + ((i * 37) % 11))
  const sum = weights.reduce((a, b) => a + b, 0)
  let left = multiTotal
  weights.forEach((w, i) => {
    const size = i === count - 1 ? left : Math.floor((multiTotal * w) / sum)
    files[`dir${i % 7}/file-${String(i).padStart(3, '0')}.bin`] = size
    left -= size
  })
  const all = [
    { name: quick ? 'single 128 MiB' : 'single 1 GiB', files: { 'single.bin': single } },
    { name: `multi ${multiTotal / MiB} MiB / ${count} files`, files },
  ]
  return onlyShape === undefined ? all : all.slice(onlyShape, onlyShape + 1)
}

function writeRandom(file: string, size: number): void {
  mkdirSync(path.dirname(file), { recursive: true })
  const fd = openSync(file, 'w')
  const chunk = Buffer.alloc(4 * MiB)
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(chunk.length, size - done)
      randomFillSync(chunk, 0, n)
      writeSync(fd, chunk, 0, n)
      done += n
    }
  } finally {
    closeSync(fd)
  }
}

interface Usage {
  readonly cpuSeconds: number
  /** The part of `cpuSeconds` spent in the kernel (socket reads, page cache writes). */
  readonly systemSeconds: number
  readonly peakRssBytes: number
}

/** CPU seconds (user + system), system seconds and peak RSS of a process, from /proc. */
function procUsage(pid: number): Usage | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const systemTicks = Number(fields[12])
    const ticks = Number(fields[11]) + systemTicks
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status)
    return {
      cpuSeconds: ticks / 100,
      systemSeconds: systemTicks / 100,
      peakRssBytes: Number(hwm?.[1] ?? 0) * 1024,
    }
  } catch {
    return undefined
  }
}

/** TCP rounds per torrent (`BENCH_BT_ROUNDS`, default 3; 1 with --quick). */
const TCP_ROUNDS = Math.max(1, Number(process.env.BENCH_BT_ROUNDS ?? (quick ? 1 : 3)) || 1)

interface Result extends Usage {
  readonly seconds: number
  readonly bytes: number
}

/** Per field, the median over the runs (so one slow run does not decide the ratio). */
function median(runs: readonly Result[]): Result {
  const mid = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b)
    const m = Math.floor(sorted.length / 2)
    return sorted.length % 2 === 1
      ? (sorted[m] as number)
      : ((sorted[m - 1] as number) + (sorted[m] as number)) / 2
  }
  return {
    seconds: mid(runs.map((r) => r.seconds)),
    cpuSeconds: mid(runs.map((r) => r.cpuSeconds)),
    systemSeconds: mid(runs.map((r) => r.systemSeconds)),
    peakRssBytes: Math.max(...runs.map((r) => r.peakRssBytes)),
    bytes: mid(runs.map((r) => r.bytes)),
  }
}

async function libtorrentLeech(
  torrentPath: string,
  out: string,
  seeder: LibtorrentPeer,
  utp: boolean,
): Promise<Result> {
  const leecher = await LibtorrentPeer.start({ host: LEECHER_HOST, tcp: !utp, utp })
  try {
    const pid = leecher.pid ?? 0
    const before = procUsage(pid)
    const started = performance.now()
    await leecher.addTorrent({ torrentPath, savePath: out })
    await leecher.addPeer({ ip: seeder.host, port: seeder.port })
    const status = await leecher.waitFor((s) => s.torrents[0]?.isSeeding === true, {
      timeoutMs: TIMEOUT_MS,
      intervalMs: 20,
    })
    const seconds = (performance.now() - started) / 1000
    const after = procUsage(pid)
    return {
      seconds,
      cpuSeconds: (after?.cpuSeconds ?? 0) - (before?.cpuSeconds ?? 0),
      systemSeconds: (after?.systemSeconds ?? 0) - (before?.systemSeconds ?? 0),
      peakRssBytes: after?.peakRssBytes ?? 0,
      bytes: Number(status.torrents[0]?.totalDone ?? 0),
    }
  } finally {
    await leecher.stop()
  }
}

async function ourLeech(
  torrentPath: string,
  out: string,
  seeder: LibtorrentPeer,
  utp: boolean,
): Promise<Result> {
  const state = mkdtempSync(path.join(tmpdir(), 'bench-bt-state-'))
  try {
    // BENCH_BT_CPU_PROF=<dir> writes a V8 CPU profile of each Tribler.ts leecher into <dir>.
    const profileDir = process.env.BENCH_BT_CPU_PROF
    const child = spawn(
      process.execPath,
      [
        ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
        path.join(ROOT, 'bench', 'bt-leecher.mjs'),
        torrentPath,
        out,
        state,
        LEECHER_HOST,
        `${seeder.host}:${seeder.port}`,
        utp ? 'utp' : 'tcp',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TRIBLER_NO_PUBLIC_NETWORK: '1' } },
    )
    const output = await collect(child)
    const line = output.trim().split('\n').pop() ?? ''
    return JSON.parse(line) as Result
  } finally {
    rmSync(state, { recursive: true, force: true })
  }
}

async function aria2Leech(torrentPath: string, out: string): Promise<Result> {
  const started = performance.now()
  const child = spawn(
    'aria2c',
    [
      '--seed-time=0',
      '--bt-enable-lpd=false',
      '--enable-dht=false',
      '--enable-dht6=false',
      '--enable-peer-exchange=false',
      '--file-allocation=none',
      '--summary-interval=0',
      '--console-log-level=error',
      '--check-integrity=false',
      '--bt-hash-check-seed=false',
      `--dir=${out}`,
      torrentPath,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let last: Usage | undefined
  const sampler = setInterval(() => {
    last = procUsage(child.pid ?? 0) ?? last
  }, 50)
  try {
    await collect(child)
  } finally {
    clearInterval(sampler)
  }
  return {
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: last?.cpuSeconds ?? 0,
    systemSeconds: last?.systemSeconds ?? 0,
    peakRssBytes: last?.peakRssBytes ?? 0,
    bytes: 0,
  }
}

function collect(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS)
    child.once('error', reject)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(output)
      else reject(new Error(`${child.spawnfile} exited with ${code ?? signal}:\n${output}`))
    })
  })
}

function row(who: string, transport: string, r: Result, size: number): string {
  const mbps = size / 1e6 / r.seconds
  const cpuPerGiB = (r.cpuSeconds * GiB) / size
  const systemPerGiB = (r.systemSeconds * GiB) / size
  return `${who.padEnd(12)} ${transport.padEnd(4)} ${mbps.toFixed(1).padStart(8)} MB/s ${cpuPerGiB.toFixed(2).padStart(7)} CPU s/GiB (kernel ${systemPerGiB.toFixed(2)}) ${(r.peakRssBytes / MiB).toFixed(0).padStart(6)} MiB peak RSS`
}

async function main(): Promise<void> {
  if (!libtorrentAvailable()) {
    console.error('bench:bt needs python3-libtorrent (scripts/setup.sh --test installs it)')
    process.exit(2)
  }
  const aria2 =
    spawnSync('aria2c', ['--version'], { stdio: 'ignore' }).error === undefined && opentrackerAvailable()
  const work = mkdtempSync(path.join(tmpdir(), 'bench-bt-'))
  const seeder = await LibtorrentPeer.start({ host: SEEDER_HOST })
  const summary: string[] = []
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  try {
    const prepared = []
    for (const [i, shape] of shapes().entries()) {
      const seedDir = path.join(work, `seed-${i}`)
      const name = `torrent-${i}`
      const entries = Object.entries(shape.files)
      const source = path.join(seedDir, name)
      if (entries.length === 1) writeRandom(source, entries[0]?.[1] ?? 0)
      else for (const [rel, size] of entries) writeRandom(path.join(source, rel), size)
      prepared.push({ shape, seedDir, source, size: entries.reduce((a, [, s]) => a + s, 0), i })
    }
    // The seed data goes to disk now: its writeback would otherwise run during the first leechers' downloads.
    spawnSync('sync', { stdio: 'ignore' })
    // aria2 cannot be told a peer: it finds the seeder through opentracker. The tracker is added to the .torrent
    // outside the info dictionary, so the infohash (opentracker's whitelist) is known before.
    const made = []
    for (const p of prepared) made.push({ ...p, ...(await createTorrent(p.source, { pieceLength: PIECE })) })
    const tracker = aria2
      ? await startOpentracker(
          SEEDER_HOST,
          made.map((m) => m.info.infoHash),
        )
      : undefined
    try {
      const torrents = []
      for (const m of made) {
        const dict = decode(m.torrent) as BencodeDict
        if (tracker) dict.announce = Buffer.from(`${tracker.url}/announce`)
        const torrentPath = path.join(work, `t${m.i}.torrent`)
        await writeFile(torrentPath, encode(dict))
        await seeder.addTorrent({ torrentPath, savePath: m.seedDir, seedMode: true })
        torrents.push({ ...m, torrentPath })
      }
      for (const t of torrents) {
        console.log(`\n${t.shape.name} (${(t.size / MiB).toFixed(0)} MiB, ${PIECE / 1024} KiB pieces)`)
        for (const transport of ['tcp', 'utp'] as const) {
          if (onlyTransport !== undefined && transport !== onlyTransport) continue
          const utp = transport === 'utp'
          const out = () => {
            const dir = path.join(work, 'out')
            rmSync(dir, { recursive: true, force: true })
            mkdirSync(dir)
            return dir
          }
          // Page-cache and memory state left by one leecher changes the next one's kernel CPU a lot on a shared VM,
          // so TCP runs several rounds, alternating who goes first, and compares medians. libtorrent's uTP is slow
          // on loopback (minutes per GiB), so uTP runs one round.
          const rounds = utp ? 1 : TCP_ROUNDS
          const references: Result[] = []
          const oursAll: Result[] = []
          for (let round = 0; round < rounds; round++) {
            const order =
              round % 2 === 0 ? (['libtorrent', 'ours'] as const) : (['ours', 'libtorrent'] as const)
            for (const who of order) {
              if (who === 'libtorrent') {
                const r = await libtorrentLeech(t.torrentPath, out(), seeder, utp)
                references.push(r)
                console.log(row('libtorrent', transport, r, t.size))
              } else {
                const r = await ourLeech(t.torrentPath, out(), seeder, utp)
                oursAll.push(r)
                console.log(row('Tribler.ts', transport, r, t.size))
              }
            }
            if (round === 0 && !utp && aria2) {
              try {
                console.log(row('aria2', transport, await aria2Leech(t.torrentPath, out()), t.size))
              } catch (err) {
                console.log(`aria2        tcp  failed: ${(err as Error).message.split('\n')[0]}`)
              }
            }
          }
          const reference = median(references)
          const ours = median(oursAll)
          if (rounds > 1) {
            console.log(row(`libtorrent ~`, transport, reference, t.size))
            console.log(row(`Tribler.ts ~`, transport, ours, t.size))
          }
          const ratio = reference.seconds / ours.seconds
          const target = utp ? 0.8 : 1.0
          const of = rounds > 1 ? ` (medians of ${rounds} rounds)` : ''
          const line = `${t.shape.name} ${transport}: ratio to libtorrent ${ratio.toFixed(2)}×${of} (target ${target.toFixed(1)}×), peak RSS ${(ours.peakRssBytes / MiB).toFixed(0)} MiB (target < 200 MB)`
          console.log(line)
          summary.push(line)
        }
      }
    } finally {
      await tracker?.stop()
    }
  } finally {
    await seeder.stop()
    rmSync(work, { recursive: true, force: true })
  }
  console.log(
    `\nsummary (load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')})`,
  )
  for (const line of summary) console.log(`  ${line}`)
}

await main()
