import { describe, expect, it, vi } from 'vitest'
import { encode } from '../../bencode/index.js'
import { MemoryNetwork } from '../../net/index.js'
import { DhtNode } from './dht-node.js'
import { Krpc } from './krpc.js'
import { memoryDhtStateStore } from './state-store.js'
import type { DhtStateStore } from './types.js'

const INFO_HASH = Buffer.alloc(20, 0x5a)
const PORT = 6881

/** A network of DHT nodes on 10.0.0.1..n, all bootstrapped from the first. */
// Queries on the in-memory network are answered within a few event-loop turns; the short default timeout keeps
// lossy-network tests quick, and tests that need every live node to count as alive pass a generous one, since a
// loaded machine can starve the event loop for longer than 150 ms.
async function swarm(net: MemoryNetwork, count: number, stores: DhtStateStore[] = [], queryTimeoutMs = 2000) {
  const nodes: DhtNode[] = []
  for (let i = 0; i < count; i++) {
    const socket = await net.bind({ host: `10.0.0.${i + 1}`, port: PORT })
    const store = stores[i]
    nodes.push(
      new DhtNode(store === undefined ? { socket } : { socket, store }, {
        bootstrap: i === 0 ? [] : [`10.0.0.1:${PORT}`],
        queryTimeoutMs,
        maxQueriesPerSecPerAddress: 1000,
      }),
    )
  }
  for (const node of nodes) await node.start()
  for (const node of nodes) await node.bootstrap()
  // A second round lets the first nodes learn about the later ones.
  for (const node of nodes) await node.bootstrap()
  return nodes
}

async function stopAll(nodes: DhtNode[]): Promise<void> {
  for (const node of nodes) await node.stop()
}

describe('DhtNode', () => {
  it('converges in a 30-node network and finds an announced peer', async () => {
    const net = new MemoryNetwork({ seed: 3 })
    const nodes = await swarm(net, 30)
    for (const node of nodes) expect(node.tableSize).toBeGreaterThanOrEqual(8)
    const announced = await nodes[4]!.announce(INFO_HASH, 7000)
    expect(announced.announcedTo).toBeGreaterThanOrEqual(4)
    for (const seeker of [nodes[0]!, nodes[17]!, nodes[29]!]) {
      const { peers } = await seeker.getPeers(INFO_HASH)
      expect(peers).toContainEqual({ host: '10.0.0.5', port: 7000 })
    }
    await stopAll(nodes)
  })

  it('still finds peers with 10% datagram loss', async () => {
    const net = new MemoryNetwork({ seed: 11 })
    // short timeouts: lost datagrams are retried through other nodes rather than waited for
    const nodes = await swarm(net, 30, [], 150)
    net.setConditions({ lossRate: 0.1 })
    await nodes[9]!.announce(INFO_HASH, 7001)
    let found = 0
    for (const seeker of nodes.slice(20, 30)) {
      const { peers } = await seeker.getPeers(INFO_HASH)
      if (peers.some((p) => p.host === '10.0.0.10' && p.port === 7001)) found += 1
    }
    expect(found).toBeGreaterThanOrEqual(9)
    await stopAll(nodes)
  })

  it('streams peers as they arrive and uses the implied port when asked', async () => {
    const net = new MemoryNetwork({ seed: 4 })
    const nodes = await swarm(net, 12)
    await nodes[2]!.announce(INFO_HASH, 1234, { impliedPort: true })
    const streamed: unknown[] = []
    await nodes[8]!.getPeers(INFO_HASH, { onPeers: (peers) => streamed.push(...peers) })
    expect(streamed).toContainEqual({ host: '10.0.0.3', port: PORT })
    await stopAll(nodes)
  })

  it('restores its id and routing table after a restart and pings the saved nodes', async () => {
    const net = new MemoryNetwork({ seed: 5 })
    const stores = Array.from({ length: 10 }, () => memoryDhtStateStore())
    // Generous timeouts: in memory every query is answered at once, so they only matter when a loaded machine
    // stalls the event loop, and then a timed-out ping would drop a saved node this test counts on.
    const nodes = await swarm(net, 10, stores, 10_000)
    const before = nodes[6]!
    const id = before.id
    const tableSize = before.tableSize
    await before.stop()
    expect(stores[6]!.state?.nodeId).toBe(id.toString('hex'))
    // The good nodes are saved when there are at least K (8) of them; a node that only ever queried us is not
    // good yet, so the saved list may be shorter than the table.
    const saved = stores[6]!.state?.nodes.length ?? 0
    expect(saved).toBeGreaterThanOrEqual(Math.min(8, tableSize))
    expect(saved).toBeLessThanOrEqual(tableSize)
    // Restart with no bootstrap routers at all: only the saved table can bring it back.
    const socket = await net.bind({ host: '10.0.0.77', port: PORT })
    const after = new DhtNode({ socket, store: stores[6]! }, { bootstrap: [], queryTimeoutMs: 10_000 })
    await after.start()
    expect(after.id).toEqual(id)
    expect(after.tableSize).toBeGreaterThanOrEqual(Math.min(8, tableSize))
    await nodes[1]!.announce(INFO_HASH, 9999)
    expect((await after.getPeers(INFO_HASH)).peers).toContainEqual({ host: '10.0.0.2', port: 9999 })
    await after.stop()
    await stopAll(nodes.filter((n) => n !== before))
  })

  it('refuses announce_peer without a valid token', async () => {
    const net = new MemoryNetwork()
    const nodes = await swarm(net, 2)
    const attacker = new Krpc(
      { socket: await net.bind({ host: '10.0.0.66', port: PORT }) },
      { queryTimeoutMs: 200 },
    )
    const target = { host: '10.0.0.1', port: PORT }
    const id = Buffer.alloc(20, 9)
    await expect(
      attacker.query(target, 'announce_peer', { id, info_hash: INFO_HASH, port: 1, token: Buffer.alloc(8) }),
    ).rejects.toMatchObject({ code: 'ERROR_REPLY', details: { errorCode: 203 } })
    const { response } = await attacker.query(target, 'get_peers', { id, info_hash: INFO_HASH })
    const token = response.values.token as Uint8Array
    // A token is bound to the address it was given to.
    const other = new Krpc(
      { socket: await net.bind({ host: '10.0.0.67', port: PORT }) },
      { queryTimeoutMs: 200 },
    )
    await expect(
      other.query(target, 'announce_peer', { id, info_hash: INFO_HASH, port: 1, token }),
    ).rejects.toMatchObject({
      code: 'ERROR_REPLY',
    })
    await attacker.query(target, 'announce_peer', { id, info_hash: INFO_HASH, port: 4321, token })
    expect((await nodes[1]!.getPeers(INFO_HASH)).peers).toContainEqual({ host: '10.0.0.66', port: 4321 })
    attacker.close()
    other.close()
    await stopAll(nodes)
  })

  it('drops hostile packets and answers unknown methods with error 204', async () => {
    const net = new MemoryNetwork()
    const nodes = await swarm(net, 1)
    const socket = await net.bind({ host: '10.0.0.66', port: PORT })
    const probe = new Krpc({ socket }, { queryTimeoutMs: 200 })
    for (const junk of ['d1:ad2:id3:abcee', 'i42e', 'd1:t2:aa1:y1:q1:q4:pinge', 'l'.repeat(500)]) {
      socket.send(Buffer.from(junk), { host: '10.0.0.1', port: PORT })
    }
    socket.send(encode({ t: 'x', y: 'q', q: 'find_node', a: { id: Buffer.alloc(20, 1), target: 'short' } }), {
      host: '10.0.0.1',
      port: PORT,
    })
    await expect(
      probe.query({ host: '10.0.0.1', port: PORT }, 'sample_votes', { id: Buffer.alloc(20, 1) }),
    ).rejects.toMatchObject({
      details: { errorCode: 204 },
    })
    // The two malformed dictionaries; 'i42e' and the list are not KRPC at all and are left to other protocols.
    expect(nodes[0]!.stats.invalidPackets).toBe(2)
    probe.close()
    await stopAll(nodes)
  })

  it('works over IPv6 with nodes6 (BEP 32)', async () => {
    const net = new MemoryNetwork({ seed: 6 })
    const nodes: DhtNode[] = []
    for (let i = 0; i < 12; i++) {
      const socket = await net.bind({ host: `fd00::${i + 1}`, port: PORT })
      nodes.push(
        new DhtNode({ socket }, { bootstrap: i === 0 ? [] : [`[fd00::1]:${PORT}`], queryTimeoutMs: 150 }),
      )
    }
    for (const node of nodes) await node.start()
    for (const node of nodes) await node.bootstrap()
    for (const node of nodes) await node.bootstrap()
    expect(nodes[11]!.tableSize).toBeGreaterThanOrEqual(8)
    await nodes[3]!.announce(INFO_HASH, 7100)
    expect((await nodes[10]!.getPeers(INFO_HASH)).peers).toContainEqual({ host: 'fd00::4', port: 7100 })
    await stopAll(nodes)
  })

  it('refreshes idle buckets with lookups and saves the table periodically', async () => {
    const net = new MemoryNetwork({ seed: 8 })
    const store = memoryDhtStateStore()
    const nodes = await swarm(net, 6)
    const socket = await net.bind({ host: '10.0.0.99', port: PORT })
    const node = new DhtNode(
      { socket, store },
      { bootstrap: [`10.0.0.1:${PORT}`], maintenanceIntervalMs: 20, bucketRefreshMs: 0, saveIntervalMs: 20 },
    )
    await node.start()
    await node.bootstrap()
    const before = node.stats.queriesSent
    await vi.waitFor(() => expect(node.stats.queriesSent).toBeGreaterThan(before + 5), { timeout: 5000 })
    await vi.waitFor(() => expect(store.state?.nodes.length).toBeGreaterThan(0), { timeout: 5000 })
    await node.stop()
    await stopAll(nodes)
  })

  it('uses no bootstrap routers when the public network is off, unless configured', async () => {
    const net = new MemoryNetwork()
    const socket = await net.bind({ host: '10.0.0.1', port: PORT })
    let lookups = 0
    const node = new DhtNode(
      {
        socket,
        lookup: async () => {
          lookups += 1
          return ['10.9.9.9']
        },
      },
      { publicNetwork: false, queryTimeoutMs: 50 },
    )
    await node.start()
    await node.bootstrap()
    expect(lookups).toBe(0)
    expect(socket.stats.packetsSent).toBe(0)
    await node.stop()
  })
})
