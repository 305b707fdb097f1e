import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import {
  DHTDiscoveryCommunity,
  DhtIntroPointProvider,
  type HiddenSession,
  HiddenTunnelCommunity,
  hiddenLookupHash,
  NO_ADDRESS,
  PEER_FLAG_EXIT_BT,
  PEER_SOURCE_DHT,
} from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { udpTransport } from '../../src/net/index.js'

// py-ipv8's last pure-Python commit (241d0c2) in a checkout named by PY_IPV8_DIR, run by /usr/bin/python3 with
// Debian's python3-libnacl, python3-cryptography, python3-aiohttp and python3-typing-extensions.
const PY_IPV8_DIR = process.env.PY_IPV8_DIR
const available =
  PY_IPV8_DIR !== undefined && existsSync(`${PY_IPV8_DIR}/ipv8/messaging/anonymization/hidden_services.py`)
const SCRIPT = fileURLToPath(new URL('../support/py_ipv8_hidden.py', import.meta.url))
// ours: 0 seeds, 1 downloads; py-ipv8's: two exits, the only ones either side can use
const TS_HOSTS = ['127.0.0.192', '127.0.0.193']
const PY_HOSTS = ['127.0.0.197', '127.0.0.198']

interface PyLine {
  ready?: [string, number][]
  intro_point_for?: number
  intro?: boolean
  linked?: [string, number]
}

/** Starts the py-ipv8 nodes of `spec`; resolves once they are bound. */
async function startPy(spec: Record<string, unknown>): Promise<PyLine[]> {
  const child: ChildProcessWithoutNullStreams = spawn('/usr/bin/python3', [SCRIPT, JSON.stringify(spec)], {
    env: { ...process.env, PY_IPV8_DIR: PY_IPV8_DIR as string },
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const lines: PyLine[] = []
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line) as PyLine))
  stops.push(async () => {
    child.stdin.end()
    await until(() => child.exitCode !== null, 10_000)
    if (child.exitCode === null) child.kill()
  })
  if (!(await until(() => lines.some((l) => l.ready !== undefined), 30_000)))
    throw new Error(`py-ipv8 did not start: ${stderr}`)
  return lines
}

/** Our hidden-service nodes, each also in the DHT (node 0 bootstraps the others). */
async function ourNodes(hosts: string[], exits: number[]) {
  const dhts: DHTDiscoveryCommunity[] = []
  const net = await OverlayTestNetwork.create(
    hosts.length,
    (deps, i, bootstrap) => {
      const dht = new DHTDiscoveryCommunity(deps, {
        bootstrap: { publicNetwork: false, addresses: bootstrap },
      })
      dhts[i] = dht
      return new HiddenTunnelCommunity(deps, {
        bootstrap: { publicNetwork: false, addresses: bootstrap },
        tunnel: { minCircuits: 1, maxCircuits: 2, exit: exits.includes(i) },
        exitBindHost: hosts[i] as string,
        introPointDirectory: new DhtIntroPointProvider(dht),
      })
    },
    { transport: udpTransport, hostOf: (i) => hosts[i] as string },
  )
  stops.push(async () => {
    for (const dht of dhts) await dht.stop()
    await net.stopAll()
  })
  await net.startAll()
  for (const dht of dhts) await dht.start()
  return { net, dhts }
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (condition()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

const stops: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
})

describe.skipIf(!available)('hidden services through py-ipv8 exits and the DHT', () => {
  it('finds an introduction point py-ipv8 announced in the DHT through a py-ipv8 exit, and meets the seeder', async () => {
    const { net, dhts } = await ourNodes(TS_HOSTS, [])
    const lines = await startPy({
      hosts: PY_HOSTS,
      walk_to: net.nodes.map((n) => [n.socket.local.host, n.socket.local.port]),
    })

    const seeder = net.node(0).community
    const downloader = net.node(1).community
    expect(
      await until(
        () =>
          seeder.getCandidates(PEER_FLAG_EXIT_BT).length === PY_HOSTS.length &&
          downloader.getCandidates(PEER_FLAG_EXIT_BT).length === PY_HOSTS.length &&
          dhts.every((d) => (d.routingTables[0]?.size ?? 0) >= 3),
        60_000,
      ),
    ).toBe(true)

    // our seeder's introduction point is a py-ipv8 exit, which announces itself in the DHT
    const infoHash = hiddenLookupHash(Buffer.alloc(20, 0x99))
    const sessions: HiddenSession[] = []
    const seeding = seeder.seedHidden(infoHash, { hops: 1, onSession: (s) => sessions.push(s) })
    stops.push(async () => seeding.stop())
    expect(await until(() => seeding.introPoints().length === 1, 60_000)).toBe(true)
    expect(await until(() => lines.some((l) => (l.intro_point_for ?? 0) > 0), 10_000)).toBe(true)

    // our downloader asks its (py-ipv8) exit, which looks the swarm up in the DHT
    await downloader.circuit(1, { timeoutMs: 30_000 })
    let intros: Awaited<ReturnType<HiddenTunnelCommunity['lookupHidden']>> = []
    expect(
      await until(() => {
        if (intros.length > 0) return true
        void downloader.lookupHidden(infoHash, { hops: 1, timeoutMs: 5_000 }).then((found) => {
          if (found.length > 0) intros = found
        })
        return false
      }, 60_000),
    ).toBe(true)
    const intro = intros[0] as (typeof intros)[number]
    expect(intro.source).toBe(PEER_SOURCE_DHT)
    expect(PY_HOSTS).toContain(intro.address.host)
    expect(intro.seederPk.equals(seeding.seederPublicKey)).toBe(true)

    // and meets the seeder through the py-ipv8 introduction and rendezvous points
    const session = await downloader.connectHidden(infoHash, intro, { hops: 1, timeoutMs: 60_000 })
    expect(await until(() => sessions.length > 0, 30_000)).toBe(true)
    const received: string[] = []
    ;(sessions[0] as HiddenSession).socket().onMessage((data) => received.push(data.toString()))
    const socket = session.socket()
    expect(
      await until(() => {
        if (received.length === 0) socket.send(Buffer.from('hello through py-ipv8'), NO_ADDRESS)
        return received.length > 0
      }, 30_000),
    ).toBe(true)
    expect(received[0]).toBe('hello through py-ipv8')
    expect(PY_HOSTS).toContain(session.circuit.hops.at(-1)?.address?.host)
  }, 240_000)

  it('serves a py-ipv8 seeder and downloader as introduction and rendezvous points found through our DHT', async () => {
    // ours: 0 and 1 are exits (the only ones), 2 and 3 relay; py-ipv8's: a seeder and a downloader
    const hosts = ['127.0.0.192', '127.0.0.193', '127.0.0.194', '127.0.0.195']
    const { net, dhts } = await ourNodes(hosts, [0, 1])
    const infoHash = hiddenLookupHash(Buffer.alloc(20, 0xaa))
    const lines = await startPy({
      // the seeder's introduction point is our node 0, the downloader's exit our node 1: only a DHT lookup at
      // node 1 can tell the downloader where the introduction point is
      nodes: [
        { host: PY_HOSTS[0], role: 'seeder', exit: [hosts[0], net.node(0).socket.local.port] },
        { host: PY_HOSTS[1], role: 'downloader', exit: [hosts[1], net.node(1).socket.local.port] },
      ],
      walk_to: net.nodes.map((n) => [n.socket.local.host, n.socket.local.port]),
      info_hash: infoHash.toString('hex'),
    })
    // the py-ipv8 seeder's introduction point is one of our exits, which announces it in our DHT
    expect(await until(() => lines.some((l) => l.intro === true), 90_000)).toBe(true)
    const exits = [0, 1].map((i) => net.node(i).community)
    expect(await until(() => exits[0]?.pexCommunities.length === 1, 30_000)).toBe(true)
    expect(exits[1]?.pexCommunities).toHaveLength(0)
    const stores = (): number =>
      [0, 1].reduce((n, i) => n + (dhts[i]?.statistics.messages.get(3)?.packetsOut ?? 0), 0)
    expect(await until(() => stores() > 0, 30_000)).toBe(true)
    // the py-ipv8 downloader finds it through our exit's DHT lookup and links up at one of our rendezvous points
    // (py-ipv8 picks any relay as rendezvous point: here one of ours, since its downloader relays nothing)
    const rendezvousRoutes = (): number =>
      net.nodes.reduce(
        (n, node) =>
          n + [...node.community.relays.values()].filter((r) => r.rendezvousKeys !== undefined).length,
        0,
      )
    let joined = 0
    expect(
      await until(() => {
        joined = Math.max(joined, rendezvousRoutes())
        return lines.some((l) => l.linked !== undefined)
      }, 120_000),
    ).toBe(true)
    expect(exits[1]?.hiddenStats.dhtLookups).toBeGreaterThan(0)
    await until(() => {
      joined = Math.max(joined, rendezvousRoutes())
      return joined >= 2
    }, 5_000)
    expect(joined).toBe(2)
    for (const n of net.nodes) expect(n.community.statistics.dropped.handlerError).toBe(0)
  }, 300_000)
})
