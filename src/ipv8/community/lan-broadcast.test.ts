import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import {
  type BindOptions,
  type DatagramSocket,
  type DatagramTransport,
  MemoryNetwork,
  type SocketAddress,
} from '../../net/index.js'
import { BEACON_HEADER } from '../endpoint/index.js'
import { Ipv8Service } from '../service.js'
import { OverlayTestNetwork } from '../testing/harness.js'
import { Community, type CommunityDeps, defaultBootstrappers, LanBroadcastBootstrapper } from './index.js'

const ID = Buffer.from('5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a', 'hex')
const BROADCAST = '255.255.255.255'

/** A transport that remembers every bind and every datagram its sockets send. */
function recording(inner: DatagramTransport) {
  const binds: BindOptions[] = []
  const sent: SocketAddress[] = []
  const transport: DatagramTransport = {
    async bind(opts: BindOptions = {}): Promise<DatagramSocket> {
      binds.push(opts)
      const socket = await inner.bind(opts)
      return {
        get local() {
          return socket.local
        },
        get stats() {
          return socket.stats
        },
        send(data, to) {
          sent.push(to)
          socket.send(data, to)
        },
        onMessage: (handler) => socket.onMessage(handler),
        close: () => socket.close(),
      }
    },
  }
  return { transport, binds, sent }
}

let net: OverlayTestNetwork<Community> | undefined
let dirs: string[] = []
afterEach(async () => {
  await net?.stopAll()
  net = undefined
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  dirs = []
})

describe('LAN broadcast bootstrapping', () => {
  it('finds a LAN node through paced announces from a broadcast socket, as py-ipv8 does', async () => {
    const clock = new ManualClock()
    const memory = new MemoryNetwork({ clock, latencyMs: 1 })
    const { transport, binds, sent } = recording(memory)
    const lans: LanBroadcastBootstrapper[] = []
    net = await OverlayTestNetwork.create(
      2,
      (deps, i) => {
        const lan = new LanBroadcastBootstrapper({
          transport,
          clock,
          bindHost: `127.0.0.${i + 1}`,
          ports: [10_000, 10_199],
          announcesPerSec: 400,
        })
        lans.push(lan)
        return new Community(deps, ID, { strategies: () => [], bootstrappers: [lan] })
      },
      { transport: memory, clock },
    )
    const [a, b] = [net.node(0), net.node(1)]
    const [lanA, lanB] = lans as [LanBroadcastBootstrapper, LanBroadcastBootstrapper]
    await b.community.start()
    await a.community.start()
    // each bootstrapper bound its own socket with SO_BROADCAST, beside the overlay sockets
    expect(binds.filter((o) => o.broadcast === true)).toHaveLength(2)
    expect(lanA.local?.port).not.toBe(a.socket.local.port)

    // a sweep is paced: 400/s in 50 ms ticks, never one burst over the ports
    expect(lanA.stats.announces).toBe(20)
    expect(lanA.sweeping).toBe(true)
    for (let elapsed = 50; elapsed <= 1_000; elapsed += 50) {
      net.advance(50, 50)
      expect(lanA.stats.announces).toBeLessThanOrEqual(20 + (400 * elapsed) / 1000)
    }
    expect(lanA.stats.announces).toBe(200)
    expect(lanA.sweeping).toBe(false)
    expect(sent.filter((to) => to.host === BROADCAST)).toHaveLength(400)
    expect(
      sent.filter((to) => to.host === BROADCAST).every((to) => to.port >= 10_000 && to.port <= 10_199),
    ).toBe(true)

    // b heard a's announce on its broadcast socket and walked there; a's broadcast socket handed the request to
    // a's overlay, which answered from its own socket
    await advanceUntil(
      () => a.community.network.getPeer(b.key.mid) !== undefined,
      () => net?.advance(100),
    )
    expect(b.community.network.getPeer(a.key.mid)?.address).toEqual(a.socket.local)
    expect(lanB.stats.beaconsHeard + lanA.stats.beaconsHeard).toBeGreaterThan(0)
    expect(lanA.stats.handoffs + lanB.stats.handoffs).toBeGreaterThan(0)
    // nobody took its own announce for a peer
    expect(a.community.network.getPeer(a.key.mid)).toBeUndefined()

    // bootstrapping asks for at most one sweep per 30 s
    for (let i = 0; i < 20; i++) {
      await a.community.bootstrap()
      net.advance(1_000, 250)
    }
    expect(lanA.stats.sweeps).toBe(1)
    net.advance(10_000, 500)
    await a.community.bootstrap()
    expect(lanA.stats.sweeps).toBe(2)
    net.advance(1_000)
    expect(lanA.stats.announces).toBe(400)

    // stopping closes the broadcast socket
    await a.community.stop()
    expect(memory.addresses).not.toContainEqual(lanA.local ?? { host: '', port: -1 })
    expect(
      memory.addresses.some((addr) => addr.host === '127.0.0.1' && addr.port !== a.socket.local.port),
    ).toBe(false)
  })

  it('walks to announcers at a bounded rate, so forged announces cannot turn it into an amplifier', async () => {
    const clock = new ManualClock()
    const memory = new MemoryNetwork({ clock, latencyMs: 1 })
    const lan = new LanBroadcastBootstrapper({
      transport: memory,
      clock,
      bindHost: '127.0.0.1',
      ports: [1, 1],
    })
    net = await OverlayTestNetwork.create(
      1,
      (deps) => new Community(deps, ID, { strategies: () => [], bootstrappers: [lan] }),
      { transport: memory, clock },
    )
    await net.startAll()
    const node = net.node(0)
    const walks = (): number =>
      (node.community.statistics.messages.get(246)?.packetsOut ?? 0) +
      (node.community.statistics.messages.get(234)?.packetsOut ?? 0)
    const beacon = Buffer.concat([BEACON_HEADER, node.community.prefix])
    const forgers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => memory.bind({ host: `10.9.0.${i + 1}` })),
    )
    const [one] = forgers
    // one source, 100 announces to each of the overlay socket and the broadcast socket
    for (let i = 0; i < 100; i++) {
      one?.send(beacon, node.socket.local)
      one?.send(beacon, lan.local ?? node.socket.local)
    }
    net.advance(20, 10)
    expect(walks()).toBe(4)
    expect(lan.stats.beaconsHeard).toBe(2)
    expect(lan.stats.beaconsLimited).toBe(98)
    // many sources at once: at most 10 walks per path
    for (const forger of forgers.slice(1)) {
      forger.send(beacon, node.socket.local)
      forger.send(beacon, lan.local ?? node.socket.local)
    }
    net.advance(20, 10)
    expect(walks()).toBeLessThanOrEqual(4 + 10 + 10)
    // overlay datagrams on the broadcast socket are handed over at most 100 per second
    const junk = Buffer.concat([node.community.prefix, Buffer.from([246, 1, 2, 3])])
    for (let i = 0; i < 150; i++) one?.send(junk, lan.local ?? node.socket.local)
    net.advance(20, 10)
    expect(lan.stats.handoffs).toBe(100)
    expect(node.community.statistics.dropped.malformed).toBe(100)
    for (const forger of forgers) await forger.close()
  })

  it('does nothing without a broadcast socket', async () => {
    const clock = new ManualClock()
    const failing: DatagramTransport = { bind: () => Promise.reject(new Error('EACCES')) }
    const lan = new LanBroadcastBootstrapper({ transport: failing, clock })
    const target = {
      prefix: Buffer.alloc(22),
      walkTo: () => {},
      sendRaw: () => {},
      blacklist: () => {},
    }
    await lan.start(target)
    await lan.bootstrap(target)
    expect(lan.local).toBeUndefined()
    expect(lan.stats).toMatchObject({ sweeps: 0, announces: 0 })
    await lan.stop()
  })

  it('refuses nonsense ranges and rates', () => {
    expect(() => new LanBroadcastBootstrapper({ ports: [10, 5] })).toThrow(RangeError)
    expect(() => new LanBroadcastBootstrapper({ ports: [0, 70_000] })).toThrow(RangeError)
    expect(() => new LanBroadcastBootstrapper({ announcesPerSec: 0 })).toThrow(RangeError)
  })

  it('is off without the public network: no broadcast socket, no announce', async () => {
    expect(defaultBootstrappers({ publicNetwork: false, lanBroadcast: true })).toEqual([])
    expect(
      defaultBootstrappers({ publicNetwork: true }).some((b) => b instanceof LanBroadcastBootstrapper),
    ).toBe(true)
    expect(
      defaultBootstrappers({ publicNetwork: true, lanBroadcast: false }).some(
        (b) => b instanceof LanBroadcastBootstrapper,
      ),
    ).toBe(false)

    const clock = new ManualClock()
    const memory = new MemoryNetwork({ clock })
    const { transport, binds, sent } = recording(memory)
    const keys = await mkdtemp(join(tmpdir(), 'ipv8-lan-'))
    dirs.push(keys)
    const values: Record<string, string | number | boolean> = {
      'ipv8~enabled': true,
      'ipv8~address': '127.0.0.1',
      'ipv8~bootstrap_override': '',
      'dispersy~port': -1,
    }
    const config = {
      getBoolean: (s: string, k: string) => values[`${s}~${k}`] === true,
      getString: (s: string, k: string) => String(values[`${s}~${k}`] ?? ''),
      getNumber: (s: string, k: string) => Number(values[`${s}~${k}`] ?? 0),
    }
    const service = new Ipv8Service({ config, publicNetwork: false, paths: { keys }, clock }, { transport })
    service.addOverlay((deps: CommunityDeps) => new Community(deps, ID))
    await service.start()
    for (let i = 0; i < 40; i++) clock.advance(1_000)
    for (const overlay of service.overlays) await overlay.bootstrap()
    expect(binds).toEqual([{ host: '127.0.0.1', port: 8090 }])
    expect(service.overlays.flatMap((o) => o.bootstrappers)).toEqual([])
    expect(sent.filter((to) => to.host === BROADCAST)).toEqual([])
    await service.stop()
  })
})

/** Polls `done` with a bound, moving the manual clock between polls. */
async function advanceUntil(done: () => boolean, step: () => void, rounds = 100): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (done()) return
    step()
    await new Promise((r) => setImmediate(r))
  }
  expect(done()).toBe(true)
}
