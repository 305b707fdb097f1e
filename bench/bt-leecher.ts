/**
 * One Tribler.ts leecher for `bench/bt.ts`, in its own process so its CPU time and peak RSS are its own: downloads
 * one torrent from one peer and prints a JSON line with the result.
 *
 *   tsx bench/bt-leecher.ts <torrent> <destination> <stateDir> <host> <peerHost:peerPort> <tcp|utp>
 */
import { readFile } from 'node:fs/promises'
import { startEngine } from '../test/support/engine.js'

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
    'usage: bt-leecher.ts <torrent> <destination> <stateDir> <host> <peerHost:peerPort> <tcp|utp>',
  )
  process.exit(2)
}
const TIMEOUT_MS = 30 * 60_000

const [peerHost, peerPort] = [
  peer.slice(0, peer.lastIndexOf(':')),
  Number(peer.slice(peer.lastIndexOf(':') + 1)),
]
const node = await startEngine({ stateDir, host, tcp: transport === 'tcp', utp: transport === 'utp' })
const torrent = await readFile(torrentPath)
const cpuBefore = process.cpuUsage()
const started = performance.now()
const { infoHash } = await node.engine.add({ source: { kind: 'torrent', torrent }, destination })
node.engine.addPeers(infoHash, [{ host: peerHost ?? '', port: peerPort }])
const deadline = Date.now() + TIMEOUT_MS
for (;;) {
  const status = node.engine.get(infoHash)?.status()
  if (status?.state === 'DLSTATUS_SEEDING') break
  if (status?.state === 'DLSTATUS_STOPPED_ON_ERROR') throw new Error(`download failed: ${status.error}`)
  if (Date.now() > deadline) throw new Error('download timed out')
  await new Promise((resolve) => setTimeout(resolve, 20))
}
const seconds = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpuBefore)
const download = node.engine.download(infoHash)
const result = {
  seconds,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  systemSeconds: cpu.system / 1e6,
  peakRssBytes: process.resourceUsage().maxRSS * 1024,
  bytes: node.engine.get(infoHash)?.status().size ?? 0,
  hashFailures: download?.totals.hashFailures ?? -1,
}
await node.stop()
console.log(JSON.stringify(result))
