import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { type DatagramSocket, MemoryNetwork, type SocketAddress } from '../../net/index.js'
import type { EndpointOptions } from '../endpoint/index.js'
import { OverlayTestNetwork } from '../testing/harness.js'
import type { Circuit } from './circuit.js'
import { circuitDatagramSocket } from './circuit-socket.js'
import { TunnelCommunity } from './community.js'
import { encryptLayer, type SessionKeys } from './crypto.js'
import { cellMessage, DataPayload, encodeCell } from './payloads.js'
import { DESTROY_REASON_UNNEEDED, FORWARD, PEER_FLAG_EXIT_BT, type TunnelSettings } from './types.js'

const ECHO: SocketAddress = { host: '127.0.0.200', port: 7 }
/** The names the exits resolve (their own resolver), and every name they were asked for. */
const EXIT_NAMES: Record<string, string> = { 'echo.example': ECHO.host }
const exitLookups: string[] = []
async function exitLookup(host: string): Promise<string[]> {
  exitLookups.push(host)
  const address = EXIT_NAMES[host]
  if (address === undefined) throw new Error(`ENOTFOUND ${host}`)
  return [address]
}
// Exits only carry BitTorrent-like or IPv8-like traffic: a UDP tracker action 0 at offset 0 passes the checker.
const ping = (n: number): Buffer => Buffer.concat([Buffer.alloc(4), Buffer.from(`ping ${n}`)])

interface Scenario {
  net: OverlayTestNetwork<TunnelCommunity>
  memory: MemoryNetwork
  clock: ManualClock
  echo: DatagramSocket
  /** Source addresses the echo server saw. */
  seen: SocketAddress[]
  /** Advances time in steps, letting promises (socket binds) settle in between. */
  run(ms: number): Promise<void>
}

let scenario: Scenario | undefined
afterEach(async () => {
  await scenario?.net.stopAll()
  await scenario?.echo.close()
  scenario = undefined
})

/** Node 0 is the client; nodes in `exits` are exit nodes, the rest relays. */
async function setup(
  count: number,
  exits: number[],
  tunnel: Partial<TunnelSettings> = {},
  endpoint: EndpointOptions = {},
  classOf: (index: number) => typeof TunnelCommunity = () => TunnelCommunity,
): Promise<Scenario> {
  const clock = new ManualClock()
  const memory = new MemoryNetwork({ clock, latencyMs: 5, seed: 7 })
  const net = await OverlayTestNetwork.create(
    count,
    (deps, i, bootstrap) =>
      new (classOf(i))(
        { ...deps, exitTransport: memory, exitLookup },
        {
          bootstrap: { publicNetwork: false, addresses: bootstrap },
          tunnel: { exit: exits.includes(i), removeTunnelDelayMs: 0, ...tunnel },
          exitBindHost: `127.0.0.${i + 1}`,
        },
      ),
    { transport: memory, clock, endpoint },
  )
  const echo = await memory.bind(ECHO)
  const seen: SocketAddress[] = []
  echo.onMessage((data, from) => {
    seen.push(from)
    echo.send(data, from)
  })
  const run = async (ms: number): Promise<void> => {
    for (let done = 0; done < ms; done += 50) {
      clock.advance(50)
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  await net.startAll()
  await run(5_000)
  scenario = { net, memory, clock, echo, seen, run }
  return scenario
}

async function readyCircuit(s: Scenario, hops: number) {
  const client = s.net.node(0).community
  const pending = client.circuit(hops, { timeoutMs: 30_000 })
  let result: Awaited<typeof pending> | undefined
  let failure: unknown
  pending.then(
    (c) => {
      result = c
    },
    (err: unknown) => {
      failure = err
    },
  )
  for (let i = 0; i < 300 && result === undefined && failure === undefined; i++) await s.run(100)
  if (failure !== undefined) throw failure
  if (result === undefined) throw new Error('no circuit')
  return result
}

describe('TunnelCommunity circuits (in-memory network)', () => {
  it('learns peer flags from introductions', async () => {
    const s = await setup(4, [2, 3])
    const client = s.net.node(0).community
    expect(
      client
        .getCandidates(PEER_FLAG_EXIT_BT)
        .map((p) => p.address.host)
        .sort(),
    ).toEqual(['127.0.0.3', '127.0.0.4'])
    expect(client.peerFlags).toEqual([1, 8])
    expect(s.net.node(2).community.peerFlags).toEqual([1, 2, 4, 8])
  })

  for (const hops of [1, 2, 3]) {
    it(`builds a ${hops}-hop circuit and exchanges datagrams with an echo server through it`, async () => {
      const s = await setup(7, [4, 5, 6])
      const circuit = await readyCircuit(s, hops)
      expect(circuit.hops).toHaveLength(hops)
      const exitHost = circuit.hops.at(-1)?.publicKey
      const exitNode = s.net.nodes.find((n) => n.key.publicKey.equals(exitHost as never))
      expect(exitNode).toBeDefined()
      expect([4, 5, 6]).toContain(exitNode?.index)
      // every hop is a distinct node, never the client
      const hopNodes = circuit.hops.map(
        (h) => s.net.nodes.find((n) => n.key.publicKey.equals(h.publicKey))?.index,
      )
      expect(new Set(hopNodes).size).toBe(hops)
      expect(hopNodes).not.toContain(0)

      const client = s.net.node(0).community
      const replies: { data: string; from: SocketAddress }[] = []
      circuit.onData((data, from) => replies.push({ data: data.subarray(4).toString(), from }))
      for (let i = 0; i < 5; i++) client.sendData(circuit, ECHO, ping(i))
      for (let i = 0; i < 50 && replies.length < 5; i++) await s.run(100)
      expect(replies.map((r) => r.data).sort()).toEqual(['ping 0', 'ping 1', 'ping 2', 'ping 3', 'ping 4'])
      expect(replies.every((r) => r.from.host === ECHO.host && r.from.port === ECHO.port)).toBe(true)
      // the echo server only ever saw the exit's address
      expect(new Set(s.seen.map((a) => a.host))).toEqual(new Set([`127.0.0.${(exitNode?.index ?? 0) + 1}`]))
      expect(circuit.bytesUp).toBeGreaterThan(0)
      expect(circuit.bytesDown).toBeGreaterThan(0)

      // intermediate hops hold two relay routes each, the exit one exit socket
      for (const index of hopNodes.slice(0, -1)) {
        expect(s.net.node(index as number).community.relays.size).toBe(2)
      }
      expect(exitNode?.community.exitSockets.size).toBe(1)
    })
  }

  it('serves a DatagramSocket over circuits', async () => {
    const s = await setup(5, [3, 4])
    const socket = circuitDatagramSocket(s.net.node(0).community, 2)
    const got: string[] = []
    socket.onMessage((data, from) => {
      expect(from).toEqual(ECHO)
      got.push(data.subarray(4).toString())
    })
    socket.send(ping(0), ECHO) // no circuit yet: dropped and counted
    expect(socket.stats.sendErrors).toBe(1)
    await readyCircuit(s, 2)
    socket.send(ping(1), ECHO)
    socket.send(ping(2), ECHO)
    for (let i = 0; i < 50 && got.length < 2; i++) await s.run(100)
    expect(got.sort()).toEqual(['ping 1', 'ping 2'])
    expect(socket.stats.packetsSent).toBe(2)
    expect(socket.stats.packetsReceived).toBe(2)
    await socket.close()
  })

  it('sends to a host name as a domain address the exit resolves; the reply comes from the address', async () => {
    const s = await setup(4, [3])
    exitLookups.length = 0
    const socket = circuitDatagramSocket(s.net.node(0).community, 1)
    const got: { data: string; from: SocketAddress }[] = []
    socket.onMessage((data, from) => got.push({ data: data.subarray(4).toString(), from }))
    await readyCircuit(s, 1)
    socket.send(ping(1), { host: 'echo.example', port: ECHO.port })
    socket.send(ping(2), { host: 'no-such.example', port: ECHO.port })
    for (let i = 0; i < 50 && got.length < 1; i++) await s.run(100)
    for (let i = 0; i < 50 && s.net.node(3).community.drops.exitUnresolved < 1; i++) await s.run(100)
    expect(got).toEqual([{ data: 'ping 1', from: ECHO }])
    expect(s.seen.map((a) => a.host)).toEqual(['127.0.0.4'])
    // only the exit resolved the names, and the one it could not is dropped and counted there
    expect(exitLookups.sort()).toEqual(['echo.example', 'no-such.example'])
    expect(s.net.node(3).community.drops.exitUnresolved).toBe(1)
    expect(socket.stats.packetsSent).toBe(2)
    // what is neither an address nor a host name never leaves
    socket.send(ping(3), { host: 'not a name', port: ECHO.port })
    socket.send(ping(4), { host: '', port: ECHO.port })
    expect(socket.stats.sendErrors).toBe(2)
    expect(socket.stats.packetsSent).toBe(2)
    await socket.close()
  })

  it('reports the destinations of a closed circuit, then sends them through another', async () => {
    const s = await setup(5, [3, 4])
    const client = s.net.node(0).community
    const lost: SocketAddress[][] = []
    const socket = circuitDatagramSocket(client, 2, {
      onRouteLost: (destinations) => lost.push([...destinations]),
    })
    const first = await readyCircuit(s, 2)
    socket.send(ping(1), ECHO)
    for (let i = 0; i < 50 && s.seen.length < 1; i++) await s.run(100)
    const used = client.findCircuits({ hops: 2 }).find((c) => c.bytesUp > 0) ?? first
    client.removeCircuit(used.circuitId, 'test')
    expect(lost).toEqual([[ECHO]])
    await readyCircuit(s, 2)
    socket.send(ping(2), ECHO)
    for (let i = 0; i < 50 && s.seen.length < 2; i++) await s.run(100)
    expect(s.seen).toHaveLength(2)
    expect(lost).toHaveLength(1)
    await socket.close()
  })

  it('does not build a 1-hop circuit without exits', async () => {
    const s = await setup(3, [])
    expect(s.net.node(0).community.createCircuit(1)).toBeUndefined()
    await expect(readyCircuit(s, 1)).rejects.toMatchObject({ code: 'NO_CIRCUIT' })
  })

  it('keeps idle circuits alive with pings and tears them down with destroy', async () => {
    const s = await setup(6, [4, 5])
    const client = s.net.node(0).community
    const circuit = await readyCircuit(s, 3)
    await s.run(45_000) // well past the 20 s inactivity limit: pings keep it alive
    expect(circuit.state).toBe('ready')
    const joined = () =>
      s.net.nodes.slice(1).reduce((n, x) => n + x.community.relays.size + x.community.exitSockets.size, 0)
    expect(joined()).toBeGreaterThanOrEqual(5)
    client.stopTunnels(3)
    client.removeCircuit(circuit.circuitId, 'test', 2)
    expect(circuit.state).toBe('closing')
    for (let i = 0; i < 20 && joined() > 0; i++) await s.run(100)
    expect(joined()).toBe(0)
    expect(s.net.nodes.reduce((n, x) => n + x.community.drops.unauthorizedDestroy, 0)).toBe(0)
  })

  it('removes a circuit whose first hop went silent', async () => {
    const s = await setup(5, [3, 4])
    const client = s.net.node(0).community
    const circuit = await readyCircuit(s, 2)
    client.stopTunnels(2)
    const removed: string[] = []
    client.tunnelEvents.on('circuit-removed', ({ reason }) => removed.push(reason))
    const first = circuit.hops[0]?.address
    s.memory.partition(first?.host as string)
    for (let i = 0; i < 60 && circuit.state !== 'closing'; i++) await s.run(1_000)
    expect(circuit.state).toBe('closing')
    expect(removed).toContain('no activity')
  })

  it('runs the speed test against the exit of a 2-hop circuit', async () => {
    const s = await setup(5, [3, 4])
    const client = s.net.node(0).community
    const circuit = await readyCircuit(s, 2)
    const pending = client.speedTest(circuit, { requestBytes: 512, responseBytes: 1000 })
    let result: { rttMs: number; responseBytes: number } | undefined
    void pending.then((r) => {
      result = r
    })
    for (let i = 0; i < 20 && result === undefined; i++) await s.run(100)
    expect(result?.responseBytes).toBe(1000)
    expect(result?.rttMs).toBeGreaterThan(0)
  })

  it('survives random cells: each is dropped and counted, nothing throws', async () => {
    const s = await setup(5, [3, 4])
    const circuit = await readyCircuit(s, 2)
    const relayNode = s.net.nodes.find((n) => n.key.publicKey.equals(circuit.hops[0]?.publicKey as never))
    const exitNode = s.net.nodes.find((n) => n.key.publicKey.equals(circuit.hops[1]?.publicKey as never))
    const ids = [circuit.circuitId, ...(relayNode?.community.relays.keys() ?? []), 0, 0xffffffff]
    let seed = 12345
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 0x80000000
      return seed / 0x80000000
    }
    for (const node of [s.net.node(0), relayNode, exitNode]) {
      const community = node?.community as TunnelCommunity
      const before = Object.values(community.drops).reduce((a, b) => a + b, 0)
      let handled = 0
      for (let i = 0; i < 2_000; i++) {
        const message = Buffer.alloc(Math.floor(random() * 200))
        for (let j = 0; j < message.length; j++) message[j] = Math.floor(random() * 256)
        if (message.length > 0 && random() < 0.5) message[0] = Math.floor(random() * 21)
        const cell = encodeCell(community.prefix, {
          circuitId: ids[Math.floor(random() * ids.length)] as number,
          plaintext: random() < 0.3,
          relayEarly: random() < 0.5,
          message,
        })
        const data = random() < 0.1 ? cell.subarray(0, Math.floor(random() * cell.length)) : cell
        if (community.onPacket(data, s.net.node(1).socket.local)) handled += 1
      }
      const after = Object.values(community.drops).reduce((a, b) => a + b, 0)
      // a relay passes random bytes on (it cannot authenticate a layer it adds); everything else is dropped
      expect(after - before + handled).toBeGreaterThanOrEqual(1_900)
      expect(community.statistics.dropped.handlerError).toBe(0)
    }
    // the circuit still works
    const got: Buffer[] = []
    circuit.onData((data) => got.push(data))
    s.net.node(0).community.sendData(circuit, ECHO, ping(1))
    for (let i = 0; i < 20 && got.length === 0; i++) await s.run(100)
    expect(got).toHaveLength(1)
  })

  it('lets circuit traffic past the per-host flood limit while a flooder stays limited', async () => {
    // a limit far below the traffic below, which introductions and circuit set-up stay well within
    const s = await setup(4, [2, 3], {}, { rateLimit: { packetsPerSec: 20, burst: 40 } })
    const client = s.net.node(0).community
    const circuit = await readyCircuit(s, 1)
    const exitNode = s.net.nodes.find((n) => n.key.publicKey.equals(circuit.hops[0]?.publicKey as never))
    if (exitNode === undefined) throw new Error('no exit')
    const got: Buffer[] = []
    circuit.onData((data) => got.push(data))
    // the first datagram opens the exit's socket, which queues only a few until it is bound
    client.sendData(circuit, ECHO, ping(0))
    for (let i = 0; i < 50 && got.length < 1; i++) await s.run(100)
    for (let i = 1; i <= 300; i++) client.sendData(circuit, ECHO, ping(i))
    for (let i = 0; i < 50 && got.length < 301; i++) await s.run(100)
    // every cell crossed the exit's endpoint and every reply the client's
    expect(s.seen).toHaveLength(301)
    expect(got).toHaveLength(301)
    expect(exitNode.endpoint.stats.drops.rateLimited).toBe(0)
    expect(s.net.node(0).endpoint.stats.drops.rateLimited).toBe(0)

    // the same circuit id from another address is a flood like any other
    const flooder = await s.memory.bind({ host: '127.0.0.99' })
    const cell = encodeCell(exitNode.community.prefix, {
      circuitId: circuit.circuitId,
      plaintext: false,
      relayEarly: false,
      message: Buffer.alloc(100),
    })
    for (let i = 0; i < 300; i++) flooder.send(cell, exitNode.socket.local)
    await s.run(100)
    expect(exitNode.endpoint.stats.drops.rateLimited).toBeGreaterThanOrEqual(300 - 40 - 5)
    await flooder.close()
  })

  it('refuses to exit traffic that does not look like BitTorrent or IPv8', async () => {
    const s = await setup(4, [2, 3])
    const circuit = await readyCircuit(s, 1)
    s.net.node(0).community.sendData(circuit, ECHO, Buffer.from('GET / HTTP/1.1\r\n\r\n'))
    await s.run(1_000)
    expect(s.seen).toHaveLength(0)
    const exit = s.net.nodes.find((n) => n.key.publicKey.equals(circuit.hops[0]?.publicKey as never))
    expect(exit?.community.drops.exitRefused).toBe(1)
  })

  it('drops malformed, unknown, forged and replayed cells and counts them', async () => {
    const s = await setup(4, [2, 3])
    const client = s.net.node(0).community
    const circuit = await readyCircuit(s, 1)
    const exitNode = s.net.nodes.find((n) => n.key.publicKey.equals(circuit.hops[0]?.publicKey as never))
    if (exitNode === undefined) throw new Error('no exit')
    const exit = exitNode.community
    const from = s.net.node(0).socket.local
    const prefix = exit.prefix

    // a cell with no inner message
    expect(exit.onPacket(Buffer.concat([prefix, Buffer.from([0, 0, 0, 0, 1, 0, 0])]), from)).toBe(false)
    expect(exit.drops.malformed).toBe(1)

    // an encrypted cell for a circuit id nobody knows
    const unknown = encodeCell(prefix, {
      circuitId: 0xdeadbeef,
      plaintext: false,
      relayEarly: false,
      message: Buffer.alloc(40),
    })
    expect(exit.onPacket(unknown, from)).toBe(false)
    expect(exit.drops.unknownCircuit).toBe(1)

    // a cell for the real circuit id under the wrong keys
    const message = cellMessage(DataPayload, {
      circuitId: circuit.circuitId,
      destination: ECHO,
      origin: { host: '0.0.0.0', port: 0 },
      data: ping(9),
    })
    const forged = encodeCell(prefix, {
      circuitId: circuit.circuitId,
      plaintext: false,
      relayEarly: false,
      message: encryptLayer(
        message,
        { ...(circuit.hops[0]?.keys as SessionKeys), keyForward: Buffer.alloc(32, 1), counterForward: 100 },
        FORWARD,
      ),
    })
    expect(exit.onPacket(forged, from)).toBe(false)
    expect(exit.drops.decryptFailed).toBe(1)

    // a data cell with the plaintext flag: only create/created may travel in plaintext
    const plain = encodeCell(prefix, {
      circuitId: circuit.circuitId,
      plaintext: true,
      relayEarly: false,
      message,
    })
    expect(exit.onPacket(plain, from)).toBe(false)
    expect(exit.drops.malformed).toBe(2)

    // replay a genuine cell: the first copy exits, the second is refused
    const sent: Buffer[] = []
    const original = s.net.node(0).endpoint.send.bind(s.net.node(0).endpoint)
    s.net.node(0).endpoint.send = (data, to) => {
      sent.push(Buffer.from(data))
      original(data, to)
    }
    client.sendData(circuit, ECHO, ping(10))
    await s.run(500)
    const seenBefore = s.seen.length
    const cell = sent.find((d) => d[22] === 0)
    if (cell === undefined) throw new Error('no cell sent')
    expect(exit.onPacket(cell, from)).toBe(false)
    expect(exit.drops.replayed).toBe(1)
    await s.run(500)
    expect(s.seen.length).toBe(seenBefore)
  })
})

describe('TunnelCommunity relay slots (in-memory network)', () => {
  async function ready(s: Scenario, circuits: Circuit[]): Promise<void> {
    for (let i = 0; i < 100 && circuits.some((c) => c.state === 'extending'); i++) await s.run(100)
  }

  it('admits creates into free random, then competing slots, refuses the next and admits again once one frees', async () => {
    const s = await setup(2, [1], { relaySlots: { random: 1, competing: 1 } })
    const client = s.net.node(0).community
    const exit = s.net.node(1).community
    const first = client.createCircuit(1) as Circuit
    await ready(s, [first])
    const second = client.createCircuit(1) as Circuit
    await ready(s, [second])
    expect([first.state, second.state]).toEqual(['ready', 'ready'])
    expect(exit.slots?.random).toEqual([first.circuitId])
    expect(exit.slots?.competing).toEqual([{ balance: 0, circuitId: second.circuitId }])

    // every balance is 0, so the third cannot win a competing slot: its create goes unanswered
    const third = client.createCircuit(1) as Circuit
    for (let i = 0; i < 150 && third.state !== 'closing'; i++) await s.run(100)
    expect(third.state).toBe('closing')
    expect(third.closeReason).toContain('timeout')
    expect(exit.drops.noSlot).toBe(1)
    expect(exit.exitSockets.has(third.circuitId)).toBe(false)
    expect(second.state).toBe('ready')

    client.removeCircuit(first.circuitId, 'test', DESTROY_REASON_UNNEEDED)
    for (let i = 0; i < 20 && exit.slots?.random[0] !== undefined; i++) await s.run(100)
    expect(exit.slots?.random).toEqual([undefined])
    const fourth = client.createCircuit(1) as Circuit
    await ready(s, [fourth])
    expect(fourth.state).toBe('ready')
    expect(exit.slots?.random).toEqual([fourth.circuitId])
  })

  it('gives a competing slot to a higher balance, destroying the circuit that held it', async () => {
    const balances = [1, 5, 2]
    class Ledger extends TunnelCommunity {
      protected override initiatorBalance(): number {
        return balances.shift() ?? 0
      }
    }
    const s = await setup(2, [1], { relaySlots: { random: 0, competing: 1 } }, {}, (i) =>
      i === 1 ? Ledger : TunnelCommunity,
    )
    const client = s.net.node(0).community
    const exit = s.net.node(1).community
    const removed: string[] = []
    client.tunnelEvents.on('circuit-removed', ({ circuit, reason }) => {
      if (circuit.circuitId === poor.circuitId) removed.push(reason)
    })
    const poor = client.createCircuit(1) as Circuit
    await ready(s, [poor])
    expect(exit.slots?.competing).toEqual([{ balance: 1, circuitId: poor.circuitId }])

    const rich = client.createCircuit(1) as Circuit
    await ready(s, [rich])
    for (let i = 0; i < 20 && poor.state !== 'closing'; i++) await s.run(100)
    expect(rich.state).toBe('ready')
    expect(poor.state).toBe('closing')
    expect(removed[0]).toMatch(/^destroyed by/)
    expect(exit.slots?.competing).toEqual([{ balance: 5, circuitId: rich.circuitId }])
    expect([...exit.exitSockets.keys()]).toEqual([rich.circuitId])

    const lower = client.createCircuit(1) as Circuit
    for (let i = 0; i < 150 && lower.state !== 'closing'; i++) await s.run(100)
    expect(lower.state).toBe('closing')
    expect(exit.drops.noSlot).toBe(1)
    expect(exit.slots?.competing).toEqual([{ balance: 5, circuitId: rich.circuitId }])
  })

  it('holds a slot on the relay and on the exit of a 2-hop circuit and frees both on destroy', async () => {
    const s = await setup(4, [2, 3], { relaySlots: { random: 2, competing: 0 } })
    const client = s.net.node(0).community
    const circuit = await readyCircuit(s, 2)
    const node = (i: number) =>
      s.net.nodes.find((n) => n.key.publicKey.equals(circuit.hops[i]?.publicKey as never))?.community
    const relay = node(0) as TunnelCommunity
    const exit = node(1) as TunnelCommunity
    const onward = relay.relays.get(circuit.circuitId)?.circuitId as number
    expect(relay.slots?.random).toContain(circuit.circuitId)
    expect(exit.slots?.random).toContain(onward)
    client.stopTunnels(2)
    client.removeCircuit(circuit.circuitId, 'test', DESTROY_REASON_UNNEEDED)
    const held = (): number =>
      [relay, exit].reduce((n, c) => n + (c.slots?.random.filter((id) => id !== undefined).length ?? 0), 0)
    for (let i = 0; i < 20 && held() > 0; i++) await s.run(100)
    expect(held()).toBe(0)
  })

  it('frees the slots of a circuit whose originator vanished, once the routes time out', async () => {
    const s = await setup(4, [2, 3], { relaySlots: { random: 2, competing: 0 } })
    const client = s.net.node(0).community
    const circuit = await readyCircuit(s, 2)
    client.stopTunnels(2)
    const relay = s.net.nodes.find((n) => n.key.publicKey.equals(circuit.hops[0]?.publicKey as never))
    expect(relay?.community.slots?.random).toContain(circuit.circuitId)
    // no destroy: the client's host simply goes silent
    s.memory.partition('127.0.0.1')
    for (let i = 0; i < 60 && relay?.community.slots?.has(circuit.circuitId); i++) await s.run(1_000)
    expect(relay?.community.slots?.has(circuit.circuitId)).toBe(false)
    expect(relay?.community.relays.size).toBe(0)
  })
})
