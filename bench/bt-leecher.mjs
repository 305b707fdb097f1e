/**
 * One Tribler.ts leecher for `bench/bt.ts`, in its own process so its CPU time and peak RSS are its own: downloads
 * one torrent from one peer and prints a JSON line with the result. Plain JavaScript on the built `dist/`, run by
 * `node` alone, as the product runs: a TypeScript loader would add its own memory and CPU to what is measured.
 *
 *   node bench/bt-leecher.mjs <torrent> <destination> <stateDir> <host> <peerHost:peerPort> <tcp|utp>
 */
import { readFile } from 'node:fs/promises'

const dist = (module) => new URL(`../dist/${module}/index.js`, import.meta.url).href
const { BitTorrentEngine } = await import(dist('bittorrent/engine'))
const { logger, systemClock, TypedEmitter } = await import(dist('common'))
const { TriblerConfig } = await import(dist('config'))
const { statePaths } = await import(dist('session'))
const { Store } = await import(dist('store'))

const [torrentPath, destination, stateDir, host, peer, transport] = process.argv.slice(2)
if (
  !torrentPath ||
  !destination ||
  !stateDir ||
  !host ||
  !peer ||
  (transport !== 'tcp' && transport !== 'utp')
) {
  console.error(
    'usage: bt-leecher.mjs <torrent> <destination> <stateDir> <host> <peerHost:peerPort> <tcp|utp>',
  )
  process.exit(2)
}
const TIMEOUT_MS = 30 * 60_000

const [peerHost, peerPort] = [
  peer.slice(0, peer.lastIndexOf(':')),
  Number(peer.slice(peer.lastIndexOf(':') + 1)),
]
// The engine as the test support builds it: in-memory settings without the DHT, a SQLite store in the state
// folder, no public network, listening on `host`.
const config = new TriblerConfig()
config.override('libtorrent', 'dht', false)
const paths = statePaths(stateDir)
const store = new Store(paths.database)
// The engine registers its tables' migrations when made, so the store opens and migrates after it.
const engine = new BitTorrentEngine(
  { config, store, events: new TypedEmitter(), clock: systemClock, logger, publicNetwork: false, paths },
  { listenHost: host, port: 0, tcp: transport === 'tcp', utp: transport === 'utp' },
)
store.open()
store.migrate()
await engine.start()

const torrent = await readFile(torrentPath)
const cpuBefore = process.cpuUsage()
const started = performance.now()
const { infoHash } = await engine.add({ source: { kind: 'torrent', torrent }, destination })
engine.addPeers(infoHash, [{ host: peerHost, port: peerPort }])
const deadline = Date.now() + TIMEOUT_MS
for (;;) {
  const status = engine.get(infoHash)?.status()
  if (status?.state === 'DLSTATUS_SEEDING') break
  if (status?.state === 'DLSTATUS_STOPPED_ON_ERROR') throw new Error(`download failed: ${status.error}`)
  if (Date.now() > deadline) throw new Error('download timed out')
  await new Promise((resolve) => setTimeout(resolve, 20))
}
const seconds = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpuBefore)
const download = engine.download(infoHash)
const result = {
  seconds,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  systemSeconds: cpu.system / 1e6,
  peakRssBytes: process.resourceUsage().maxRSS * 1024,
  bytes: engine.get(infoHash)?.status().size ?? 0,
  hashFailures: download?.totals.hashFailures ?? -1,
}
await engine.stop()
store.close()
console.log(JSON.stringify(result))
