import { afterEach, describe, expect, it } from 'vitest'
import {
  Community,
  type CommunityDeps,
  DiscoveryCommunity,
  Ipv8Endpoint,
  PrivateKey,
  payload,
  signedPacket,
} from '../../src/ipv8/index.js'
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

const Note = payload(1, { text: 'varlenHutf8' })

class NoteCommunity extends Community {
  readonly notes: string[] = []
  constructor(deps: CommunityDeps) {
    super(deps, ID, { strategies: () => [], bootstrap: { publicNetwork: false }, signedRateLimit: false })
    this.addSignedHandler(Note, (_peer, p) => this.notes.push(p.text))
  }
}

describe('signature batches over real UDP on loopback', () => {
  it('handles a burst of signed messages in order and drops and counts each forged one', async () => {
    const [receiverSocket, senderSocket] = await Promise.all([
      udpTransport.bind({ host: '127.0.0.41' }),
      udpTransport.bind({ host: '127.0.0.42' }),
    ])
    const receiver = new NoteCommunity({
      endpoint: new Ipv8Endpoint({ socket: receiverSocket }, { rateLimit: false }),
      key: PrivateKey.generate(),
    })
    await receiver.start()
    try {
      const sender = PrivateKey.generate()
      const expected: string[] = []
      for (let i = 0; i < 120; i++) {
        const packet = signedPacket(receiver.prefix, Note, { text: `note ${i}` }, sender, BigInt(i + 1))
        if (i % 20 === 7) packet[packet.length - 1] = (packet[packet.length - 1] as number) ^ 0x40
        else expected.push(`note ${i}`)
        senderSocket.send(packet, receiverSocket.local)
      }
      await until(() => receiver.notes.length + receiver.statistics.dropped.badSignature >= 120, 10_000)
      expect(receiver.notes).toEqual(expected)
      expect(receiver.statistics.dropped.badSignature).toBe(6)
    } finally {
      await receiver.stop()
      await Promise.all([receiverSocket.close(), senderSocket.close()])
    }
  })
})
