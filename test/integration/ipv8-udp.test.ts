import { afterEach, describe, expect, it } from 'vitest'
import { Community, DiscoveryCommunity } from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { udpTransport } from '../../src/net/index.js'

const ID = Buffer.from('5e1f00d5e1f00d5e1f00d5e1f00d5e1f00d5e1f0', 'hex')

let net: OverlayTestNetwork<Community> | undefined
afterEach(async () => {
  await net?.stopAll()
  net = undefined
})

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
}

describe('IPv8 over real UDP on loopback', () => {
  it('10 nodes on their own 127.0.0.x addresses all find each other', async () => {
    net = await OverlayTestNetwork.create(
      10,
      (deps, _i, bootstrap) =>
        new Community(deps, ID, {
          walkIntervalMs: 100,
          bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
        }),
      { transport: udpTransport, hostOf: (i) => `127.0.0.${i + 11}` },
    )
    await net.startAll()
    await until(() => net !== undefined && net.minPeers >= 9, 30_000)
    expect(net.minPeers).toBe(9)
    for (const node of net.nodes) {
      expect(node.endpoint.stats.drops.rejected).toBe(0)
      expect(node.socket.stats.sendErrors).toBe(0)
      for (const peer of node.community.peers) expect(peer.address.host).toMatch(/^127\.0\.0\./)
    }
  })

  it('a DiscoveryCommunity answers pings and learns community lists over UDP', async () => {
    const discovery = await OverlayTestNetwork.create(
      3,
      (deps, _i, bootstrap) =>
        new DiscoveryCommunity(deps, {
          walkIntervalMs: 100,
          bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
          services: () => [ID],
        }),
      { transport: udpTransport, hostOf: (i) => `127.0.0.${i + 31}` },
    )
    net = discovery as unknown as OverlayTestNetwork<Community>
    await discovery.startAll()
    await until(() => discovery.minPeers >= 2, 20_000)
    const a = discovery.node(0).community
    await until(() => a.network.peersForService(ID.toString('hex')).length >= 2, 10_000)
    expect(a.network.peersForService(ID.toString('hex')).length).toBe(2)
  })
})
