// A libtorrent leecher downloading from a libtorrent seeder over uTP, through our SOCKS5 proxy (UDP ASSOCIATE,
// plain UDP upstream), against the same download made directly. Both peers are libtorrent processes on their own
// 127.0.0.x addresses; the proxy runs in this process. MB/s is payload over wall-clock time from adding the
// torrent to its completion; CPU s/GB is this process's user + system time per GB (the proxy alone). The reference
// is the direct download; Tribler's own proxy (Python 2, Twisted) is not measured here.
// SOCKS5_BENCH_MIB sets the size (default 64).
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { configureLogging } from '../src/common/index.js'
import { udpTransport } from '../src/net/index.js'
import { Socks5Server } from '../src/socks5/index.js'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../test/support/libtorrent.js'

configureLogging({ level: 'silent' })

const MIB = Number(process.env.SOCKS5_BENCH_MIB ?? 64)
const TIMEOUT_MS = 10 * 60_000

async function main(): Promise<void> {
  if (!libtorrentAvailable()) {
    console.log('libtorrent not installed (python3-libtorrent); nothing to measure')
    return
  }
  const tmp = await mkdtemp(path.join(tmpdir(), 'socks5-bench-'))
  const seeder = await LibtorrentPeer.start({ host: '127.0.0.240', tcp: false })
  const server = new Socks5Server({
    port: 0,
    upstream: () => udpTransport.bind({ host: '127.0.0.241', port: 0 }),
  })
  try {
    const seedDir = path.join(tmp, 'seed')
    await writeRandomFiles(path.join(seedDir, 'share'), { 'data.bin': MIB * 1024 * 1024 })
    const made = await createTorrent({ path: path.join(seedDir, 'share'), out: path.join(tmp, 'b.torrent') })
    await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
    await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs: TIMEOUT_MS })
    const seederPort = (await seeder.status()).port
    await server.start()
    const address = server.address
    if (address === undefined) throw new Error('proxy not listening')

    const run = async (name: string, host: string, proxied: boolean) => {
      const leech = await LibtorrentPeer.start({
        host,
        tcp: false,
        ...(proxied && { socks5: { host: address.host, port: address.port } }),
      })
      try {
        const cpuBefore = process.cpuUsage()
        const started = performance.now()
        await leech.addTorrent({ torrentPath: made.torrentPath, savePath: path.join(tmp, name) })
        await leech.addPeer({ ip: '127.0.0.240', port: seederPort })
        await leech.waitFor((s) => s.torrents[0]?.isSeeding === true, {
          timeoutMs: TIMEOUT_MS,
          intervalMs: 50,
        })
        const seconds = (performance.now() - started) / 1000
        const cpu = process.cpuUsage(cpuBefore)
        const bytes = MIB * 1024 * 1024
        return { mbPerSec: bytes / 1e6 / seconds, cpuSecPerGb: (cpu.user + cpu.system) / 1e6 / (bytes / 1e9) }
      } finally {
        await leech.stop()
      }
    }

    const direct = await run('direct', '127.0.0.242', false)
    const proxied = await run('proxied', '127.0.0.243', true)
    console.log(
      `libtorrent uTP download of ${MIB} MiB on loopback, ${cpus().length} CPUs, load ${loadavg()[0]?.toFixed(1)}`,
    )
    console.log(
      `through our SOCKS5 proxy  ${proxied.mbPerSec.toFixed(1)} MB/s  proxy CPU ${proxied.cpuSecPerGb.toFixed(2)} s/GB`,
    )
    console.log(`direct (reference)        ${direct.mbPerSec.toFixed(1)} MB/s`)
    console.log(`ratio proxied / direct: ${(proxied.mbPerSec / direct.mbPerSec).toFixed(2)}`)
    console.log(
      `proxy relayed ${server.stats.datagramsUp} datagrams up, ${server.stats.datagramsDown} down; dropped ${JSON.stringify(server.stats.dropped)}`,
    )
  } finally {
    await server.stop()
    await seeder.stop()
    await rm(tmp, { recursive: true, force: true })
  }
}

await main()
