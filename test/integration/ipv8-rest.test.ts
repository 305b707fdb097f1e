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
    const counters = (await app.inject({ method: 'GET', url: '/ipv8/overlays/statistics' })).json()
    expect(Object.keys(counters.statistics[0].DiscoveryCommunity)).toContain('246:introduction-request')
    expect((await app.inject({ method: 'POST', url: '/ipv8/overlays/statistics' })).statusCode).toBe(400)
    expect(
      (await app.inject({ method: 'POST', url: '/ipv8/overlays/statistics?enable=True' })).statusCode,
    ).toBe(412)
    expect(
      (await app.inject({ method: 'POST', url: '/ipv8/overlays/statistics?enable=True&all=True' })).json(),
    ).toEqual({
      success: true,
    })
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
