import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { buildApiServer } from '../../src/api/index.js'
import { configureLogging } from '../../src/common/index.js'
import {
  DESTROY_REASON_UNNEEDED,
  Ipv8Service,
  PEER_FLAG_EXIT_BT,
  PEER_FLAG_RELAY,
} from '../../src/ipv8/index.js'
import { udpTransport } from '../../src/net/index.js'
import { Session } from '../../src/session/index.js'

configureLogging({ level: 'silent' })

const open: Session[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.stop()))
})

function session(host: string, bootstrap = ''): Session {
  const s = new Session({
    stateDir: mkdtempSync(join(tmpdir(), 'tribler-tunnel-')),
    publicNetwork: false,
    databasePath: ':memory:',
  })
  s.config.override('ipv8', 'address', host)
  s.config.override('ipv8', 'bootstrap_override', bootstrap)
  s.config.override('dispersy', 'port', 0)
  open.push(s)
  return s
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
}

describe('the tunnel community in the session and its REST endpoints', () => {
  it('shows a built circuit under /debug/circuits and the exit under /ipv8/tunnel/exits', async () => {
    const exitSession = session('127.0.0.56')
    exitSession.config.override('tunnel_community', 'exitnode_enabled', true)
    const exit = exitSession.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await exitSession.start()
    const client = session('127.0.0.57', `127.0.0.56:${exit.address?.port ?? 0}`)
    const ipv8 = client.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await client.start()
    const tunnels = ipv8.tunnels
    if (tunnels === undefined) throw new Error('no tunnel community')
    await until(() => tunnels.getCandidates(PEER_FLAG_EXIT_BT).length > 0, 20_000)
    const circuit = await tunnels.circuit(1, { timeoutMs: 20_000 })

    const { app } = await buildApiServer(client)
    const circuits = (await app.inject({ method: 'GET', url: '/debug/circuits' })).json()
    expect(circuits.circuits).toContainEqual(
      expect.objectContaining({
        id: circuit.circuitId,
        state: 'READY',
        goal_hops: 1,
        hops: [{ host: `127.0.0.56:${exit.address?.port}` }],
      }),
    )
    const view = (await app.inject({ method: 'GET', url: '/ipv8/tunnel/circuits' })).json()
    expect(view.circuits).toContainEqual(
      expect.objectContaining({
        circuit_id: circuit.circuitId,
        actual_hops: 1,
        type: 'DATA',
        state: 'READY',
      }),
    )
    const slots = (await app.inject({ method: 'GET', url: '/debug/circuits/slots' })).json()
    expect(slots.slots.random).toHaveLength(5)
    expect(slots.slots.competing).toHaveLength(15)
    await app.close()

    const exitApi = (await buildApiServer(exitSession)).app
    const exits = (await exitApi.inject({ method: 'GET', url: '/ipv8/tunnel/exits' })).json()
    expect(exits.exits).toContainEqual(
      expect.objectContaining({ circuit_from: circuit.circuitId, enabled: false }),
    )
    expect((await exitApi.inject({ method: 'GET', url: '/ipv8/tunnel/relays' })).json()).toEqual({
      relays: [],
    })
    await exitApi.close()
  })

  it("fills a relay's slots with real circuits over UDP, shows them under /debug/circuits/slots and frees them on destroy", async () => {
    const exitSession = session('127.0.0.141')
    exitSession.config.override('tunnel_community', 'exitnode_enabled', true)
    const exit = exitSession.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await exitSession.start()
    const bootstrap = `127.0.0.141:${exit.address?.port ?? 0}`
    const relaySession = session('127.0.0.142', bootstrap)
    relaySession.config.override('tunnel_community', 'random_slots', 1)
    relaySession.config.override('tunnel_community', 'competing_slots', 1)
    const relayIpv8 = relaySession.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await relaySession.start()
    const client = session('127.0.0.143', bootstrap)
    const clientIpv8 = client.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await client.start()
    const tunnels = clientIpv8.tunnels
    const relay = relayIpv8.tunnels
    if (tunnels === undefined || relay === undefined) throw new Error('no tunnel community')
    await until(
      () =>
        tunnels.getCandidates(PEER_FLAG_RELAY).length === 2 &&
        relay.getCandidates(PEER_FLAG_EXIT_BT).length === 1,
      30_000,
    )
    const relayPort = relayIpv8.address?.port
    const viaRelay = () =>
      tunnels.findCircuits({ hops: 2 }).filter((c) => {
        const first = c.hops[0]?.address
        return first?.host === '127.0.0.142' && first.port === relayPort
      })
    tunnels.buildTunnels(2)
    await until(() => viaRelay().length >= 2, 50_000)
    expect(viaRelay().length).toBe(2)
    const ours = viaRelay().map((c) => c.circuitId)

    const { app } = await buildApiServer(relaySession)
    const full = (await app.inject({ method: 'GET', url: '/debug/circuits/slots' })).json()
    expect(full.slots.random).toHaveLength(1)
    expect(full.slots.competing).toHaveLength(1)
    // no bandwidth ledger: the competing slot was won with balance 0
    expect(full.slots.competing[0][0]).toBe(0)
    expect([full.slots.random[0], full.slots.competing[0][1]].sort()).toEqual([...ours].sort())
    const relays = (await app.inject({ method: 'GET', url: '/ipv8/tunnel/relays' })).json()
    expect(relays.relays.map((r: { circuit_from: number }) => r.circuit_from)).toEqual(
      expect.arrayContaining(ours),
    )

    tunnels.stopTunnels(2)
    for (const c of [...tunnels.circuits.values()])
      tunnels.removeCircuit(c.circuitId, 'test', DESTROY_REASON_UNNEEDED)
    await until(
      () => relay.slots?.random[0] === undefined && relay.slots?.competing[0]?.circuitId === undefined,
      20_000,
    )
    expect((await app.inject({ method: 'GET', url: '/debug/circuits/slots' })).json()).toEqual({
      slots: { random: [null], competing: [[0, null]] },
    })
    await app.close()
  })

  it('answers 404 when the tunnel community is disabled', async () => {
    const s = session('127.0.0.58')
    s.config.override('tunnel_community', 'enabled', false)
    s.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await s.start()
    const { app } = await buildApiServer(s)
    for (const url of ['/debug/circuits', '/debug/circuits/slots', '/ipv8/tunnel/circuits']) {
      const response = await app.inject({ method: 'GET', url })
      expect(response.statusCode).toBe(404)
      expect(response.json()).toEqual({ error: 'tunnel community not found' })
    }
    await app.close()
  })
})
