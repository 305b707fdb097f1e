// Outgoing message stream encryption of the engine against real libtorrent (python3-libtorrent) on loopback: the
// engine dials a seeder that forces encryption, over TCP and over uTP, and both sides report the connection as
// RC4-encrypted, or as MSE with a plaintext payload when the seeder allows only that; a seeder without MSE gets a second, plain dial and the download still completes.
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { EngineOptions } from '../../src/bittorrent/engine/index.js'
import { startEngine, type TestEngine } from '../support/engine.js'
import {
  createTorrent,
  LibtorrentPeer,
  type LibtorrentPeerInfo,
  type LibtorrentPeerOptions,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'
import { until } from '../support/until.js'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

interface Swarm {
  seeder: LibtorrentPeer
  node: TestEngine
  infoHash: string
  out: string
  data: Buffer
}

/**
 * A libtorrent seeder of a 3 MiB file (upload limited, so the connection lasts long enough to inspect) and an
 * engine that dials it for the torrent.
 */
async function swarm(
  hosts: { seeder: string; engine: string },
  seederOptions: LibtorrentPeerOptions,
  engineOptions: { tcp?: boolean; utp?: boolean; encryption?: EngineOptions['encryption'] },
): Promise<Swarm> {
  const tmp = await fsp.mkdtemp(path.join(tmpdir(), 'engine-enc-lt-'))
  cleanup.push(() => fsp.rm(tmp, { recursive: true, force: true }))
  const seedDir = path.join(tmp, 'seed')
  const files = await writeRandomFiles(seedDir, { 'data.bin': 3 * 1024 * 1024 })
  const made = await createTorrent({
    path: path.join(seedDir, 'data.bin'),
    out: path.join(tmp, 'd.torrent'),
    pieceLength: 65_536,
  })
  const seeder = await LibtorrentPeer.start({ host: hosts.seeder, uploadRate: 1024 * 1024, ...seederOptions })
  cleanup.push(() => seeder.stop())
  await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
  await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)

  const stateDir = path.join(tmp, 'state')
  await fsp.mkdir(stateDir, { recursive: true })
  const node: TestEngine = await startEngine({ stateDir, host: hosts.engine, ...engineOptions })
  cleanup.push(() => node.stop())
  const out = path.join(tmp, 'out')
  const { infoHash } = await node.engine.add({
    source: { kind: 'torrent', torrent: await fsp.readFile(made.torrentPath) },
    destination: out,
  })
  node.engine.addPeers(infoHash, [{ host: seeder.host, port: seeder.port }])
  return { seeder, node, infoHash, out, data: files.get('data.bin')! }
}

/**
 * Downloads the whole file from the seeder; resolves with what both sides saw of the connection while it was open.
 */
async function downloadFrom(
  hosts: { seeder: string; engine: string },
  seederOptions: LibtorrentPeerOptions,
  engineOptions: { tcp?: boolean; utp?: boolean; encryption?: EngineOptions['encryption'] },
): Promise<{ seen: LibtorrentPeerInfo[]; ours: Array<{ encryption: string; direction: string }> }> {
  const { seeder, node, infoHash, out, data } = await swarm(hosts, seederOptions, engineOptions)
  const ours: Array<{ encryption: string; direction: string }> = []
  await until(
    () => {
      const handle = node.engine.get(infoHash)
      for (const p of handle?.peers() ?? []) ours.push({ encryption: p.encryption, direction: p.direction })
      return ours.length > 0
    },
    60_000,
    'a connection to the seeder',
  )
  const status = await seeder.waitFor((s) => (s.torrents[0]?.peers.length ?? 0) > 0, { timeoutMs: 60_000 })
  const seen = status.torrents[0]!.peers
  await until(() => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING', 120_000, 'download')
  const got = await fsp.readFile(path.join(out, 'data.bin'))
  expect(got.equals(data)).toBe(true)
  return { seen, ours }
}

describe.skipIf(!libtorrentAvailable())('engine outgoing encryption against libtorrent', () => {
  for (const transport of ['tcp', 'utp'] as const) {
    it(`downloads from a seeder that forces RC4 over ${transport.toUpperCase()}`, async () => {
      const { seen, ours } = await downloadFrom(
        transport === 'tcp'
          ? { seeder: '127.0.0.161', engine: '127.0.0.162' }
          : { seeder: '127.0.0.163', engine: '127.0.0.164' },
        { encryption: 'forced', encryptionLevel: 'rc4', tcp: transport === 'tcp', utp: transport === 'utp' },
        { tcp: transport === 'tcp', utp: transport === 'utp' },
      )
      expect(seen.length).toBeGreaterThan(0)
      for (const p of seen) {
        expect(p.outgoing).toBe(false)
        expect(p.utp).toBe(transport === 'utp')
        expect(p.encryption).toBe('rc4')
      }
      expect(ours.some((p) => p.direction === 'L' && p.encryption === 'rc4')).toBe(true)
    })
  }

  it('lets a seeder that forces encryption choose a plaintext payload after the MSE handshake', async () => {
    const { seen, ours } = await downloadFrom(
      { seeder: '127.0.0.165', engine: '127.0.0.166' },
      { encryption: 'forced', encryptionLevel: 'plaintext' },
      {},
    )
    expect(seen.every((p) => p.encryption === 'plaintext')).toBe(true)
    // Only the handshake was obfuscated: our peer list must not call the connection RC4-encrypted.
    expect(ours.length).toBeGreaterThan(0)
    expect(ours.every((p) => p.direction === 'L' && p.encryption === 'plaintext')).toBe(true)
  })

  it('dials a seeder without MSE once more in plain BitTorrent', async () => {
    const { seen, ours } = await downloadFrom(
      { seeder: '127.0.0.167', engine: '127.0.0.168' },
      { encryption: 'disabled', utp: false },
      { utp: false },
    )
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.every((p) => p.encryption === 'none' && !p.outgoing)).toBe(true)
    expect(ours.some((p) => p.direction === 'L' && p.encryption === 'none')).toBe(true)
  })

  it('never dials in plain BitTorrent when the engine forces encryption', async () => {
    const { seeder, node, infoHash } = await swarm(
      { seeder: '127.0.0.169', engine: '127.0.0.170' },
      { encryption: 'disabled', utp: false },
      { utp: false, encryption: 'forced' },
    )
    // libtorrent drops each MSE handshake of ours; a second dial comes only after the reconnect delay, never at
    // once in plain BitTorrent, and no connection ever carries the torrent.
    await until(() => node.engine.directTraffic().tcpDials >= 2, 60_000, 'a second dial')
    const status = await seeder.status()
    expect(status.torrents[0]!.peers).toEqual([])
    const handle = node.engine.get(infoHash)!
    expect(handle.peers()).toEqual([])
    expect(handle.status().progress).toBe(0)
  })
})
