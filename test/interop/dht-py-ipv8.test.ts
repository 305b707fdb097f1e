import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import {
  DHTDiscoveryCommunity,
  DhtIntroPointProvider,
  hiddenLookupHash,
  PEER_SOURCE_DHT,
  PEER_SOURCE_PEX,
  PexCommunity,
  PrivateKey,
} from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { udpTransport } from '../../src/net/index.js'

// py-ipv8's last pure-Python commit (241d0c2) in a checkout named by PY_IPV8_DIR, run by /usr/bin/python3 with
// Debian's python3-libnacl, python3-cryptography, python3-aiohttp and python3-typing-extensions.
const PY_IPV8_DIR = process.env.PY_IPV8_DIR
const available = PY_IPV8_DIR !== undefined && existsSync(`${PY_IPV8_DIR}/ipv8/dht/discovery.py`)
const SCRIPT = fileURLToPath(new URL('../support/py_ipv8_dht.py', import.meta.url))
const TS_HOSTS = ['127.0.0.192', '127.0.0.193']
const PY_HOSTS = ['127.0.0.194', '127.0.0.195', '127.0.0.196']

type Answer = Record<string, unknown> & { id?: number; error?: string }

interface PyDht {
  command(cmd: Record<string, unknown>): Promise<Answer>
  stop(): Promise<void>
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await condition()) return true
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return false
}

async function startPy(
  walkTo: { host: string; port: number }[],
  pex?: { info_hash: string; seeder_pks: string[] },
): Promise<PyDht> {
  const spec = { hosts: PY_HOSTS, walk_to: walkTo.map((a) => [a.host, a.port]), ...(pex && { pex }) }
  const child: ChildProcessWithoutNullStreams = spawn('/usr/bin/python3', [SCRIPT, JSON.stringify(spec)], {
    env: { ...process.env, PY_IPV8_DIR: PY_IPV8_DIR as string },
  })
  const lines: Answer[] = []
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line) as Answer))
  await until(() => lines.some((l) => l.ready !== undefined) || child.exitCode !== null, 30_000)
  if (!lines.some((l) => l.ready !== undefined)) throw new Error(`py-ipv8 did not start: ${stderr}`)
  let next = 1
  return {
    async command(cmd) {
      const id = next++
      child.stdin.write(`${JSON.stringify({ ...cmd, id })}\n`)
      await until(() => lines.some((l) => l.id === id), 40_000)
      const answer = lines.find((l) => l.id === id)
      if (answer === undefined) throw new Error(`no answer to ${JSON.stringify(cmd)}: ${stderr}`)
      return answer
    },
    async stop() {
      child.stdin.end()
      await until(() => child.exitCode !== null, 10_000)
      if (child.exitCode === null) child.kill()
    },
  }
}

const stops: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
})

describe.skipIf(!available)('the DHT against py-ipv8 DHTDiscoveryCommunity nodes', () => {
  it('stores and finds values and introduction points both ways', async () => {
    const net = await OverlayTestNetwork.create(
      TS_HOSTS.length,
      (deps, _i, bootstrap) =>
        new DHTDiscoveryCommunity(deps, { bootstrap: { publicNetwork: false, addresses: bootstrap } }),
      { transport: udpTransport, hostOf: (i) => TS_HOSTS[i] as string },
    )
    stops.push(() => net.stopAll())
    await net.startAll()
    const py = await startPy([net.node(0).socket.local])
    stops.push(() => py.stop())
    const ours = net.nodes.map((n) => n.community)
    // every py-ipv8 node knows both of ours, and ours know them
    expect(
      await until(async () => {
        const status = await py.command({ cmd: 'status' })
        return (
          (status.nodes as number[]).every((n) => n >= 3) &&
          ours.every((c) => (c.routingTables[0]?.size ?? 0) >= 3)
        )
      }, 60_000),
    ).toBe(true)

    // a plain value from us, found by py-ipv8
    const key1 = Buffer.alloc(20, 0x11)
    await ours[1]?.storeValue(key1, Buffer.from('from tribler.ts'))
    const found1 = await py.command({ cmd: 'find', node: 2, key: key1.toString('hex') })
    expect(found1.values).toContainEqual([Buffer.from('from tribler.ts').toString('hex'), null])

    // a signed one: py-ipv8 checks our signature and names our key
    const key2 = Buffer.alloc(20, 0x22)
    await ours[0]?.storeValue(key2, Buffer.from('signed by us'), { sign: true })
    const found2 = await py.command({ cmd: 'find', node: 1, key: key2.toString('hex') })
    expect(found2.values).toContainEqual([
      Buffer.from('signed by us').toString('hex'),
      ours[0]?.myKey.publicKey.toBin().toString('hex'),
    ])

    // a value from py-ipv8 (it needs our tokens), found by us
    const key3 = Buffer.alloc(20, 0x33)
    const stored = await py.command({
      cmd: 'store',
      node: 0,
      key: key3.toString('hex'),
      value: Buffer.from('from py-ipv8').toString('hex'),
    })
    expect(stored.error).toBeUndefined()
    expect(stored.stored as number).toBeGreaterThan(0)
    const found3 = await ours[1]?.findValues(key3)
    expect(found3?.map((v) => v.data.toString())).toContain('from py-ipv8')

    // introduction points announced by us, looked up by py-ipv8's DHTCommunityProvider
    const introKey = PrivateKey.generate().publicKey.toBin()
    const seederPk = PrivateKey.generate().publicKey.toBin()
    const ih1 = Buffer.alloc(20, 0x44)
    await new DhtIntroPointProvider(ours[0] as DHTDiscoveryCommunity).announce(ih1, {
      address: { host: '10.1.2.3', port: 4321 },
      key: introKey,
      seederPk,
      source: 0,
      lastSeen: Math.floor(Date.now() / 1000),
    })
    const lookedUp = await py.command({ cmd: 'lookup', node: 1, info_hash: ih1.toString('hex') })
    expect(lookedUp.intro_points).toContainEqual({
      address: ['10.1.2.3', 4321],
      key: introKey.toString('hex'),
      seeder_pk: seederPk.toString('hex'),
      source: PEER_SOURCE_DHT,
    })

    // and announced by py-ipv8, looked up by ours
    const ih2 = Buffer.alloc(20, 0x55)
    const pyIntro = PrivateKey.generate().publicKey.toBin()
    const pySeeder = PrivateKey.generate().publicKey.toBin()
    await py.command({
      cmd: 'announce',
      node: 2,
      info_hash: ih2.toString('hex'),
      intro_pk: pyIntro.toString('hex'),
      seeder_pk: pySeeder.toString('hex'),
      address: ['10.9.8.7', 1234],
    })
    const records = await new DhtIntroPointProvider(ours[1] as DHTDiscoveryCommunity).lookup(ih2)
    const record = records.find((r) => r.key.equals(pyIntro))
    expect(record?.seederPk.equals(pySeeder)).toBe(true)
    expect(record?.address).toEqual({ host: '10.9.8.7', port: 1234 })
    for (const c of ours) {
      expect(c.statistics.dropped.malformed).toBe(0)
      expect(c.statistics.dropped.handlerError).toBe(0)
    }
  }, 180_000)

  it('exchanges seeder keys with py-ipv8 PexCommunity nodes of the same swarm', async () => {
    const infoHash = hiddenLookupHash(Buffer.alloc(20, 0x77))
    const ourKeys = TS_HOSTS.map(() => PrivateKey.generate().publicKey.toBin())
    const pyKeys = PY_HOSTS.map(() => PrivateKey.generate().publicKey.toBin())
    const net = await OverlayTestNetwork.create(
      TS_HOSTS.length,
      (deps, i, bootstrap) => {
        const pex = new PexCommunity(deps, infoHash, {
          walkIntervalMs: 500,
          bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
        })
        pex.startAnnounce(ourKeys[i] as Buffer)
        return pex
      },
      { transport: udpTransport, hostOf: (i) => TS_HOSTS[i] as string },
    )
    stops.push(() => net.stopAll())
    await net.startAll()
    const py = await startPy([net.node(0).socket.local], {
      info_hash: infoHash.toString('hex'),
      seeder_pks: pyKeys.map((k) => k.toString('hex')),
    })
    stops.push(() => py.stop())
    const hex = (keys: Buffer[]): string[] => keys.map((k) => k.toString('hex')).sort()
    const all = hex([...ourKeys, ...pyKeys])
    // ours learn every py-ipv8 introduction point's seeder key, and py-ipv8's learn ours
    expect(
      await until(
        () =>
          net.nodes.every((n) => {
            const known = hex(n.community.introPoints().map((ip) => ip.seederPk))
            return all.every((k) => known.includes(k))
          }),
        60_000,
      ),
    ).toBe(true)
    type PyIntro = { address: [string, number]; key: string; seeder_pk: string; source: number }
    let pyKnown: PyIntro[] = []
    expect(
      await until(async () => {
        pyKnown = (await py.command({ cmd: 'pex', node: 1 })).intro_points as PyIntro[]
        return ourKeys.every((k) => pyKnown.some((ip) => ip.seeder_pk === k.toString('hex')))
      }, 60_000),
    ).toBe(true)
    for (const [i, key] of ourKeys.entries()) {
      const ip = pyKnown.find((p) => p.seeder_pk === key.toString('hex'))
      expect(ip).toMatchObject({
        address: [TS_HOSTS[i], net.node(i).socket.local.port],
        key: net.node(i).key.publicKey.toBin().toString('hex'),
        source: PEER_SOURCE_PEX,
      })
    }
    for (const n of net.nodes) expect(n.community.counters.malformed).toBe(0)
  }, 180_000)
})
