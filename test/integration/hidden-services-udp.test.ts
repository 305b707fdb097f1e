import { createHash, randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { UtpSocket } from '../../src/bittorrent/utp/index.js'
import {
  e2eAddress,
  type HiddenSession,
  HiddenTunnelCommunity,
  hiddenLookupHash,
  maxCircuitPayload,
} from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { udpTransport } from '../../src/net/index.js'

// Node 0 (bootstrap) and 5 relay, 1–4 are exits, 6 seeds, 7 downloads; each on its own 127.0.0.14x.
const host = (i: number): string => `127.0.0.${140 + i}`
const EXITS = [1, 2, 3, 4]
const SEEDER = 6
const DOWNLOADER = 7

let net: OverlayTestNetwork<HiddenTunnelCommunity> | undefined
let utps: UtpSocket[] = []
afterEach(async () => {
  for (const utp of utps) await utp.close()
  utps = []
  await net?.stopAll()
  net = undefined
})

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
}

describe('hidden services over real UDP on loopback', () => {
  it('carries a uTP connection end to end between a hidden seeder and a downloader', async () => {
    const nodes = await OverlayTestNetwork.create(
      8,
      (deps, i, bootstrap) =>
        new HiddenTunnelCommunity(deps, {
          walkIntervalMs: 100,
          bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
          tunnel: { exit: EXITS.includes(i) },
          exitBindHost: host(i),
        }),
      { transport: udpTransport, hostOf: host },
    )
    net = nodes
    await nodes.startAll()
    const seeder = nodes.node(SEEDER).community
    const downloader = nodes.node(DOWNLOADER).community
    await until(
      () => seeder.getCandidates(2).length === 4 && downloader.getCandidates(2).length === 4,
      30_000,
    )

    const infoHash = hiddenLookupHash(randomBytes(20))
    const sessions: HiddenSession[] = []
    const seeding = seeder.seedHidden(infoHash, { hops: 1, onSession: (s) => sessions.push(s) })
    await until(() => seeding.introPoints().length === 1, 30_000)
    expect(seeding.introPoints()).toHaveLength(1)

    await downloader.circuit(1, { timeoutMs: 30_000 })
    const intros = await downloader.lookupHidden(infoHash, { hops: 1 })
    const intro = intros[0]
    if (intro === undefined) throw new Error('no introduction point found')
    expect(EXITS.map(host)).toContain(intro.address.host)
    const session = await downloader.connectHidden(infoHash, intro, { hops: 1, timeoutMs: 30_000 })
    await until(() => sessions.length === 1, 10_000)
    const seederSession = sessions[0]
    if (seederSession === undefined) throw new Error('the seeder saw no session')

    // uTP over the joined circuits: one hop each side plus the end-to-end layer
    const packetBytes = maxCircuitPayload(2)
    const server = new UtpSocket({ socket: seederSession.socket() }, { packetBytes })
    utps.push(server)
    server.listen()
    const remotes: string[] = []
    const received: Buffer[] = []
    server.events.on('connection', (conn) => {
      remotes.push(`${conn.remote.host}:${conn.remote.port}`)
      conn.on('data', (chunk: Buffer) => received.push(chunk))
    })
    const client = new UtpSocket({ socket: session.socket() }, { packetBytes })
    utps.push(client)
    const conn = await client.connect(e2eAddress(session.circuit.circuitId), {
      signal: AbortSignal.timeout(20_000),
    })
    const payload = randomBytes(256 * 1024)
    conn.write(payload)
    await until(() => received.reduce((n, c) => n + c.length, 0) >= payload.length, 60_000)
    const got = Buffer.concat(received)
    expect(got.length).toBe(payload.length)
    expect(createHash('sha1').update(got).digest('hex')).toBe(
      createHash('sha1').update(payload).digest('hex'),
    )

    // the seeder's uTP peer is the fake end-to-end address, never the downloader's host
    expect(remotes).toEqual([`${e2eAddress(seederSession.circuit.circuitId).host}:1024`])
    const seederHost = host(SEEDER)
    const downloaderHost = host(DOWNLOADER)
    for (const c of seeder.circuits.values())
      expect(c.hops.some((h) => h.publicKey.equals(nodes.node(DOWNLOADER).key.publicKey))).toBe(false)
    for (const c of downloader.circuits.values())
      expect(c.hops.some((h) => h.publicKey.equals(nodes.node(SEEDER).key.publicKey))).toBe(false)
    for (const c of [...seeder.circuits.values(), ...downloader.circuits.values()])
      expect([seederHost, downloaderHost]).not.toContain(c.hops[0]?.address?.host)
    for (const n of nodes.nodes) {
      expect(n.community.statistics.dropped.handlerError).toBe(0)
      expect(n.community.drops.decryptFailed).toBe(0)
    }
    conn.destroy()
  })
})
