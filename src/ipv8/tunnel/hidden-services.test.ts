import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { MemoryNetwork, type SocketAddress } from '../../net/index.js'
import { PrivateKey } from '../keys/index.js'
import { NO_ADDRESS, PREFIX_LENGTH } from '../serialization/index.js'
import { manualTime, OverlayTestNetwork } from '../testing/harness.js'
import type { Circuit } from './circuit.js'
import { decryptLayer, encryptLayer, onionEncrypt, type SessionKeys } from './crypto.js'
import { type HiddenSession, HiddenTunnelCommunity, hiddenLookupHash } from './hidden-services.js'
import {
  CreateE2EPayload,
  cellMessage,
  dataCellMessage,
  decodeCell,
  encodeCell,
  LinkE2EPayload,
  PeersResponsePayload,
} from './payloads.js'
import { BACKWARD, FORWARD } from './types.js'

// node 0 is everyone's bootstrapper; 0 and 5 only relay
const SEEDER = 6
const DOWNLOADER = 7
const EXITS = [1, 2, 3, 4]
const COUNT = 8
const INFO_HASH = hiddenLookupHash(Buffer.alloc(20, 0xab))

interface Sent {
  from: string
  to: string
  /** The message id after the community prefix (0 = tunnel cell). */
  msgId: number
}

interface Scenario {
  net: OverlayTestNetwork<HiddenTunnelCommunity>
  clock: ManualClock
  /** Every datagram that was sent directly between the seeder's and the downloader's hosts (and dropped). */
  direct: Sent[]
  /** Datagrams anywhere on the network that carried the test payload's marker in the clear. */
  cleartext: number
  /** While set, every datagram sent on the network, with its destination host. */
  capture: { to: string; data: Buffer }[] | undefined
  run(ms: number): Promise<void>
  settle<T>(promise: Promise<T>, maxMs?: number): Promise<T>
}

let scenario: Scenario | undefined
afterEach(async () => {
  await scenario?.net.stopAll()
  scenario = undefined
})

const hostOf = (i: number): string => `127.0.0.${i + 1}`

async function setup(): Promise<Scenario> {
  const clock = new ManualClock()
  const memory = new MemoryNetwork({ clock, latencyMs: 5, seed: 11 })
  // The seeder and the downloader cannot reach each other directly: every datagram between their hosts
  // (their community sockets and their exit sockets) is recorded and dropped.
  const direct: Sent[] = []
  const marker = Buffer.from('piece ')
  let cleartext = 0
  const route = memory.route.bind(memory)
  const hidden = new Set([hostOf(SEEDER), hostOf(DOWNLOADER)])
  memory.route = (from, data, to) => {
    if (data.includes(marker)) cleartext += 1
    scenario?.capture?.push({ to: to.host, data: Buffer.from(data) })
    if (hidden.has(from.local.host) && hidden.has(to.host) && from.local.host !== to.host) {
      direct.push({ from: from.local.host, to: to.host, msgId: data[PREFIX_LENGTH] ?? -1 })
      return
    }
    route(from, data, to)
  }
  const net = await OverlayTestNetwork.create(
    COUNT,
    (deps, i, bootstrap) =>
      new HiddenTunnelCommunity(
        { ...deps, exitTransport: memory },
        {
          bootstrap: { publicNetwork: false, addresses: bootstrap },
          tunnel: { exit: EXITS.includes(i), removeTunnelDelayMs: 0 },
          exitBindHost: hostOf(i),
        },
      ),
    { transport: memory, clock },
  )
  const { run, settle } = manualTime(clock)
  await net.startAll()
  await run(5_000)
  scenario = {
    net,
    clock,
    direct,
    get cleartext() {
      return cleartext
    },
    capture: undefined,
    run,
    settle,
  }
  return scenario
}

/** Seeds INFO_HASH on the seeder, finds it from the downloader and joins the two at a rendezvous point. */
async function connect(s: Scenario, hops = 1) {
  const seeder = s.net.node(SEEDER).community
  const downloader = s.net.node(DOWNLOADER).community
  const seederSessions: HiddenSession[] = []
  const seeding = seeder.seedHidden(INFO_HASH, {
    hops,
    onSession: (session) => seederSessions.push(session),
  })
  for (let i = 0; i < 300 && seeding.introPoints().length === 0; i++) await s.run(100)
  expect(seeding.introPoints()).toHaveLength(1)

  await s.settle(downloader.circuit(hops, { timeoutMs: 30_000 }))
  const intros = await s.settle(downloader.lookupHidden(INFO_HASH, { hops }))
  expect(intros.length).toBeGreaterThan(0)
  const intro = intros[0]
  if (intro === undefined) throw new Error('no intro point')
  expect(intro.seederPk.equals(seeding.seederPublicKey)).toBe(true)
  const session = await s.settle(downloader.connectHidden(INFO_HASH, intro, { hops }))
  for (let i = 0; i < 50 && seederSessions.length === 0; i++) await s.run(100)
  expect(seederSessions).toHaveLength(1)
  return { seeder, downloader, seeding, intro, session, seederSession: seederSessions[0] as HiddenSession }
}

const nodeOfKey = (s: Scenario, keyBin: Buffer): number | undefined =>
  s.net.nodes.find((n) => n.key.publicKey.toBin().equals(keyBin))?.index

describe('HiddenTunnelCommunity (in-memory network)', () => {
  for (const hops of [1, 2]) {
    it(`finds an introduction point, meets at a rendezvous point and carries datagrams end to end (${hops} hops each side)`, async () => {
      const s = await setup()
      const { seeder, downloader, intro, session, seederSession } = await connect(s, hops)
      expect(session.circuit.hops).toHaveLength(hops)
      expect(seederSession.circuit.hops).toHaveLength(hops)

      // the introduction point is one of the exits, named by its address and identity key, never the seeder's
      const introNode = nodeOfKey(s, intro.key)
      expect(EXITS).toContain(introNode)
      expect(intro.address.host).toBe(hostOf(introNode as number))

      const downSocket = session.socket()
      const seedSocket = seederSession.socket()
      const atSeeder: string[] = []
      const atDownloader: string[] = []
      const seederSaw: SocketAddress[] = []
      seedSocket.onMessage((data, from) => {
        atSeeder.push(data.toString())
        seederSaw.push(from)
        seedSocket.send(Buffer.concat([Buffer.from('re: '), data]), from)
      })
      downSocket.onMessage((data) => atDownloader.push(data.toString()))
      s.capture = []
      // the downloader speaks first: the rendezvous point joins the circuits before any data passes
      for (let i = 0; i < 5; i++) downSocket.send(Buffer.from(`piece ${i}`), NO_ADDRESS)
      for (let i = 0; i < 100 && atDownloader.length < 5; i++) await s.run(100)
      expect(atSeeder.sort()).toEqual(['piece 0', 'piece 1', 'piece 2', 'piece 3', 'piece 4'])
      expect(atDownloader.sort()).toEqual([
        're: piece 0',
        're: piece 1',
        're: piece 2',
        're: piece 3',
        're: piece 4',
      ])
      // a large datagram arrives intact
      const big = randomBytes(1_200)
      const gotBig: Buffer[] = []
      downSocket.onMessage((data) => {
        if (data.length === big.length + 4) gotBig.push(data)
      })
      downSocket.send(big, NO_ADDRESS)
      for (let i = 0; i < 50 && gotBig.length === 0; i++) await s.run(100)
      expect(gotBig[0]?.subarray(4).equals(big)).toBe(true)
      expect(downSocket.stats.packetsReceived).toBeGreaterThanOrEqual(6)
      expect(seedSocket.stats.packetsSent).toBeGreaterThanOrEqual(6)

      // anonymity: no datagram of any kind reached one from the other directly, and only discovery was tried
      const tried = new Set(s.direct.map((d) => d.msgId))
      for (const id of [0, 13, 14, 17, 18]) expect(tried.has(id)).toBe(false)
      // the seeder sees a fake address for the downloader, and neither side's circuits contain the other
      expect(seederSaw.every((a) => a.host !== hostOf(DOWNLOADER) && a.port === 1024)).toBe(true)
      const seederKey = s.net.node(SEEDER).key.publicKey.toBin()
      const downloaderKey = s.net.node(DOWNLOADER).key.publicKey.toBin()
      const hopKeys = (c: Circuit) => c.hops.map((h) => h.publicKey.toBin())
      for (const c of seeder.circuits.values())
        expect(hopKeys(c).some((k) => k.equals(downloaderKey))).toBe(false)
      for (const c of downloader.circuits.values())
        expect(hopKeys(c).some((k) => k.equals(seederKey))).toBe(false)
      for (const c of [...seeder.circuits.values(), ...downloader.circuits.values()])
        for (const h of c.hops)
          if (h.address !== undefined)
            expect([hostOf(SEEDER), hostOf(DOWNLOADER)]).not.toContain(h.address.host)
      expect(seederSession.circuit.purpose).toBe('rp-seeder')
      expect(session.circuit.purpose).toBe('rp-downloader')
      // the rendezvous point relays one circuit into the other: it holds two rendezvous routes, no exit
      const rpNode = s.net.nodes.find((n) =>
        n.key.publicKey.equals(session.circuit.hops.at(-1)?.publicKey as never),
      )
      const rp = rpNode?.community as HiddenTunnelCommunity
      const joined = [...rp.relays.values()].filter((r) => r.rendezvousKeys !== undefined)
      expect(joined).toHaveLength(2)
      expect(rp.exitSockets.has(session.circuit.circuitId)).toBe(false)
      // end to end: no datagram on any link carried the payload in the clear, and the rendezvous point, after
      // peeling its own layer off what it relays, still sees only ciphertext
      expect(s.cleartext).toBe(0)
      let peeled = 0
      for (const { to, data } of s.capture ?? []) {
        if (to !== rpNode?.socket.local.host || data[PREFIX_LENGTH] !== 0) continue
        const cell = decodeCell(data)
        const route = rp.relays.get(cell.circuitId)
        if (route?.rendezvousKeys === undefined) continue
        const inner = decryptLayer(cell.message, { ...route.keys, replay: undefined }, FORWARD)
        expect(inner.includes(Buffer.from('piece '))).toBe(false)
        peeled += 1
      }
      expect(peeled).toBeGreaterThanOrEqual(5)
      s.capture = undefined
      for (const n of s.net.nodes) expect(n.community.statistics.dropped.handlerError).toBe(0)
    })
  }

  it('drops malformed, unknown-seeder, unknown-cookie, unknown-request and wrong-circuit messages and counts them', async () => {
    const s = await setup()
    const { downloader, intro } = await connect(s)
    const introNode = s.net.node(nodeOfKey(s, intro.key) as number)
    const ip = introNode.community
    const from = s.net.node(DOWNLOADER).socket.local
    const prefix = ip.prefix

    // a create-e2e whose body does not parse
    expect(ip.onPacket(Buffer.concat([prefix, Buffer.from([13, 0, 1])]), from)).toBe(false)
    expect(ip.hiddenDrops.malformed).toBe(1)

    // a create-e2e for a seeder key this node introduces nobody for
    const stranger = CreateE2EPayload.encode({
      identifier: 1,
      infoHash: INFO_HASH,
      nodePublicKey: PrivateKey.generate().publicKey.toBin(),
      key: randomBytes(32),
    })
    expect(ip.onPacket(Buffer.concat([prefix, Buffer.from([13]), stranger]), from)).toBe(false)
    expect(ip.hiddenDrops.unknownSeeder).toBe(1)

    // a peers-response nobody asked for
    const response = PeersResponsePayload.encode({
      circuitId: 1,
      identifier: 4242,
      infoHash: INFO_HASH,
      peers: [],
    })
    ip.onPacket(Buffer.concat([prefix, Buffer.from([18]), response]), from)
    expect(ip.hiddenDrops.unknownRequest).toBe(1)

    // a link-e2e with a cookie no rendezvous point knows, through a real circuit
    const circuit = downloader.findCircuits({ hops: 1 })[0] as Circuit
    const exitNode = s.net.node(nodeOfKey(s, circuit.hops[0]?.publicKey.toBin() as Buffer) as number)
    const before = exitNode.community.hiddenDrops.unknownCookie
    const link = onionEncrypt(
      cellMessage(LinkE2EPayload, { circuitId: circuit.circuitId, identifier: 9, cookie: randomBytes(20) }),
      circuit.hopKeys,
    )
    exitNode.community.onPacket(
      encodeCell(prefix, {
        circuitId: circuit.circuitId,
        plaintext: false,
        relayEarly: false,
        message: link,
      }),
      from,
    )
    expect(exitNode.community.hiddenDrops.unknownCookie).toBe(before + 1)

    // a create-e2e tunnelled back on a plain data circuit (only introduction circuits carry them)
    const inner = Buffer.concat([prefix, Buffer.from([13]), stranger])
    const back = encryptLayer(
      dataCellMessage(NO_ADDRESS, { host: '127.0.0.99', port: 1 }, inner),
      // a counter the exit has not used yet, so the layer is fresh
      { ...(circuit.hopKeys[0] as SessionKeys), counterBackward: 1_000_000 },
      BACKWARD,
    )
    const wrongBefore = downloader.hiddenDrops.unknownCircuit
    downloader.onPacket(
      encodeCell(prefix, {
        circuitId: circuit.circuitId,
        plaintext: false,
        relayEarly: false,
        message: back,
      }),
      circuit.hops[0]?.address as SocketAddress,
    )
    expect(downloader.hiddenDrops.unknownCircuit).toBe(wrongBefore + 1)

    for (const n of s.net.nodes) expect(n.community.statistics.dropped.handlerError).toBe(0)
  })

  it('replaces an introduction point that goes away, and downloaders find the new one', async () => {
    const s = await setup()
    const { seeding, intro } = await connect(s)
    const oldIntro = s.net.node(nodeOfKey(s, intro.key) as number)
    const [oldMid] = seeding.introPoints()
    await oldIntro.community.stop()
    for (let i = 0; i < 1_200; i++) {
      const now = seeding.introPoints()
      if (now.length === 1 && now[0] !== oldMid) break
      await s.run(100)
    }
    const [newMid] = seeding.introPoints()
    expect(newMid).toBeDefined()
    expect(newMid).not.toBe(oldMid)

    const downloader = s.net.node(DOWNLOADER).community
    let found: Awaited<ReturnType<typeof downloader.lookupHidden>> = []
    for (let i = 0; i < 10 && found.length === 0; i++) {
      const circuit = downloader.findCircuits({ hops: 1 })[0]
      if (circuit === undefined) await s.settle(downloader.circuit(1, { timeoutMs: 30_000 }))
      found = await s.settle(downloader.lookupHidden(INFO_HASH, { hops: 1, timeoutMs: 5_000 }))
    }
    expect(found.map((f) => f.key.toString('hex'))).not.toContain(intro.key.toString('hex'))
    const again = found[0]
    if (again === undefined) throw new Error('the new introduction point was not found')
    const session = await s.settle(downloader.connectHidden(INFO_HASH, again, { hops: 1 }))
    expect(session.circuit.state).toBe('ready')
  })

  it('gives up cleanly on a swarm nobody seeds and on a seeder key no introduction point knows', async () => {
    const s = await setup()
    const downloader = s.net.node(DOWNLOADER).community
    await s.settle(downloader.circuit(1, { timeoutMs: 30_000 }))
    const none = await s.settle(downloader.lookupHidden(INFO_HASH, { hops: 1, timeoutMs: 3_000 }))
    expect(none).toEqual([])
    const exit = s.net.node(EXITS[0] as number)
    const before = exit.community.hiddenDrops.unknownSeeder
    const bogus = {
      address: exit.socket.local,
      key: exit.key.publicKey.toBin(),
      seederPk: PrivateKey.generate().publicKey.toBin(),
      source: 0,
    }
    await expect(
      s.settle(downloader.connectHidden(INFO_HASH, bogus, { hops: 1, timeoutMs: 5_000 })),
    ).rejects.toMatchObject({ code: 'NO_CIRCUIT' })
    expect(exit.community.hiddenDrops.unknownSeeder).toBe(before + 1)
    await expect(
      s.settle(downloader.connectHidden(INFO_HASH, { ...bogus, seederPk: Buffer.from('junk') }, { hops: 1 })),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' })
  })

  it('refuses bad seeding requests', async () => {
    const s = await setup()
    const seeder = s.net.node(SEEDER).community
    expect(() => seeder.seedHidden(Buffer.alloc(19), { hops: 1, onSession: () => {} })).toThrow()
    expect(() => seeder.seedHidden(INFO_HASH, { hops: 4, onSession: () => {} })).toThrow()
    const seeding = seeder.seedHidden(INFO_HASH, { hops: 1, onSession: () => {} })
    expect(() => seeder.seedHidden(INFO_HASH, { hops: 1, onSession: () => {} })).toThrow()
    seeding.stop()
    expect(() => seeder.seedHidden(INFO_HASH, { hops: 1, onSession: () => {} }).stop()).not.toThrow()
  })
})
