import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { configureLogging } from '../../src/common/index.js'
import { HiddenTunnelCommunity } from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { createTorrent } from '../../src/metainfo/index.js'
import { udpTransport } from '../../src/net/index.js'
import { startEngine, type TestEngine } from '../support/engine.js'
import { until } from '../support/until.js'

// Tribler's safe seeding for a download added without hops: once it seeds, it is re-added at the default hop
// count, so it never seeds in the open; without tunnels it stops instead.

configureLogging({ level: 'silent' })

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined)
})

async function seedFolder(): Promise<{ tmp: string; seedDir: string; torrent: Uint8Array; data: Buffer }> {
  const tmp = await fsp.mkdtemp(path.join(tmpdir(), 'safe-seeding-'))
  cleanup.push(() => fsp.rm(tmp, { recursive: true, force: true }))
  const seedDir = path.join(tmp, 'seed')
  await fsp.mkdir(seedDir, { recursive: true })
  const data = randomBytes(600_000)
  await fsp.writeFile(path.join(seedDir, 'movie.bin'), data)
  const { torrent } = await createTorrent(path.join(seedDir, 'movie.bin'), { pieceLength: 65_536 })
  return { tmp, seedDir, torrent, data }
}

async function engineIn(
  tmp: string,
  tunnels: HiddenTunnelCommunity | undefined,
  settings: Record<string, Record<string, unknown>> = {},
): Promise<TestEngine> {
  const stateDir = path.join(tmp, 'state')
  await fsp.mkdir(stateDir, { recursive: true })
  const node = await startEngine({ stateDir, host: '127.0.0.1', tunnels: () => tunnels, settings })
  cleanup.push(() => node.stop())
  return node
}

describe('safe seeding of a download added without hops', () => {
  it('moves the download to the default hop count once it seeds, keeping its data and choices', async () => {
    const { tmp, seedDir, torrent, data } = await seedFolder()
    const net = await OverlayTestNetwork.create(
      1,
      (deps) =>
        new HiddenTunnelCommunity(deps, {
          bootstrap: { publicNetwork: false, addresses: [] },
          tunnel: { minCircuits: 1, maxCircuits: 1 },
        }),
      { transport: udpTransport, hostOf: () => '127.0.0.1' },
    )
    cleanup.push(() => net.stopAll())
    await net.startAll()
    const node = await engineIn(tmp, net.node(0).community, { download_defaults: { number_hops: 2 } })
    const { infoHash } = await node.engine.add({
      source: { kind: 'torrent', torrent },
      destination: seedDir,
      hops: 0,
      safeSeeding: true,
      rateLimits: { downloadBytesPerSec: 0, uploadBytesPerSec: 40_000 },
    })
    await until(
      () =>
        node.engine.get(infoHash)?.status().hops === 2 && node.engine.get(infoHash)?.status().progress === 1,
      30_000,
      'the download to take 2 hops and check its data',
    )
    const status = node.engine.get(infoHash)!.status()
    expect(status).toMatchObject({
      safeSeeding: true,
      destination: seedDir,
      // a lone tunnel node builds no circuit: the download waits for one, its data checked meanwhile
      state: 'DLSTATUS_CIRCUITS',
      progress: 1,
      rateLimits: { downloadBytesPerSec: 0, uploadBytesPerSec: 40_000 },
    })
    expect((await fsp.readFile(path.join(seedDir, 'movie.bin'))).equals(data)).toBe(true)

    // it stays anonymous after a restart
    await node.stop()
    const again = await engineIn(tmp, net.node(0).community)
    expect(again.engine.get(infoHash)?.status().hops).toBe(2)
  }, 90_000)

  it('stops the finished download instead of seeding it in the open when there are no tunnels', async () => {
    const { tmp, seedDir, torrent } = await seedFolder()
    const node = await engineIn(tmp, undefined)
    const { infoHash } = await node.engine.add({
      source: { kind: 'torrent', torrent },
      destination: seedDir,
      safeSeeding: true,
    })
    const handle = node.engine.get(infoHash)!
    await until(() => handle.status().state === 'DLSTATUS_STOPPED', 30_000, 'the download to stop')
    expect(handle.status()).toMatchObject({ hops: 0, progress: 1 })

    // a download without safe seeding seeds directly, as asked
    const other = await seedFolder()
    const plain = await node.engine.add({
      source: { kind: 'torrent', torrent: other.torrent },
      destination: other.seedDir,
    })
    const seeding = node.engine.get(plain.infoHash)!
    await until(() => seeding.status().state === 'DLSTATUS_SEEDING', 30_000, 'the plain download to seed')
    expect(seeding.status().hops).toBe(0)
  }, 90_000)
})
