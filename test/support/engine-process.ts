/**
 * A BitTorrent engine as its own process, for crash tests: `tsx engine-process.ts <json options>`. It adds the
 * torrent unless the stored downloads already have it, dials the given peer and prints one JSON status line per
 * 100 ms on stdout (states seen, progress, bytes, whether data was hashed at start) until it is killed.
 */
import { readFileSync } from 'node:fs'
import { startEngine } from './engine.js'

interface Options {
  stateDir: string
  host: string
  torrentPath: string
  destination: string
  peer: { host: string; port: number }
  resumeSaveIntervalMs: number
}

const opts = JSON.parse(process.argv[2] ?? '{}') as Options
const node = await startEngine({
  stateDir: opts.stateDir,
  host: opts.host,
  tuning: { resumeSaveIntervalMs: opts.resumeSaveIntervalMs },
})
const states: string[] = []
let infoHash = node.engine.list()[0]?.infoHash
if (infoHash === undefined) {
  const added = await node.engine.add({
    source: { kind: 'torrent', torrent: readFileSync(opts.torrentPath) },
    destination: opts.destination,
  })
  infoHash = added.infoHash
}
const hash = infoHash
node.engine.events.on('state', ({ state }) => states.push(state))
states.push(node.engine.get(hash)!.status().state)
node.engine.addPeers(hash, [opts.peer])
const report = (): void => {
  const status = node.engine.get(hash)!.status()
  const download = node.engine.download(hash)!
  process.stdout.write(
    `${JSON.stringify({
      state: status.state,
      states,
      progress: status.progress,
      totalDown: download.totals.down,
      rechecked: download.rechecked,
      pieces: Buffer.from(download.pieces()).toString('hex'),
    })}\n`,
  )
}
setInterval(report, 100)
report()
