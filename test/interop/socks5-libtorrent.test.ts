import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { configureLogging } from '../../src/common/index.js'
import { circuitDatagramSocket, TunnelCommunity } from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { type DatagramSocket, type SocketAddress, udpTransport } from '../../src/net/index.js'
import { Socks5Server, type UpstreamFactory } from '../../src/socks5/index.js'
import {
  createTorrent,
  LibtorrentPeer,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'

configureLogging({ level: 'silent' })

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

/** A libtorrent seeder of 2 MiB on `seederHost`, uTP only, and the files it shares. */
async function seeder(seederHost: string) {
  const tmp = await fsp.mkdtemp(path.join(tmpdir(), 'socks5-lt-'))
  cleanup.push(() => fsp.rm(tmp, { recursive: true, force: true }))
  const seedDir = path.join(tmp, 'seed')
  const contents = await writeRandomFiles(path.join(seedDir, 'share'), {
    'a.bin': 1_500_000,
    'b.bin': 597_152,
  })
  const made = await createTorrent({ path: path.join(seedDir, 'share'), out: path.join(tmp, 's.torrent') })
  const seed = await LibtorrentPeer.start({ host: seederHost, tcp: false })
  cleanup.push(() => seed.stop())
  await seed.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
  await seed.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs: 60_000 })
  return { tmp, made, contents, seed }
}

/** The peer addresses in the seeder's peer alerts (connections end once both sides are seeds). */
async function seenBySeeder(seed: LibtorrentPeer): Promise<SocketAddress[]> {
  await seed.waitForAlert((a) => /peer \[ /.test(a.message))
  return seed.alerts.flatMap((a) => {
    const match = /peer \[ ([0-9.]+):(\d+)/.exec(a.message)
    return match === null ? [] : [{ host: match[1] as string, port: Number(match[2]) }]
  })
}

async function proxy(upstream: UpstreamFactory, credentials?: { username: string; password: string }) {
  const server = new Socks5Server({ port: 0, upstream, ...(credentials !== undefined && { credentials }) })
  await server.start()
  cleanup.push(() => server.stop())
  return server
}

/** A libtorrent leecher whose uTP goes through `server`; resolves once its download completed and verified. */
async function leechThrough(
  server: Socks5Server,
  leecherHost: string,
  setup: Awaited<ReturnType<typeof seeder>>,
  credentials?: { username: string; password: string },
  timeoutMs = 45_000,
) {
  const address = server.address as SocketAddress
  const leech = await LibtorrentPeer.start({
    host: leecherHost,
    tcp: false,
    socks5: { host: address.host, port: address.port, ...credentials },
  })
  cleanup.push(() => leech.stop())
  const saveDir = path.join(setup.tmp, `leech-${leecherHost}`)
  await leech.addTorrent({ torrentPath: setup.made.torrentPath, savePath: saveDir })
  const seederPort = (await setup.seed.status()).port
  await leech.addPeer({ ip: setup.seed.host, port: seederPort })
  try {
    await leech.waitFor((s) => s.torrents[0]?.isSeeding === true, { timeoutMs, intervalMs: 250 })
  } catch (err) {
    const proxyState = JSON.stringify({ stats: server.stats, associations: server.associations() })
    throw new Error(`${String(err)}; proxy ${proxyState}; alerts ${JSON.stringify(leech.alerts.slice(-10))}`)
  }
  for (const [relative, data] of setup.contents) {
    const got = await fsp.readFile(path.join(saveDir, 'share', relative))
    expect(got.equals(data)).toBe(true)
  }
  return leech
}

describe.skipIf(!libtorrentAvailable())('libtorrent through our SOCKS5 proxy', () => {
  it('downloads over uTP through UDP ASSOCIATE; the seeder sees only the proxy', async () => {
    const setup = await seeder('127.0.0.41')
    let upstream: DatagramSocket | undefined
    const server = await proxy(async () => {
      upstream = await udpTransport.bind({ host: '127.0.0.42', port: 0 })
      return upstream
    })
    await leechThrough(server, '127.0.0.43', setup)
    const seen = await seenBySeeder(setup.seed)
    expect(seen.length).toBeGreaterThan(0)
    for (const peer of seen) expect(peer).toEqual({ host: '127.0.0.42', port: upstream?.local.port })
    expect(server.associations()).toHaveLength(1)
    expect(server.associations()[0]?.client?.host).toBe('127.0.0.1')
    expect(server.stats.bytesDown).toBeGreaterThan(2_000_000)
    expect(server.stats.dropped.foreignSource + server.stats.dropped.malformed).toBe(0)
  })

  it('authenticates libtorrent with username and password (RFC 1929)', async () => {
    const setup = await seeder('127.0.0.44')
    const credentials = { username: 'tribler', password: 'anon' }
    const server = await proxy(() => udpTransport.bind({ host: '127.0.0.45', port: 0 }), credentials)
    await leechThrough(server, '127.0.0.46', setup, credentials)
    expect(server.stats.refused.auth).toBe(0)
    expect(server.stats.bytesDown).toBeGreaterThan(2_000_000)
  })

  it('downloads through 1-hop tunnel circuits; the seeder sees only an exit', async () => {
    const setup = await seeder('127.0.0.51')
    // Tunnel client 127.0.0.52, exits .53 and .54.
    const host = (i: number): string => `127.0.0.${52 + i}`
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
    cleanup.push(() => net.stopAll())
    await net.startAll()
    const community = net.node(0).community
    await vi.waitFor(() => expect(community.getCandidates(1).length).toBeGreaterThanOrEqual(1), {
      timeout: 30_000,
      interval: 100,
    })
    const server = await proxy(() => circuitDatagramSocket(community, 1))
    await community.circuit(1, { timeoutMs: 30_000 })
    await leechThrough(server, '127.0.0.55', setup, undefined, 180_000)
    const seen = await seenBySeeder(setup.seed)
    expect(seen.length).toBeGreaterThan(0)
    for (const peer of seen) expect([host(1), host(2)]).toContain(peer.host)
    expect(server.stats.bytesDown).toBeGreaterThan(2_000_000)
  })
})
