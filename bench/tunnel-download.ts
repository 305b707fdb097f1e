// A 1-hop anonymous BitTorrent download from a libtorrent seeder, against the same download made directly over uTP.
// Our tunnel nodes (the downloader's, a relay and two exits) run in this process over real UDP, each on its own
// 127.0.0.x address; the libtorrent seeder (uTP only) and our engine on theirs. MB/s is payload over wall-clock
// time from adding the download to its last verified piece; CPU s/GB is this process's user + system time per GB
// (our engine and every tunnel node; libtorrent's own process is not counted). The reference is the direct uTP
// download in the same set-up; Tribler's own anonymous download is not measured here.
// ANON_BENCH_MIB sets the size (default 256).
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { configureLogging } from '../src/common/index.js'
import { TunnelCommunity } from '../src/ipv8/index.js'
import { OverlayTestNetwork } from '../src/ipv8/testing/harness.js'
import { batchedUdpTransport } from '../src/net/index.js'
import { startEngine } from '../test/support/engine.js'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../test/support/libtorrent.js'

configureLogging({ level: 'silent' })

const MIB = Number(process.env.ANON_BENCH_MIB ?? 256)
const RUN_TIMEOUT_MS = 15 * 60_000
const ipv8Host = (i: number): string => `127.0.0.${231 + i}`
const NODES = 4
const EXITS = [2, 3]
const SEEDER_HOST = '127.0.0.230'
const ENGINE_HOSTS = { direct: '127.0.0.236', anonymous: '127.0.0.237' }

interface Result {
  mbPerSec: number
  cpuSecPerGb: number
  seederSaw: string[]
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function download(
  tmp: string,
  torrent: Buffer,
  seeder: LibtorrentPeer,
  hops: 0 | 1,
  net: OverlayTestNetwork<TunnelCommunity>,
): Promise<Result> {
  const kind = hops === 0 ? 'direct' : 'anonymous'
  await mkdir(path.join(tmp, `state-${kind}`), { recursive: true })
  const node = await startEngine({
    stateDir: path.join(tmp, `state-${kind}`),
    host: ENGINE_HOSTS[kind],
    tcp: false,
    tunnels: () => net.node(0).community,
  })
  try {
    const start = performance.now()
    const cpuStart = process.cpuUsage()
    const { infoHash } = await node.engine.add({
      source: { kind: 'torrent', torrent },
      destination: path.join(tmp, `out-${kind}`),
      hops,
    })
    node.engine.addPeers(infoHash, [{ host: seeder.host, port: seeder.port }])
    const seen = new Set<string>()
    let done = false
    const watch = (async () => {
      while (!done) {
        const status = await seeder.status().catch(() => undefined)
        for (const peer of status?.torrents[0]?.peers ?? []) seen.add(peer.ip)
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    })()
    await until(
      () => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING',
      RUN_TIMEOUT_MS,
      `the ${kind} download`,
    )
    const seconds = (performance.now() - start) / 1000
    const cpu = process.cpuUsage(cpuStart)
    done = true
    await watch
    const download = node.engine.download(infoHash)!
    if (download.totals.hashFailures > 0) throw new Error(`${download.totals.hashFailures} pieces failed`)
    const bytes = MIB * 1024 * 1024
    return {
      mbPerSec: bytes / 1e6 / seconds,
      cpuSecPerGb: (cpu.user + cpu.system) / 1e6 / (bytes / 1e9),
      seederSaw: [...seen],
    }
  } finally {
    await node.stop()
  }
}

async function main(): Promise<void> {
  if (!libtorrentAvailable()) {
    console.log('anonymous download: skipped (python3-libtorrent is not installed)')
    return
  }
  const tmp = await mkdtemp(path.join(tmpdir(), 'anon-bench-'))
  const cleanup: Array<() => Promise<unknown>> = [() => rm(tmp, { recursive: true, force: true })]
  try {
    const seedDir = path.join(tmp, 'seed')
    await writeRandomFiles(seedDir, { 'payload.bin': MIB * 1024 * 1024 })
    const made = await createTorrent({
      path: path.join(seedDir, 'payload.bin'),
      out: path.join(tmp, 'payload.torrent'),
      pieceLength: 1024 * 1024,
    })
    const seeder = await LibtorrentPeer.start({ host: SEEDER_HOST, tcp: false })
    cleanup.push(() => seeder.stop())
    await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
    await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs: 600_000 })
    const net = await OverlayTestNetwork.create(
      NODES,
      (deps, i, bootstrap) =>
        new TunnelCommunity(deps, {
          walkIntervalMs: 100,
          bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
          tunnel: { exit: EXITS.includes(i) },
          exitBindHost: ipv8Host(i),
        }),
      { transport: batchedUdpTransport, hostOf: ipv8Host },
    )
    cleanup.push(() => net.stopAll())
    await net.startAll()
    await until(() => net.minPeers >= NODES - 1, 60_000, 'tunnel peers to meet')
    const torrent = await readFile(made.torrentPath)
    const direct = await download(tmp, torrent, seeder, 0, net)
    const anonymous = await download(tmp, torrent, seeder, 1, net)
    const exits = EXITS.map(ipv8Host)
    const onlyExits = anonymous.seederSaw.every((h) => exits.includes(h))
    console.log(`anonymous BitTorrent download: ${MIB} MiB from a libtorrent seeder over uTP, 1 MiB pieces`)
    console.log(
      `load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores; CPU s/GB counts our process only`,
    )
    console.log('run                 MB/s   CPU s/GB | vs direct MB/s   vs direct CPU')
    const row = (name: string, r: Result, ref: Result): string =>
      [
        name.padEnd(18),
        r.mbPerSec.toFixed(1).padStart(6),
        `${r.cpuSecPerGb.toFixed(1).padStart(10)} |`,
        `${(r.mbPerSec / ref.mbPerSec).toFixed(2)}x`.padStart(14),
        `${(r.cpuSecPerGb / ref.cpuSecPerGb).toFixed(2)}x`.padStart(15),
      ].join(' ')
    console.log(row('direct uTP', direct, direct))
    console.log(row('1 hop (circuit)', anonymous, direct))
    console.log(
      `the seeder saw the anonymous download from ${anonymous.seederSaw.join(', ')} (${onlyExits ? 'exits only' : 'NOT only exits'})`,
    )
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined)
  }
}

await main()
