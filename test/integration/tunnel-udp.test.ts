import { afterEach, describe, expect, it } from 'vitest'
import { circuitDatagramSocket, TunnelCommunity } from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { type DatagramSocket, type SocketAddress, udpTransport } from '../../src/net/index.js'

// Client 127.0.0.61, relays .62 and .63, exits .64 and .65; the echo server listens on .70.
const host = (i: number): string => `127.0.0.${61 + i}`
const EXITS = [3, 4]

let net: OverlayTestNetwork<TunnelCommunity> | undefined
let echo: DatagramSocket | undefined
afterEach(async () => {
  await net?.stopAll()
  await echo?.close()
  net = undefined
  echo = undefined
})

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
}

describe('tunnel circuits over real UDP on loopback', () => {
  it('builds a 2-hop circuit to an exit and exchanges datagrams; the destination sees only the exit', async () => {
    echo = await udpTransport.bind({ host: '127.0.0.70', port: 0 })
    const server = echo
    const seen: SocketAddress[] = []
    server.onMessage((data, from) => {
      seen.push(from)
      server.send(data, from)
    })
    net = await OverlayTestNetwork.create(
      5,
      (deps, i, bootstrap) =>
        new TunnelCommunity(deps, {
          walkIntervalMs: 100,
          bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
          tunnel: { exit: EXITS.includes(i) },
          exitBindHost: host(i),
        }),
      { transport: udpTransport, hostOf: host },
    )
    await net.startAll()
    const client = net.node(0).community
    await until(() => client.getCandidates(2).length === 2 && (net?.minPeers ?? 0) >= 4, 30_000)
    expect(client.getCandidates(2).length).toBe(2)

    const socket = circuitDatagramSocket(client, 2)
    const circuit = await client.circuit(2, { timeoutMs: 30_000 })
    expect(circuit.hops).toHaveLength(2)
    const exitKey = circuit.hops[1]?.publicKey
    const exitIndex = net.nodes.findIndex((n) => exitKey !== undefined && n.key.publicKey.equals(exitKey))
    expect(EXITS).toContain(exitIndex)

    const replies: string[] = []
    socket.onMessage((data, from) => {
      expect(from).toEqual(server.local)
      replies.push(data.subarray(4).toString())
    })
    const sent: string[] = []
    // a UDP tracker action 0 header, so the exit's data checker lets it through
    for (let i = 0; i < 20; i++) {
      sent.push(`datagram ${i}`)
      socket.send(Buffer.concat([Buffer.alloc(4), Buffer.from(`datagram ${i}`)]), server.local)
    }
    await until(() => replies.length >= 20, 20_000)
    expect(replies.sort()).toEqual(sent.sort())
    expect(new Set(seen.map((a) => a.host))).toEqual(new Set([host(exitIndex)]))
    expect(socket.stats.sendErrors).toBe(0)
    for (const node of net.nodes) {
      const drops = node.community.drops
      expect(drops.decryptFailed + drops.replayed + drops.unknownCircuit + drops.malformed).toBe(0)
    }
    await socket.close()
  })
})
