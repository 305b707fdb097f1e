// uTP throughput on loopback: our uTP between two processes (real UDP), then libtorrent's uTP between two
// libtorrent processes for reference (TCP disabled on both). Prints MB/s, CPU seconds per GiB, packets per second
// and retransmits for ours, MB/s for libtorrent, and the ratio ours / libtorrent.
// UTP_BENCH_MIB sets the amount (default 256). libtorrent reads its file from the page cache and writes the copy
// to a temporary folder; ours moves the bytes from memory to memory and checks every byte on arrival.
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { UtpSocket } from '../src/bittorrent/utp/index.js'
import { udpTransport } from '../src/net/index.js'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../test/support/libtorrent.js'

const MIB = 1024 * 1024
const TOTAL_BYTES = Number(process.env.UTP_BENCH_MIB ?? 256) * MIB
const BLOCK_BYTES = MIB
const TIMEOUT_MS = 300_000

/** The same pseudo-random megabyte in every process, so the receiver can check each byte cheaply. */
function patternBlock(): Buffer {
  const block = Buffer.alloc(BLOCK_BYTES)
  let seed = Buffer.from('tribler-utp-bench')
  for (let offset = 0; offset < BLOCK_BYTES; offset += 32) {
    seed = createHash('sha256').update(seed).digest()
    seed.copy(block, offset)
  }
  return block
}

function cpuSeconds(): number {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1e6
}

function report(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(fields)}\n`)
}

async function receiver(host: string): Promise<void> {
  const socket = await udpTransport.bind({ host })
  const utp = new UtpSocket({ socket })
  utp.listen()
  report({ event: 'ready', port: socket.local.port })
  const block = patternBlock()
  utp.events.once('connection', (conn) => {
    const cpuStart = cpuSeconds()
    const start = performance.now()
    let received = 0
    let intact = true
    conn.on('data', (chunk: Buffer) => {
      let offset = 0
      while (offset < chunk.length) {
        const at = (received + offset) % BLOCK_BYTES
        const take = Math.min(chunk.length - offset, BLOCK_BYTES - at)
        if (chunk.compare(block, at, at + take, offset, offset + take) !== 0) intact = false
        offset += take
      }
      received += chunk.length
    })
    conn.on('end', () => {
      report({
        event: 'done',
        bytes: received,
        intact,
        seconds: (performance.now() - start) / 1000,
        cpuSeconds: cpuSeconds() - cpuStart,
        packets: socket.stats.packetsReceived,
      })
      conn.end()
      setTimeout(() => process.exit(0), 200)
    })
  })
}

async function sender(host: string, to: string): Promise<void> {
  const socket = await udpTransport.bind({ host })
  const utp = new UtpSocket({ socket })
  const [toHost, toPort] = [to.slice(0, to.lastIndexOf(':')), Number(to.slice(to.lastIndexOf(':') + 1))]
  const conn = await utp.connect({ host: toHost, port: toPort })
  const cpuStart = cpuSeconds()
  const block = patternBlock()
  const start = performance.now()
  let sent = 0
  while (sent < TOTAL_BYTES) {
    const ok = conn.write(block)
    sent += block.length
    if (!ok) await new Promise((resolve) => conn.once('drain', resolve))
  }
  conn.end()
  await new Promise((resolve) => conn.once('finish', resolve))
  const stats = conn.stats
  report({
    event: 'done',
    seconds: (performance.now() - start) / 1000,
    cpuSeconds: cpuSeconds() - cpuStart,
    packets: stats.packetsSent,
    retransmits: stats.retransmits,
    timeouts: stats.timeouts,
    cwndBytes: stats.cwndBytes,
    rttMs: stats.rttMs,
  })
  setTimeout(() => process.exit(0), 200)
}

/** What a child process prints: `ready` (port) and `done` (the other fields). */
interface Report {
  event: string
  port: number
  bytes: number
  intact: boolean
  seconds: number
  cpuSeconds: number
  packets: number
  retransmits: number
}

/** Runs this file in a child process with `args`; resolves each JSON line it prints, by event name. */
function child(args: string[]): {
  proc: ChildProcess
  event: (name: string) => Promise<Report>
} {
  const proc = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const events = new Map<string, (value: Report) => void>()
  const seen = new Map<string, Report>()
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const message = JSON.parse(line) as Report
    seen.set(message.event, message)
    events.get(message.event)?.(message)
  })
  return {
    proc,
    event: (name) =>
      new Promise<Report>((resolve, reject) => {
        const known = seen.get(name)
        if (known !== undefined) resolve(known)
        events.set(name, resolve)
        const timer = setTimeout(() => reject(new Error(`no ${name} from ${args.join(' ')}`)), TIMEOUT_MS)
        timer.unref()
        proc.once('exit', (code) => {
          if (!seen.has(name)) reject(new Error(`${args.join(' ')} exited with ${code}`))
        })
      }),
  }
}

async function ours(): Promise<{
  mbps: number
  cpuPerGiB: number
  packetsPerSec: number
  retransmits: number
}> {
  const rx = child(['--role', 'receiver', '--host', '127.0.0.51'])
  const { port } = await rx.event('ready')
  const tx = child(['--role', 'sender', '--host', '127.0.0.52', '--to', `127.0.0.51:${port}`])
  const [received, sent] = await Promise.all([rx.event('done'), tx.event('done')])
  if (process.env.UTP_BENCH_DEBUG !== undefined) console.log({ received, sent })
  if (received.bytes !== TOTAL_BYTES || !received.intact) throw new Error('our uTP transfer was not intact')
  const seconds = received.seconds
  return {
    mbps: TOTAL_BYTES / 1e6 / seconds,
    cpuPerGiB: (received.cpuSeconds + sent.cpuSeconds) / (TOTAL_BYTES / (1024 * MIB)),
    packetsPerSec: (sent.packets + received.packets) / seconds,
    retransmits: sent.retransmits,
  }
}

async function libtorrent(): Promise<number | undefined> {
  if (!libtorrentAvailable()) return undefined
  const tmp = await mkdtemp(path.join(tmpdir(), 'utp-bench-'))
  const peers: LibtorrentPeer[] = []
  try {
    await writeRandomFiles(path.join(tmp, 'seed'), { 'payload.bin': TOTAL_BYTES })
    const torrent = await createTorrent({
      path: path.join(tmp, 'seed', 'payload.bin'),
      out: path.join(tmp, 'payload.torrent'),
      pieceLength: 256 * 1024,
    })
    const seeder = await LibtorrentPeer.start({ host: '127.0.0.53', tcp: false })
    peers.push(seeder)
    const leecher = await LibtorrentPeer.start({ host: '127.0.0.54', tcp: false })
    peers.push(leecher)
    // Not seed mode: it hashes each piece on its first upload, which would be timed. Check the data first instead.
    await seeder.addTorrent({ torrentPath: torrent.torrentPath, savePath: path.join(tmp, 'seed') })
    await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs: TIMEOUT_MS })
    await leecher.addTorrent({ torrentPath: torrent.torrentPath, savePath: path.join(tmp, 'leech') })
    const start = performance.now()
    await leecher.addPeer({ ip: seeder.host, port: seeder.port })
    await leecher.waitForAlert((a) => a.type === 'torrent_finished_alert', { timeoutMs: TIMEOUT_MS })
    return TOTAL_BYTES / 1e6 / ((performance.now() - start) / 1000)
  } finally {
    for (const peer of peers) await peer.stop()
    await rm(tmp, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const role = args[args.indexOf('--role') + 1]
  const host = args[args.indexOf('--host') + 1] ?? '127.0.0.1'
  if (args.includes('--role')) {
    if (role === 'receiver') return receiver(host)
    return sender(host, args[args.indexOf('--to') + 1] ?? '')
  }
  console.log(`uTP on loopback, ${TOTAL_BYTES / MIB} MiB, one connection, real UDP between two processes`)
  const us = await ours()
  console.log(
    `ours        ${us.mbps.toFixed(1)} MB/s, ${us.cpuPerGiB.toFixed(1)} CPU s/GiB (both ends), ` +
      `${Math.round(us.packetsPerSec)} packets/s, ${us.retransmits} retransmits`,
  )
  const reference = await libtorrent()
  if (reference === undefined) {
    console.log('libtorrent  not installed (python3-libtorrent); no reference')
    return
  }
  console.log(`libtorrent  ${reference.toFixed(1)} MB/s (uTP only, to disk)`)
  console.log(`ratio ours / libtorrent: ${(us.mbps / reference).toFixed(2)}`)
}

await main()
