import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BatchedUdpSocket, MemoryNetwork } from '../net/index.js'
import { Community, type CommunityDeps } from './community/index.js'
import type { DiscoveryCommunity } from './discovery/index.js'
import { Ipv8Service, parseBootstrap } from './service.js'
import type { HiddenTunnelCommunity } from './tunnel/index.js'

const values: Record<string, string | number | boolean> = {
  'ipv8~enabled': true,
  'ipv8~address': '127.0.0.1',
  'ipv8~bootstrap_override': '',
  'dispersy~port': -1,
}
const config = (overrides: Record<string, string | number | boolean> = {}) => {
  const all = { ...values, ...overrides }
  return {
    getBoolean: (s: string, k: string) => all[`${s}~${k}`] === true,
    getString: (s: string, k: string) => String(all[`${s}~${k}`] ?? ''),
    getNumber: (s: string, k: string) => Number(all[`${s}~${k}`] ?? 0),
  }
}

let dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  dirs = []
})

async function keysDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ipv8-service-'))
  dirs.push(dir)
  return dir
}

describe('Ipv8Service', () => {
  it('creates its key, binds the default port, runs discovery and the added overlays, and stops them', async () => {
    const transport = new MemoryNetwork()
    const ports = new Map<string, number>()
    const keys = await keysDir()
    const service = new Ipv8Service(
      { config: config(), publicNetwork: false, paths: { keys }, ports: { set: (n, p) => ports.set(n, p) } },
      { transport },
    )
    service.addOverlay((deps: CommunityDeps) => new Community(deps, Buffer.alloc(20, 7)))
    await service.start()
    expect(service.address).toEqual({ host: '127.0.0.1', port: 8090 })
    expect(ports.get('dispersy~port')).toBe(8090)
    expect(service.overlays.map((o) => o.constructor.name)).toEqual(['DiscoveryCommunity', 'Community'])
    expect(service.tunnels).toBeUndefined()
    expect((await stat(join(keys, 'ec_multichain.pem'))).mode & 0o777).toBe(0o600)
    expect(service.statistics()).toMatchObject({ total_up: 0, total_down: 0 })
    await service.stop()
    expect(service.overlays.every((o) => !o.running)).toBe(true)
    expect(service.statistics()).toEqual({})
  })

  it('binds its endpoint on the native batched UDP socket by default on Linux', async () => {
    // CI builds the addon on `npm ci` (it has the toolchain); elsewhere node:dgram carries the endpoint
    const service = new Ipv8Service(
      { config: config(), publicNetwork: false, paths: { keys: await keysDir() } },
      { port: 0, bootstrap: [] },
    )
    await service.start()
    try {
      if (process.platform === 'linux') expect(service.socket).toBeInstanceOf(BatchedUdpSocket)
      expect(service.address?.host).toBe('127.0.0.1')
      expect(service.address?.port).toBeGreaterThan(0)
    } finally {
      await service.stop()
    }
  })

  it('two services find each other through bootstrap_override', async () => {
    const transport = new MemoryNetwork()
    const a = new Ipv8Service(
      { config: config(), publicNetwork: false, paths: { keys: await keysDir() } },
      { transport },
    )
    const b = new Ipv8Service(
      {
        config: config({ 'ipv8~address': '127.0.0.2', 'ipv8~bootstrap_override': '127.0.0.1:8090' }),
        publicNetwork: false,
        paths: { keys: await keysDir() },
      },
      { transport },
    )
    await a.start()
    await b.start()
    const discovery = a.overlays[0] as DiscoveryCommunity
    for (let i = 0; i < 100 && discovery.network.size === 0; i++) await new Promise((r) => setTimeout(r, 20))
    expect(discovery.network.getPeer(b.key?.mid ?? Buffer.alloc(0))).toBeDefined()
    await b.stop()
    await a.stop()
  })

  it('runs the Tribler tunnel community when tunnel_community.enabled, as an exit when exitnode_enabled', async () => {
    const transport = new MemoryNetwork()
    const tunnel = { 'tunnel_community~enabled': true, 'tunnels~min_circuits': 2, 'tunnels~max_circuits': 5 }
    const exit = new Ipv8Service(
      {
        config: config({ ...tunnel, 'tunnel_community~exitnode_enabled': true }),
        publicNetwork: false,
        paths: { keys: await keysDir() },
      },
      { transport, exitTransport: transport },
    )
    const client = new Ipv8Service(
      {
        config: config({
          ...tunnel,
          'ipv8~address': '127.0.0.2',
          'ipv8~bootstrap_override': '127.0.0.1:8090',
        }),
        publicNetwork: false,
        paths: { keys: await keysDir() },
      },
      { transport },
    )
    await exit.start()
    await client.start()
    const tunnels = client.tunnels
    expect(tunnels?.communityId.toString('hex')).toBe('a3591a6bd89bbaca0974062a1287afcfbc6fd6bc')
    expect(tunnels?.settings).toMatchObject({ minCircuits: 2, maxCircuits: 5, exit: false })
    expect(exit.tunnels?.peerFlags).toEqual([1, 2, 4, 8])
    for (let i = 0; i < 100 && tunnels?.getCandidates(2).length === 0; i++)
      await new Promise((r) => setTimeout(r, 20))
    expect(tunnels?.getCandidates(2).map((p) => p.mid)).toEqual([exit.key?.mid])
    await client.stop()
    await exit.stop()
    expect(exit.tunnels?.running).toBe(false)
  })

  it('runs the DHT when dht.enabled, lists it as an overlay and lets the tunnel community announce into it', async () => {
    const transport = new MemoryNetwork()
    const on = { 'dht~enabled': true, 'tunnel_community~enabled': true }
    const a = new Ipv8Service(
      { config: config(on), publicNetwork: false, paths: { keys: await keysDir() } },
      { transport, exitTransport: transport },
    )
    const b = new Ipv8Service(
      {
        config: config({ ...on, 'ipv8~address': '127.0.0.2', 'ipv8~bootstrap_override': '127.0.0.1:8090' }),
        publicNetwork: false,
        paths: { keys: await keysDir() },
      },
      { transport, exitTransport: transport },
    )
    await a.start()
    await b.start()
    expect(a.overlays.map((o) => o.name)).toEqual([
      'DiscoveryCommunity',
      'DHTDiscoveryCommunity',
      'TriblerTunnelCommunity',
    ])
    expect(a.dht?.communityId.toString('hex')).toBe('8d0be1845d74d175f178197cad001591d04d73cc')
    expect((a.tunnels as HiddenTunnelCommunity).introPointDirectory).toBeDefined()
    // the DHT walks from the same bootstrap list as the other overlays: without the public network, only the
    // explicit addresses
    expect(a.dht?.bootstrapAddresses).toEqual([])
    expect(b.dht?.bootstrapAddresses).toEqual([{ host: '127.0.0.1', port: 8090 }])
    for (let i = 0; i < 200 && (a.dht?.routingTables[0]?.size ?? 0) === 0; i++)
      await new Promise((r) => setTimeout(r, 20))
    expect(a.dht?.routingTables[0]?.get(b.dht?.myNodeId() ?? Buffer.alloc(20))).toBeDefined()
    await b.stop()
    await a.stop()
    expect(a.dht?.running).toBe(false)
  })

  it('does nothing when ipv8.enabled is off', async () => {
    const service = new Ipv8Service(
      { config: config({ 'ipv8~enabled': false }), publicNetwork: false, paths: { keys: await keysDir() } },
      { transport: new MemoryNetwork() },
    )
    await service.start()
    expect(service.endpoint).toBeUndefined()
    await service.stop()
  })

  it('parses bootstrap_override lists and skips junk', () => {
    expect(parseBootstrap('127.0.0.1:8090, [::1]:7, nonsense, 1.2.3.4:0')).toEqual([
      { host: '127.0.0.1', port: 8090 },
      { host: '::1', port: 7 },
    ])
  })
})
