/**
 * Runs inside a private network namespace (see test/integration/lsd-multicast.test.ts): two LSD nodes on real
 * multicast sockets joined to the same IPv4 group on the namespace's loopback. Prints one JSON line with what each saw.
 * Never run it outside such a namespace: it sends multicast.
 */
import { bindLsdSocket, LocalServiceDiscovery, type LsdPeer } from '../../src/bittorrent/lsd/index.js'

const group = { host: process.argv[2] ?? '239.192.152.143', port: 6771 }
const infoHash = Buffer.alloc(20, 0x42)
const sockets = [
  await bindLsdSocket({ group, interfaceAddress: '127.0.0.1' }),
  await bindLsdSocket({ group, interfaceAddress: '127.0.0.1' }),
]
const seen: LsdPeer[][] = [[], []]
const nodes = sockets.map((socket, i) => {
  const lsd = new LocalServiceDiscovery({ socket }, { port: 7000 + i, group, publicNetwork: true })
  lsd.events.on('peer', (peer) => seen[i]!.push(peer))
  lsd.add(infoHash)
  return lsd
})
for (const node of nodes) await node.start()
const deadline = Date.now() + 5000
while (Date.now() < deadline && seen.some((s) => s.length === 0)) {
  await new Promise((resolve) => setTimeout(resolve, 50))
}
for (const node of nodes) await node.stop()
for (const socket of sockets) await socket.close()
process.stdout.write(`${JSON.stringify(seen)}\n`)
