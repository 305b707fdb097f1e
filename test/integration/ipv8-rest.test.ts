import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { buildApiServer } from '../../src/api/index.js'
import { configureLogging } from '../../src/common/index.js'
import { Ipv8Service } from '../../src/ipv8/index.js'
import { udpTransport } from '../../src/net/index.js'
import { Session } from '../../src/session/index.js'

configureLogging({ level: 'silent' })

const open: Session[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.stop()))
})

function session(host: string, bootstrap = ''): Session {
  const s = new Session({
    stateDir: mkdtempSync(join(tmpdir(), 'tribler-ipv8-')),
    publicNetwork: false,
    databasePath: ':memory:',
  })
  s.config.override('ipv8', 'address', host)
  s.config.override('ipv8', 'bootstrap_override', bootstrap)
  s.config.override('dispersy', 'port', 0)
  open.push(s)
  return s
}

describe('IPv8 in the session and its REST endpoints', () => {
  it('reports statistics, overlays, message counters and the network of a running node', async () => {
    const a = session('127.0.0.51')
    const ipv8A = a.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await a.start()
    const port = ipv8A.address?.port ?? 0
    const b = session('127.0.0.52', `127.0.0.51:${port}`)
    b.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await b.start()
    const discovery = ipv8A.overlays[0]
    for (let i = 0; i < 100 && (discovery?.network.size ?? 0) === 0; i++)
      await new Promise((r) => setTimeout(r, 20))

    const { app } = await buildApiServer(a)
    const stats = (await app.inject({ method: 'GET', url: '/statistics/ipv8' })).json()
    expect(stats.ipv8_statistics.total_down).toBeGreaterThan(0)
    const overlays = (await app.inject({ method: 'GET', url: '/ipv8/overlays' })).json()
    expect(overlays.overlays[0]).toMatchObject({
      master_peer: '7e313685c1912a141279f8248fc8db5899c5df5a',
      overlay_name: 'DiscoveryCommunity',
    })
    expect(overlays.overlays[0].peers[0]).toMatch(/^Peer<127\.0\.0\.52:\d+, /)
    const network = (await app.inject({ method: 'GET', url: '/ipv8/network' })).json()
    const [peer] = Object.values(network.peers) as Array<{ ip: string; services: string[] }>
    expect(peer?.ip).toBe('127.0.0.52')
    expect(peer?.services).toContain(
      Buffer.from('7e313685c1912a141279f8248fc8db5899c5df5a', 'hex').toString('base64'),
    )
    // ipv8.statistics is off by default: nothing is reported and it cannot be enabled
    const counters = (await app.inject({ method: 'GET', url: '/ipv8/overlays/statistics' })).json()
    expect(counters.statistics).toEqual([
      { DiscoveryCommunity: {} },
      { DHTDiscoveryCommunity: {} },
      { TriblerTunnelCommunity: {} },
    ])
    const refused = await app.inject({
      method: 'POST',
      url: '/ipv8/overlays/statistics?enable=True&all=True',
    })
    expect(refused.statusCode).toBe(412)
    expect(refused.json()).toEqual({ success: false, error: 'StatisticsEndpoint is not enabled.' })
    await app.close()
  })

  it('reports message statistics only while enabled, for all overlays or one by name', async () => {
    const a = session('127.0.0.54')
    a.config.override('ipv8', 'statistics', true)
    const ipv8A = a.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await a.start()
    const b = session('127.0.0.55', `127.0.0.54:${ipv8A.address?.port ?? 0}`)
    b.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await b.start()
    const discovery = ipv8A.overlays[0]
    const { app } = await buildApiServer(a)
    type Counters = Record<string, { identifier: number; num_down: number; first_measured_down: number }>
    const get = async (): Promise<Counters> =>
      (await app.inject({ method: 'GET', url: '/ipv8/overlays/statistics' })).json().statistics[0]
        .DiscoveryCommunity
    const post = async (query: string, body?: string) => {
      const res = await app.inject({
        method: 'POST',
        url: `/ipv8/overlays/statistics${query}`,
        ...(body !== undefined && {
          payload: body,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        }),
      })
      return { status: res.statusCode, body: res.json() }
    }
    // introduction-requests received, old style (246) or new style (234, once the peer is known to speak it)
    const requestsIn = (c: Counters): number =>
      (c['246:introduction-request']?.num_down ?? 0) + (c['234:new-introduction-request']?.num_down ?? 0)
    const until = async (done: () => Promise<boolean>): Promise<void> => {
      for (let i = 0; i < 200 && !(await done()); i++) await new Promise((r) => setTimeout(r, 25))
    }

    // on from the start: every request b walked with is counted, with py-ipv8's timestamps
    await until(async () => ((await get())['246:introduction-request']?.num_down ?? 0) > 0)
    const first = (await get())['246:introduction-request']
    expect(first).toMatchObject({ identifier: 246 })
    expect(first?.num_down).toBeGreaterThan(0)
    expect(first?.first_measured_down).toBeGreaterThan(1_600_000_000)

    // off for all overlays: nothing is reported, and what was counted is gone
    expect(await post('?enable=False&all=True')).toEqual({ status: 200, body: { success: true } })
    expect(await get()).toEqual({})
    expect(discovery?.statisticsEnabled).toBe(false)

    // on again for one overlay by name (form body this time): counting starts from zero
    const requestsTotal = (): number =>
      (discovery?.statistics.messages.get(246)?.packetsIn ?? 0) +
      (discovery?.statistics.messages.get(234)?.packetsIn ?? 0)
    const totalBefore = requestsTotal()
    expect(await post('', 'enable=True&overlay_name=DiscoveryCommunity')).toEqual({
      status: 200,
      body: { success: true },
    })
    await until(async () => requestsIn(await get()) > 0)
    const again = requestsIn(await get())
    expect(again).toBeGreaterThan(0)
    expect(again).toBeLessThanOrEqual(requestsTotal() - totalBefore)

    // an unknown overlay name or all=False changes nothing; missing parameters are refused
    expect(await post('?enable=False&overlay_name=NoSuchCommunity')).toEqual({
      status: 200,
      body: { success: true },
    })
    expect(await post('?enable=False&all=False')).toEqual({ status: 200, body: { success: true } })
    expect(discovery?.statisticsEnabled).toBe(true)
    expect(await post('')).toEqual({
      status: 400,
      body: { success: false, error: "Parameter 'enable' is required" },
    })
    expect(await post('?enable=True')).toEqual({
      status: 412,
      body: { success: false, error: "Parameter 'all' or 'overlay_name' is required" },
    })
    // off by name
    expect(await post('?enable=False&overlay_name=DiscoveryCommunity')).toEqual({
      status: 200,
      body: { success: true },
    })
    expect(await get()).toEqual({})
    await app.close()
  })

  it('runs the DHT: stores and finds values, finds peers and reports its statistics', async () => {
    const a = session('127.0.0.56')
    const ipv8A = a.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await a.start()
    const b = session('127.0.0.57', `127.0.0.56:${ipv8A.address?.port ?? 0}`)
    const ipv8B = b.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await b.start()
    for (let i = 0; i < 250 && (ipv8A.dht?.routingTables[0]?.size ?? 0) === 0; i++)
      await new Promise((r) => setTimeout(r, 20))
    const { app } = await buildApiServer(a)
    const overlays = (await app.inject({ method: 'GET', url: '/ipv8/overlays' })).json()
    expect(overlays.overlays[1]).toMatchObject({
      master_peer: '8d0be1845d74d175f178197cad001591d04d73cc',
      overlay_name: 'DHTDiscoveryCommunity',
    })
    const key = 'ab'.repeat(20)
    const put = await app.inject({
      method: 'PUT',
      url: `/ipv8/dht/values/${key}`,
      payload: 'value=68656c6c6f',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
    expect(put.json()).toEqual({ stored: true })
    const found = (await app.inject({ method: 'GET', url: `/ipv8/dht/values/${key}` })).json()
    expect(found.values).toContainEqual({
      public_key: ipv8A.key?.publicKey.toBin().toString('base64'),
      value: '68656c6c6f',
    })
    const stats = (await app.inject({ method: 'GET', url: '/ipv8/dht/statistics' })).json().statistics
    expect(stats).toMatchObject({ peer_id: ipv8A.key?.mid.toString('hex'), routing_table_size: 1 })
    const peers = (
      await app.inject({ method: 'GET', url: `/ipv8/dht/peers/${ipv8B.key?.mid.toString('hex')}` })
    ).json()
    expect(peers.peers[0]?.address).toEqual(['127.0.0.57', ipv8B.address?.port])
    expect((await app.inject({ method: 'GET', url: '/ipv8/dht/values/xyz' })).statusCode).toBe(400)
    const noValue = await app.inject({ method: 'PUT', url: `/ipv8/dht/values/${key}` })
    expect(noValue.json()).toEqual({ error: 'incorrect parameters' })
    await app.close()
  })

  it('answers 404 under /ipv8/dht while the DHT is off', async () => {
    const s = session('127.0.0.58')
    s.config.override('dht', 'enabled', false)
    s.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await s.start()
    const { app } = await buildApiServer(s)
    const res = await app.inject({ method: 'GET', url: '/ipv8/dht/statistics' })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toEqual({ error: 'DHT community not found' })
    await app.close()
  })

  it('answers 404 under /ipv8 and an empty statistics object when IPv8 is disabled', async () => {
    const s = session('127.0.0.53')
    s.config.override('ipv8', 'enabled', false)
    s.addService((deps) => new Ipv8Service(deps))
    await s.start()
    const { app } = await buildApiServer(s)
    expect((await app.inject({ method: 'GET', url: '/ipv8/overlays' })).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/statistics/ipv8' })).json()).toEqual({
      ipv8_statistics: {},
    })
    await app.close()
  })
})
