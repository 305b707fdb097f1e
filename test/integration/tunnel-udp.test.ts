import { createHash, randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { UtpSocket } from '../../src/bittorrent/utp/index.js'
import {
  type Circuit,
  circuitDatagramSocket,
  maxCircuitPayload,
  TunnelCommunity,
  type TunnelSettings,
} from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { type DatagramSocket, type SocketAddress, udpTransport } from '../../src/net/index.js'

// Client 127.0.0.61, relays .62 and .63, exits .64 and .65; the echo server listens on .70, the uTP one on .71.
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

let utps: UtpSocket[] = []
afterEach(async () => {
  for (const utp of utps) await utp.close()
  utps = []
})

async function startNodes(
  tunnel: Partial<TunnelSettings> = {},
): Promise<OverlayTestNetwork<TunnelCommunity>> {
  const nodes = await OverlayTestNetwork.create(
    5,
    (deps, i, bootstrap) =>
      new TunnelCommunity(deps, {
        walkIntervalMs: 100,
        bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
        tunnel: { exit: EXITS.includes(i), ...tunnel },
        exitBindHost: host(i),
      }),
    { transport: udpTransport, hostOf: host },
  )
  net = nodes
  await nodes.startAll()
  const client = nodes.node(0).community
  await until(() => client.getCandidates(2).length === 2 && nodes.minPeers >= 4, 30_000)
  return nodes
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
    const nodes = await startNodes()
    const client = nodes.node(0).community
    expect(client.getCandidates(2).length).toBe(2)

    const socket = circuitDatagramSocket(client, 2)
    const circuit = await client.circuit(2, { timeoutMs: 30_000 })
    expect(circuit.hops).toHaveLength(2)
    const exitKey = circuit.hops[1]?.publicKey
    const exitIndex = nodes.nodes.findIndex((n) => exitKey !== undefined && n.key.publicKey.equals(exitKey))
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
    for (const node of nodes.nodes) {
      const drops = node.community.drops
      expect(drops.decryptFailed + drops.replayed + drops.unknownCircuit + drops.malformed).toBe(0)
    }
    await socket.close()
  })

  it('carries a uTP connection over a 2-hop circuit to a uTP listener that sees only the exit', async () => {
    const nodes = await startNodes()
    const client = nodes.node(0).community
    const serverSocket = await udpTransport.bind({ host: '127.0.0.71', port: 0 })
    echo = serverSocket
    const server = new UtpSocket({ socket: serverSocket })
    utps.push(server)
    server.listen()
    const remotes: string[] = []
    const received: Buffer[] = []
    server.events.on('connection', (conn) => {
      remotes.push(conn.remote.host)
      conn.on('data', (chunk: Buffer) => received.push(chunk))
    })

    await client.circuit(2, { timeoutMs: 30_000 })
    const utp = new UtpSocket(
      { socket: circuitDatagramSocket(client, 2) },
      { packetBytes: maxCircuitPayload(2) },
    )
    utps.push(utp)
    const conn = await utp.connect(serverSocket.local, { signal: AbortSignal.timeout(20_000) })
    const payload = randomBytes(256 * 1024)
    conn.write(payload)
    await until(() => received.reduce((n, c) => n + c.length, 0) >= payload.length, 60_000)
    const got = Buffer.concat(received)
    expect(got.length).toBe(payload.length)
    expect(createHash('sha1').update(got).digest('hex')).toBe(
      createHash('sha1').update(payload).digest('hex'),
    )
    expect(remotes).toHaveLength(1)
    expect(EXITS.map(host)).toContain(remotes[0])
    conn.destroy()
  })

  it('replaces a circuit whose relay vanished without a destroy once the circuit times out', async () => {
    // short timeouts so the test runs in seconds; the defaults (20 s inactivity) take the same path
    const nodes = await startNodes({
      maxTimeInactiveMs: 3_000,
      pingIntervalMs: 1_000,
      nextHopTimeoutMs: 2_000,
    })
    const client = nodes.node(0).community
    const removed: { circuit: Circuit; reason: string }[] = []
    client.tunnelEvents.on('circuit-removed', (event) => removed.push(event))
    client.buildTunnels(2, 1)
    const first = await client.circuit(2, { timeoutMs: 30_000 })
    const relay = nodes.nodes.find((n) => n.key.publicKey.equals(first.hops[0]?.publicKey as never))
    if (relay === undefined) throw new Error('first hop is not one of the nodes')
    expect(relay.index).not.toBe(0)

    // the relay's socket goes away: no destroy, no pong, nothing more from it
    relay.endpoint.close()
    await relay.socket.close()
    const dead = relay.key.publicKey.midHex
    const replacement = (): Circuit | undefined =>
      client
        .findCircuits({ hops: 2 })
        .find((c) => c !== first && !c.hops.some((h) => h.publicKey.midHex === dead))
    await until(() => first.state === 'closing' && replacement() !== undefined, 45_000)
    expect(first.state).toBe('closing')
    expect(removed.find((r) => r.circuit === first)?.reason).toBe('no activity')
    const next = replacement()
    expect(next?.state).toBe('ready')
    expect(next?.hops).toHaveLength(2)
  })
})
