import { mkdtempSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildApiServer } from '../../src/api/index.js'
import { configureLogging } from '../../src/common/index.js'
import { TriblerConfig } from '../../src/config/index.js'
import {
  circuitDatagramSocket,
  Ipv8Service,
  PEER_FLAG_EXIT_BT,
  TunnelCommunity,
} from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { type DatagramSocket, type SocketAddress, udpTransport } from '../../src/net/index.js'
import { Session } from '../../src/session/index.js'
import {
  Command,
  circuitUpstream,
  decodeReply,
  encodeRequest,
  encodeUdpDatagram,
  Reply,
  SOCKS5_PORT_KEY,
  Socks5Server,
  Socks5Service,
} from '../../src/socks5/index.js'
import { type Socks5UdpClient, socks5Associate } from '../support/socks5-client.js'

configureLogging({ level: 'silent' })

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function echoServer(host: string): Promise<{ socket: DatagramSocket; seen: SocketAddress[] }> {
  const socket = await udpTransport.bind({ host, port: 0 })
  const seen: SocketAddress[] = []
  socket.onMessage((data, from) => {
    seen.push(from)
    socket.send(data, from)
  })
  cleanups.push(() => socket.close())
  return { socket, seen }
}

async function plainProxy(
  opts: Partial<ConstructorParameters<typeof Socks5Server>[0]> = {},
): Promise<Socks5Server> {
  const server = new Socks5Server({
    port: 0,
    upstream: () => udpTransport.bind({ host: '127.0.0.1', port: 0 }),
    ...opts,
  })
  await server.start()
  cleanups.push(() => server.stop())
  return server
}

async function associate(server: Socks5Server, opts: Parameters<typeof socks5Associate>[1] = {}) {
  const client = await socks5Associate(server.address as SocketAddress, opts)
  cleanups.push(() => client.close())
  return client
}

/** Sends `count` datagrams and waits for their echoes; returns the payloads and origins received. */
async function exchange(client: Socks5UdpClient, to: SocketAddress, count: number, prefix = Buffer.alloc(0)) {
  const received: { text: string; from: SocketAddress }[] = []
  client.onMessage((payload, from) =>
    received.push({ text: payload.subarray(prefix.length).toString(), from }),
  )
  const sent: string[] = []
  for (let i = 0; i < count; i++) sent.push(`datagram ${i}`)
  // Datagrams may be lost on a loaded machine, or before a circuit is ready: resend what has not come back.
  await vi.waitFor(
    () => {
      const got = new Set(received.map((r) => r.text))
      for (const text of sent) if (!got.has(text)) client.send(Buffer.concat([prefix, Buffer.from(text)]), to)
      expect(got.size).toBe(count)
    },
    { timeout: 30_000, interval: 250 },
  )
  return received
}

describe('SOCKS5 UDP proxy on loopback', () => {
  it('relays datagrams to an echo server and wraps the replies with their origin', async () => {
    const echo = await echoServer('127.0.0.1')
    const server = await plainProxy()
    const client = await associate(server)
    expect(client.relay.host).toBe('127.0.0.1')

    const received = await exchange(client, echo.socket.local, 20)
    expect(new Set(received.map((r) => r.text)).size).toBe(20)
    for (const { from } of received) expect(from).toEqual(echo.socket.local)
    // The echo server saw the proxy's upstream socket, never the client's own.
    expect(echo.seen.every((a) => a.port !== client.socket.local.port)).toBe(true)
    expect(server.stats.datagramsUp).toBeGreaterThanOrEqual(20)
    expect(server.stats.datagramsDown).toBeGreaterThanOrEqual(20)
    const [info] = server.associations()
    expect(info?.client).toEqual(client.socket.local)
    expect(info?.destinations).toBe(1)
  })

  it('drops datagrams from other sources, fragments and garbage, and keeps relaying', async () => {
    const echo = await echoServer('127.0.0.1')
    const server = await plainProxy()
    const client = await associate(server)
    await exchange(client, echo.socket.local, 1)
    const before = echo.seen.length

    const stranger = await udpTransport.bind({ host: '127.0.0.1', port: 0 })
    cleanups.push(() => stranger.close())
    stranger.send(encodeUdpDatagram(echo.socket.local, Buffer.from('not yours')), client.relay)
    const fragment = encodeUdpDatagram(echo.socket.local, Buffer.from('part'))
    fragment[2] = 1
    client.socket.send(fragment, client.relay)
    client.socket.send(Buffer.of(0, 0, 0, 9, 1, 2), client.relay)
    client.socket.send(Buffer.alloc(0), client.relay)
    await vi.waitFor(() => {
      expect(server.stats.dropped.foreignSource).toBe(1)
      expect(server.stats.dropped.fragmented).toBe(1)
      expect(server.stats.dropped.malformed).toBe(2)
    })
    expect(echo.seen.length).toBe(before)
    await exchange(client, echo.socket.local, 3)
  })

  it('closes the association with its control connection', async () => {
    const server = await plainProxy()
    const client = await associate(server)
    expect(server.associations()).toHaveLength(1)
    client.control.destroy()
    await vi.waitFor(() => expect(server.associations()).toHaveLength(0))
  })

  it('answers CONNECT and BIND on a real connection with "command not supported"', async () => {
    const server = await plainProxy()
    for (const command of [Command.CONNECT, Command.BIND]) {
      const socket = connect(server.address as SocketAddress)
      socket.on('error', () => undefined)
      const chunks: Buffer[] = []
      socket.on('data', (d) => chunks.push(d))
      const closed = new Promise((resolve) => socket.once('close', resolve))
      socket.write(
        Buffer.concat([Buffer.of(5, 1, 0), encodeRequest(command, { host: 'example.org', port: 80 })]),
      )
      await closed
      const bytes = Buffer.concat(chunks)
      expect(bytes.subarray(0, 2)).toEqual(Buffer.of(5, 0))
      expect(bytes[3]).toBe(Reply.COMMAND_NOT_SUPPORTED)
    }
    expect(server.stats.refused.command).toBe(2)
    expect(server.associations()).toHaveLength(0)
  })

  it('refuses associations beyond the limit and clients without the credentials', async () => {
    const server = await plainProxy({
      maxAssociations: 1,
      credentials: { username: 'tribler', password: 'pw' },
    })
    await associate(server, { credentials: { username: 'tribler', password: 'pw' } })
    await expect(associate(server, { credentials: { username: 'tribler', password: 'pw' } })).rejects.toThrow(
      /refused with 1/,
    )
    await expect(associate(server, { credentials: { username: 'tribler', password: 'no' } })).rejects.toThrow(
      /authentication refused/,
    )
    await expect(associate(server)).rejects.toThrow(/method 255/)
    expect(server.stats.refused).toMatchObject({ limit: 1, auth: 1, method: 1 })
  })

  it('grants exactly maxAssociations of many UDP ASSOCIATE requests arriving at once', async () => {
    const limit = 3
    const total = limit + 5
    // The upstream is held until every request has reached the server, so they all wait on it together.
    let release = (): void => undefined
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const server = await plainProxy({
      maxAssociations: limit,
      upstream: () => held.then(() => udpTransport.bind({ host: '127.0.0.1', port: 0 })),
    })
    const replies = Array.from({ length: total }, () => {
      const socket = connect(server.address as SocketAddress)
      socket.on('error', () => undefined)
      cleanups.push(async () => {
        socket.destroy()
      })
      const received: Buffer[] = []
      socket.on('data', (d) => received.push(d))
      // Greeting and request in one write: the server reads both in one go, so once the method choice is
      // back, the request has been taken up too.
      socket.write(
        Buffer.concat([
          Buffer.of(5, 1, 0),
          encodeRequest(Command.UDP_ASSOCIATE, { host: '0.0.0.0', port: 0 }),
        ]),
      )
      return received
    })
    await vi.waitFor(
      () => {
        for (const received of replies) expect(Buffer.concat(received).length).toBeGreaterThanOrEqual(2)
      },
      { timeout: 20_000, interval: 50 },
    )
    release()
    const answers = await vi.waitFor(
      () =>
        replies.map((received) => {
          const bytes = Buffer.concat(received)
          expect(bytes.subarray(0, 2)).toEqual(Buffer.of(5, 0))
          const reply = decodeReply(bytes.subarray(2))?.value
          expect(reply).toBeDefined()
          return reply?.reply
        }),
      { timeout: 20_000, interval: 50 },
    )
    expect(answers.filter((r) => r === Reply.SUCCEEDED)).toHaveLength(limit)
    expect(answers.filter((r) => r === Reply.GENERAL_FAILURE)).toHaveLength(total - limit)
    expect(server.associations()).toHaveLength(limit)
    expect(server.stats.refused.limit).toBe(total - limit)
    expect(server.stats.associationsOpened).toBe(limit)
  })

  it('gives each association only the replies to what it sent, and drops unsolicited datagrams', async () => {
    const echoA = await echoServer('127.0.0.1')
    const echoB = await echoServer('127.0.0.1')
    const server = await plainProxy()
    const a = await associate(server)
    const b = await associate(server)
    // Everything each client receives, from the start.
    const all = {
      a: [] as { text: string; from: SocketAddress }[],
      b: [] as { text: string; from: SocketAddress }[],
    }
    a.onMessage((payload, from) => all.a.push({ text: payload.toString(), from }))
    b.onMessage((payload, from) => all.b.push({ text: payload.toString(), from }))
    await Promise.all([
      exchange(a, echoA.socket.local, 10, Buffer.from('a ')),
      exchange(b, echoB.socket.local, 10, Buffer.from('b ')),
    ])

    // A stranger sends to the proxy's upstream socket, the address the echo servers saw.
    const upstream = echoA.seen[0] as SocketAddress
    const stranger = await udpTransport.bind({ host: '127.0.0.1', port: 0 })
    cleanups.push(() => stranger.close())
    await vi.waitFor(
      () => {
        stranger.send(Buffer.from('unsolicited'), upstream)
        expect(server.stats.dropped.unsolicited).toBeGreaterThanOrEqual(1)
      },
      { timeout: 20_000, interval: 250 },
    )
    // Both associations still relay after it.
    await exchange(a, echoA.socket.local, 2, Buffer.from('a '))
    await exchange(b, echoB.socket.local, 2, Buffer.from('b '))

    expect(all.a.length).toBeGreaterThanOrEqual(12)
    expect(all.b.length).toBeGreaterThanOrEqual(12)
    for (const { text, from } of all.a) {
      expect(text.startsWith('a ')).toBe(true)
      expect(from).toEqual(echoA.socket.local)
    }
    for (const { text, from } of all.b) {
      expect(text.startsWith('b ')).toBe(true)
      expect(from).toEqual(echoB.socket.local)
    }
    expect(server.stats.dropped.noClient).toBe(0)
  })

  it('forgets a destination not sent to for 10 minutes and drops what it sends after that', async () => {
    const echo = await echoServer('127.0.0.1')
    const server = await plainProxy()
    const client = await associate(server)
    const texts: string[] = []
    client.onMessage((payload) => texts.push(payload.toString()))
    await exchange(client, echo.socket.local, 1)
    const upstream = echo.seen[0] as SocketAddress
    // While fresh, the destination may send on its own (a uTP peer's data) and reaches the client.
    await vi.waitFor(
      () => {
        echo.socket.send(Buffer.from('fresh'), upstream)
        expect(texts).toContain('fresh')
      },
      { timeout: 20_000, interval: 250 },
    )
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 10 * 60_000 + 1_000 })
    try {
      await vi.waitFor(
        () => {
          echo.socket.send(Buffer.from('stale'), upstream)
          expect(server.stats.dropped.unsolicited).toBeGreaterThanOrEqual(1)
        },
        { timeout: 20_000, interval: 250 },
      )
      expect(texts).not.toContain('stale')
    } finally {
      vi.useRealTimers()
    }
  })

  it('survives random bytes on the control connection and the relay (fuzz)', async () => {
    const echo = await echoServer('127.0.0.1')
    const server = await plainProxy()
    const client = await associate(server)
    let seed = 12345
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed
    }
    const sockets = []
    for (let i = 0; i < 30; i++) {
      const socket = connect(server.address as SocketAddress)
      socket.on('error', () => undefined)
      const noise = Buffer.alloc(next() % 64)
      for (let j = 0; j < noise.length; j++) noise[j] = next() & 0xff
      if (i % 2 === 0 && noise.length > 0) noise[0] = 5
      socket.write(noise)
      sockets.push(socket)
    }
    for (let i = 0; i < 200; i++) {
      const noise = Buffer.alloc(next() % 300)
      for (let j = 0; j < noise.length; j++) noise[j] = next() & 0xff
      // Whatever decodes must stay on loopback: an IPv4 127/8 destination, never a domain to resolve.
      if (noise.length > 4) {
        noise[0] = 0
        noise[1] = 0
        noise[3] = 1
        noise[4] = 127
      }
      client.socket.send(noise, client.relay)
    }
    await exchange(client, echo.socket.local, 5)
    for (const socket of sockets) socket.destroy()
    expect(server.stats.dropped.malformed + server.stats.dropped.fragmented).toBeGreaterThan(0)
    expect(server.associations().length).toBeGreaterThanOrEqual(1)
  })
})

describe('SOCKS5 service', () => {
  it('runs one proxy per hop count on 127.0.0.1 with the configured or free ports and publishes them', async () => {
    const config = new TriblerConfig()
    const probe = await plainProxy()
    const taken = probe.address?.port as number
    await probe.stop()
    config.override('tunnel_community', 'socks5_listen_ports', [String(taken), '-1', '-1', '-1', '-1'])
    const published = new Map<string, number>()
    const service = new Socks5Service(
      { config, ports: { set: (name, port) => published.set(name, port) } },
      { upstream: () => () => udpTransport.bind({ host: '127.0.0.1', port: 0 }) },
    )
    await service.start()
    cleanups.push(() => service.stop())
    const proxies = service.proxies()
    expect(proxies.map((p) => p.hops)).toEqual([1, 2, 3])
    expect(proxies[0]?.port).toBe(taken)
    expect(new Set(proxies.map((p) => p.port)).size).toBe(3)
    for (const proxy of proxies) {
      expect(service.server(proxy.hops)?.address?.host).toBe('127.0.0.1')
      expect(published.get(`${SOCKS5_PORT_KEY}${proxy.hops - 1}`)).toBe(proxy.port)
    }
    const echo = await echoServer('127.0.0.1')
    const client = await associate(service.server(2) as Socks5Server)
    await exchange(client, echo.socket.local, 2)
    expect(service.proxies()[1]?.associations).toHaveLength(1)
  })

  it('starts no proxy while anonymous traffic cannot be carried', async () => {
    const service = new Socks5Service({ config: new TriblerConfig() }, { upstream: () => undefined })
    await service.start()
    expect(service.proxies()).toEqual([])
    await service.stop()
  })
})

describe('SOCKS5 proxy over tunnel circuits', () => {
  it('relays through 1-hop circuits; the echo server sees only the exit', async () => {
    // Client 127.0.0.81, exits .82 and .83; the echo server listens on .90.
    const host = (i: number): string => `127.0.0.${81 + i}`
    const echo = await echoServer('127.0.0.90')
    const net = await OverlayTestNetwork.create(
      3,
      (deps, i, bootstrap) =>
        new TunnelCommunity(deps, {
          walkIntervalMs: 100,
          bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
          tunnel: { exit: i > 0 },
          exitBindHost: host(i),
        }),
      { transport: udpTransport, hostOf: host },
    )
    cleanups.push(() => net.stopAll())
    await net.startAll()
    const community = net.node(0).community
    await vi.waitFor(() => expect(community.getCandidates(1).length).toBeGreaterThanOrEqual(1), {
      timeout: 30_000,
      interval: 100,
    })
    const server = await plainProxy({ upstream: () => circuitDatagramSocket(community, 1) })
    const client = await associate(server)
    await community.circuit(1, { timeoutMs: 30_000 })
    // A UDP tracker action-0 header, so the exit's data checker lets the datagrams through.
    const received = await exchange(client, echo.socket.local, 10, Buffer.alloc(4))
    for (const { from } of received) expect(from).toEqual(echo.socket.local)
    const exits = new Set([host(1), host(2)])
    expect(echo.seen.length).toBeGreaterThan(0)
    for (const seen of echo.seen) expect(exits.has(seen.host)).toBe(true)
    expect(echo.seen.some((a) => a.host === '127.0.0.1' || a.host === host(0))).toBe(false)
  })

  it('passes a domain destination to the exit, which resolves it', async () => {
    const host = (i: number): string => `127.0.0.${84 + i}`
    const echo = await echoServer('127.0.0.1')
    const net = await OverlayTestNetwork.create(
      2,
      (deps, i, bootstrap) =>
        new TunnelCommunity(deps, {
          walkIntervalMs: 100,
          bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
          tunnel: { exit: i > 0 },
          exitBindHost: host(i),
        }),
      { transport: udpTransport, hostOf: host },
    )
    cleanups.push(() => net.stopAll())
    await net.startAll()
    const community = net.node(0).community
    await vi.waitFor(() => expect(community.getCandidates(1).length).toBeGreaterThanOrEqual(1), {
      timeout: 30_000,
      interval: 100,
    })
    const server = await plainProxy({ upstream: () => circuitDatagramSocket(community, 1) })
    const client = await associate(server)
    await community.circuit(1, { timeoutMs: 30_000 })
    const received = await exchange(
      client,
      { host: 'localhost', port: echo.socket.local.port },
      3,
      Buffer.alloc(4),
    )
    // The reply names the address the exit resolved; the association sent to that port by name.
    for (const { from } of received) expect(from).toEqual(echo.socket.local)
    expect(new Set(echo.seen.map((a) => a.host))).toEqual(new Set([host(1)]))
  })
})

describe('SOCKS5 proxies in a core session', () => {
  it("serve each hop count on ports shown in GET /settings and relay through the session's circuits", async () => {
    const session = (host: string, bootstrap = ''): Session => {
      const s = new Session({
        stateDir: mkdtempSync(join(tmpdir(), 'tribler-socks5-')),
        publicNetwork: false,
        databasePath: ':memory:',
      })
      s.config.override('ipv8', 'address', host)
      s.config.override('ipv8', 'bootstrap_override', bootstrap)
      s.config.override('dispersy', 'port', 0)
      cleanups.push(() => s.stop())
      return s
    }
    const exitSession = session('127.0.0.96')
    exitSession.config.override('tunnel_community', 'exitnode_enabled', true)
    const exit = exitSession.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    await exitSession.start()
    const client = session('127.0.0.97', `127.0.0.96:${exit.address?.port ?? 0}`)
    const ipv8 = client.addService((deps) => new Ipv8Service(deps, { transport: udpTransport }))
    const socks = client.addService(
      (deps) => new Socks5Service(deps, { upstream: circuitUpstream(() => ipv8.tunnels) }),
    )
    await client.start()
    const tunnels = ipv8.tunnels
    if (tunnels === undefined) throw new Error('no tunnel community')

    const { app } = await buildApiServer(client)
    const { ports } = (await app.inject({ method: 'GET', url: '/settings' })).json()
    await app.close()
    expect(socks.proxies()).toHaveLength(3)
    for (const proxy of socks.proxies()) expect(ports[`${SOCKS5_PORT_KEY}${proxy.hops - 1}`]).toBe(proxy.port)

    await vi.waitFor(() => expect(tunnels.getCandidates(PEER_FLAG_EXIT_BT).length).toBeGreaterThan(0), {
      timeout: 20_000,
      interval: 100,
    })
    const echo = await echoServer('127.0.0.98')
    const proxyClient = await associate(socks.server(1) as Socks5Server)
    await tunnels.circuit(1, { timeoutMs: 20_000 })
    await exchange(proxyClient, echo.socket.local, 5, Buffer.alloc(4))
    expect(new Set(echo.seen.map((a) => a.host))).toEqual(new Set(['127.0.0.96']))
  })
})
