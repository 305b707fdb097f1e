import { afterEach, describe, expect, it } from 'vitest'
import { Community, Ipv8Endpoint, LanBroadcastBootstrapper, PrivateKey } from '../../src/ipv8/index.js'
import { type DatagramSocket, udpTransport } from '../../src/net/index.js'

const ID = Buffer.from('1a4b1a4b1a4b1a4b1a4b1a4b1a4b1a4b1a4b1a4b', 'hex')
// The loopback network's broadcast address: like a LAN broadcast it needs SO_BROADCAST (EACCES without it),
// and it never leaves the machine.
const LOOPBACK_BROADCAST = '127.255.255.255'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  cleanups.length = 0
})

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
}

async function node(lan: LanBroadcastBootstrapper, socket: DatagramSocket): Promise<Community> {
  const endpoint = new Ipv8Endpoint({ socket })
  const community = new Community({ endpoint, key: PrivateKey.generate() }, ID, {
    strategies: () => [],
    bootstrappers: [lan],
  })
  cleanups.push(async () => {
    await community.stop()
    endpoint.close()
    await socket.close()
  })
  await community.start()
  return community
}

describe('LAN broadcast on real sockets', () => {
  it('a broadcast needs SO_BROADCAST, which the bootstrapper sets on its own socket', async () => {
    const plain = await udpTransport.bind({ host: '127.0.0.1' })
    cleanups.push(() => plain.close())
    plain.send(Buffer.from('x'), { host: LOOPBACK_BROADCAST, port: plain.local.port })
    await until(() => plain.stats.sendErrors === 1, 5_000)
    expect(plain.stats.sendErrors).toBe(1)

    const [socketA, socketB] = [
      await udpTransport.bind({ host: '127.0.0.1' }),
      await udpTransport.bind({ host: '127.0.0.1' }),
    ]
    // b announces to a's overlay port only; a's overlay is not running yet, so nobody answers
    const lanB = new LanBroadcastBootstrapper({
      broadcastHost: LOOPBACK_BROADCAST,
      ports: [socketA.local.port, socketA.local.port],
    })
    const b = await node(lanB, socketB)
    expect(lanB.local?.host).toBe('0.0.0.0')
    await until(() => lanB.socketStats?.packetsSent === 1, 5_000)
    // a announces to b's broadcast socket, as py-ipv8 nodes find each other: b walks to a's broadcast socket,
    // which hands the request to a's overlay, which answers from its own socket
    const lanA = new LanBroadcastBootstrapper({
      broadcastHost: LOOPBACK_BROADCAST,
      ports: [lanB.local?.port ?? 0, lanB.local?.port ?? 0],
    })
    const a = await node(lanA, socketA)
    await until(() => a.network.size === 1 && b.network.size === 1, 15_000)
    expect(b.network.peers[0]?.address).toEqual(socketA.local)
    expect(a.network.peers[0]?.address).toEqual(socketB.local)
    expect(lanA.stats.announces).toBe(1)
    expect(lanA.socketStats?.sendErrors).toBe(0)
    expect(lanB.socketStats?.sendErrors).toBe(0)
    expect(lanB.stats.beaconsHeard).toBe(1)
    expect(lanA.stats.handoffs).toBeGreaterThanOrEqual(1)
  })
})
