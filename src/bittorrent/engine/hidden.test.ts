import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { logger, ManualClock } from '../../common/index.js'
import { HiddenTunnelCommunity, TunnelCommunity } from '../../ipv8/index.js'
import { OverlayTestNetwork } from '../../ipv8/testing/harness.js'
import { MemoryNetwork, type SocketAddress } from '../../net/index.js'
import { HiddenSwarm, hiddenServices } from './hidden.js'
import { EngineError } from './types.js'

// node 0 bootstraps and relays, 1–4 are exits (introduction and rendezvous points), 5 relays
const SEEDER = 6
const DOWNLOADER = 7
const EXITS = [1, 2, 3, 4]
const INFO_HASH = Buffer.alloc(20, 0x5a)
const hostOf = (i: number): string => `127.0.0.${i + 1}`

interface Scenario {
  net: OverlayTestNetwork<HiddenTunnelCommunity>
  clock: ManualClock
  run(ms: number): Promise<void>
  until(predicate: () => boolean, maxMs?: number): Promise<void>
}

let scenario: Scenario | undefined
const swarms: HiddenSwarm[] = []
afterEach(async () => {
  for (const swarm of swarms.splice(0)) await swarm.close()
  await scenario?.net.stopAll()
  scenario = undefined
})

async function setup(): Promise<Scenario> {
  const clock = new ManualClock()
  const memory = new MemoryNetwork({ clock, latencyMs: 5, seed: 7 })
  const net = await OverlayTestNetwork.create(
    8,
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
  const run = async (ms: number): Promise<void> => {
    for (let done = 0; done < ms; done += 50) {
      clock.advance(50)
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  const until = async (predicate: () => boolean, maxMs = 60_000): Promise<void> => {
    for (let t = 0; t < maxMs && !predicate(); t += 100) await run(100)
    expect(predicate()).toBe(true)
  }
  await net.startAll()
  await run(5_000)
  scenario = { net, clock, run, until }
  return scenario
}

interface Sides {
  seeder: HiddenSwarm
  downloader: HiddenSwarm
  seeders: SocketAddress[]
  incoming: { stream: Duplex; address: SocketAddress }[]
}

function sides(s: Scenario, hops = 1): Sides {
  const seeders: SocketAddress[] = []
  const incoming: Sides['incoming'] = []
  const deps = {
    clock: s.clock,
    logger: logger('test:hidden'),
    wrap: (stream: Duplex) => stream,
  }
  const seeder = new HiddenSwarm(s.net.node(SEEDER).community, INFO_HASH, hops, {
    ...deps,
    onIncoming: (stream, address) => incoming.push({ stream, address }),
    onSeeder: () => undefined,
  })
  const downloader = new HiddenSwarm(s.net.node(DOWNLOADER).community, INFO_HASH, hops, {
    ...deps,
    onIncoming: (stream) => stream.destroy(),
    onSeeder: (address) => seeders.push(address),
  })
  swarms.push(seeder, downloader)
  return { seeder, downloader, seeders, incoming }
}

describe('HiddenSwarm', () => {
  it('knows which tunnel communities run hidden services and refuses hop counts outside 1–3', async () => {
    const s = await setup()
    const community = s.net.node(SEEDER).community
    expect(hiddenServices(community)).toBe(community)
    expect(hiddenServices(undefined)).toBeUndefined()
    expect(hiddenServices(Object.create(TunnelCommunity.prototype) as TunnelCommunity)).toBeUndefined()
    const deps = {
      clock: s.clock,
      logger: logger('test:hidden'),
      wrap: (stream: Duplex) => stream,
      onIncoming: () => undefined,
      onSeeder: () => undefined,
    }
    for (const hops of [0, 4, 1.5])
      expect(() => new HiddenSwarm(community, INFO_HASH, hops, deps)).toThrow(EngineError)
  })

  it('finds the hidden seeder once, dials it over uTP through the end-to-end circuit and carries bytes both ways', async () => {
    const s = await setup()
    const { seeder, downloader, seeders, incoming } = sides(s)
    seeder.seed()
    seeder.seed() // idempotent
    await s.until(() => seeder.introPoints().length === 1)
    expect(seeder.seeding).toBe(true)

    downloader.startLookups()
    await s.until(() => seeders.length === 1)
    const first = seeders[0] as SocketAddress
    expect(first.port).toBe(1024)
    expect(downloader.has(first)).toBe(true)
    expect(downloader.sessions).toBe(1)
    // the stand-in address is the downloader's rendezvous circuit, neither the seeder's host nor any node's
    for (let i = 0; i < 8; i++) expect(first.host).not.toBe(hostOf(i))

    // later lookups find the same seeder key and do not meet it again while its session lives; an idle
    // end-to-end circuit is removed after a while, and then the seeder is met anew
    let most = 0
    for (let t = 0; t < 70_000; t += 100) {
      await s.run(100)
      most = Math.max(most, downloader.sessions)
    }
    expect(most).toBe(1)
    expect(downloader.counters.lookups).toBeGreaterThan(1)
    for (const old of seeders.slice(0, -1)) expect(downloader.has(old)).toBe(false)
    await s.until(() => downloader.sessions === 1)
    const address = seeders.at(-1) as SocketAddress
    expect(downloader.has(address)).toBe(true)

    const dialled = downloader.connect(address, { signal: AbortSignal.timeout(60_000) })
    await s.until(() => incoming.length === 1)
    const conn = await dialled
    expect(conn.transport).toBe('utp')
    const accepted = incoming[0]!
    expect(seeder.has(accepted.address)).toBe(true)
    expect(accepted.address.port).toBe(1024)
    const atSeeder: Buffer[] = []
    const atDownloader: Buffer[] = []
    accepted.stream.on('data', (chunk: Buffer) => atSeeder.push(chunk))
    conn.stream.on('data', (chunk: Buffer) => atDownloader.push(chunk))
    const up = randomBytes(20_000)
    const down = randomBytes(30_000)
    conn.stream.write(up)
    accepted.stream.write(down)
    await s.until(
      () => Buffer.concat(atSeeder).length >= up.length && Buffer.concat(atDownloader).length >= down.length,
    )
    expect(Buffer.concat(atSeeder)).toEqual(up)
    expect(Buffer.concat(atDownloader)).toEqual(down)
    conn.stream.destroy()
    accepted.stream.destroy()
  })

  it('refuses to dial an address that is no hidden session', async () => {
    const s = await setup()
    const { downloader } = sides(s)
    const err = await downloader
      .connect({ host: '10.1.2.3', port: 1024 }, { signal: AbortSignal.timeout(1_000) })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EngineError)
    expect((err as EngineError).code).toBe('ANON_NOT_SUPPORTED')
    expect(downloader.issued({ host: '10.1.2.3', port: 1024 })).toBe(false)
  })

  it('meets the seeder again after its end-to-end circuit closes', async () => {
    const s = await setup()
    const { seeder, downloader, seeders } = sides(s)
    seeder.seed()
    downloader.startLookups()
    await s.until(() => seeders.length === 1)
    const first = seeders[0] as SocketAddress
    const community = s.net.node(DOWNLOADER).community
    const rp = [...community.circuits.values()].find((c) => c.purpose === 'rp-downloader')
    expect(rp).toBeDefined()
    community.removeCircuit(rp!.circuitId, 'test', 4)
    await s.until(() => !downloader.has(first))
    // the gone session's address is remembered, and dialling it is refused rather than sent anywhere
    expect(downloader.issued(first)).toBe(true)
    const refused = await downloader
      .connect(first, { signal: AbortSignal.timeout(1_000) })
      .catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(EngineError)
    await s.until(() => seeders.length === 2, 120_000)
    const second = seeders[1] as SocketAddress
    expect(second).not.toEqual(first)
    expect(downloader.has(second)).toBe(true)
    expect(downloader.sessions).toBe(1)
  })

  it('closes its sessions, circuits and introduction points when it leaves, and stays closed', async () => {
    const s = await setup()
    const { seeder, downloader, seeders } = sides(s)
    seeder.seed()
    downloader.startLookups()
    await s.until(() => seeders.length === 1 && seeder.sessions === 1)
    const seederTunnels = s.net.node(SEEDER).community
    const downloaderTunnels = s.net.node(DOWNLOADER).community
    await seeder.close()
    await downloader.close()
    await seeder.close() // idempotent
    expect(seeder.seeding).toBe(false)
    expect(seeder.introPoints()).toEqual([])
    expect(downloader.has(seeders[0]!)).toBe(false)
    await s.until(
      () =>
        ![...seederTunnels.circuits.values()].some((c) => c.purpose !== 'data') &&
        ![...downloaderTunnels.circuits.values()].some((c) => c.purpose !== 'data'),
    )
    // nothing starts again once closed
    seeder.seed()
    downloader.startLookups()
    const lookups = downloader.counters.lookups
    await s.run(20_000)
    expect(seeder.seeding).toBe(false)
    expect(downloader.counters.lookups).toBe(lookups)
    expect([...seederTunnels.circuits.values()].some((c) => c.purpose === 'ip-seeder')).toBe(false)
  })
})
