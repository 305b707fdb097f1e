// How the engine dials a real libtorrent seeder (python3-libtorrent) on loopback with uTP and TCP both on: over uTP
// when libtorrent accepts uTP, as libtorrent itself dials, and over TCP when libtorrent has uTP off (the uTP dial
// fails or goes unanswered and TCP follows at once). Both sides' peer lists must agree on the transport.
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startEngine } from '../support/engine.js'
import {
  createTorrent,
  LibtorrentPeer,
  type LibtorrentPeerInfo,
  libtorrentAvailable,
  writeRandomFiles,
} from '../support/libtorrent.js'
import { until } from '../support/until.js'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

describe.skipIf(!libtorrentAvailable())('engine dialling libtorrent with uTP and TCP both on', () => {
  for (const c of [
    { seederUtp: true, expected: 'utp', hosts: ['127.0.0.241', '127.0.0.242'] },
    { seederUtp: false, expected: 'tcp', hosts: ['127.0.0.243', '127.0.0.244'] },
  ] as const) {
    it(`connects over ${c.expected.toUpperCase()} when libtorrent has uTP ${c.seederUtp ? 'on' : 'off'}`, async () => {
      const [seederHost, engineHost] = c.hosts
      const tmp = await fsp.mkdtemp(path.join(tmpdir(), 'engine-dial-lt-'))
      cleanup.push(() => fsp.rm(tmp, { recursive: true, force: true }))
      const seedDir = path.join(tmp, 'seed')
      const files = await writeRandomFiles(seedDir, { 'data.bin': 2 * 1024 * 1024 })
      const made = await createTorrent({
        path: path.join(seedDir, 'data.bin'),
        out: path.join(tmp, 'd.torrent'),
        pieceLength: 65_536,
      })
      // Upload limited, so the connection stays open long enough to be seen from both sides.
      const seeder = await LibtorrentPeer.start({
        host: seederHost,
        tcp: true,
        utp: c.seederUtp,
        uploadRate: 512 * 1024,
      })
      cleanup.push(() => seeder.stop())
      await seeder.addTorrent({ torrentPath: made.torrentPath, savePath: seedDir })
      await seeder.waitFor((s) => s.torrents[0]?.isSeeding === true)

      const stateDir = path.join(tmp, 'state')
      await fsp.mkdir(stateDir, { recursive: true })
      const node = await startEngine({ stateDir, host: engineHost, tcp: true, utp: true })
      cleanup.push(() => node.stop())
      const out = path.join(tmp, 'out')
      const { infoHash } = await node.engine.add({
        source: { kind: 'torrent', torrent: await fsp.readFile(made.torrentPath) },
        destination: out,
      })
      node.engine.addPeers(infoHash, [{ host: seeder.host, port: seeder.port }])
      const ours = new Set<number>()
      await until(
        () => {
          for (const p of node.engine.get(infoHash)?.peers() ?? []) ours.add(p.connectionType)
          return ours.size > 0
        },
        60_000,
        'a connection to the seeder',
      )
      const status = await seeder.waitFor((s) => (s.torrents[0]?.peers.length ?? 0) > 0, {
        timeoutMs: 60_000,
      })
      const theirs: LibtorrentPeerInfo[] = status.torrents[0]!.peers
      await until(() => node.engine.get(infoHash)?.status().state === 'DLSTATUS_SEEDING', 120_000, 'download')
      expect((await fsp.readFile(path.join(out, 'data.bin'))).equals(files.get('data.bin')!)).toBe(true)

      expect([...ours]).toEqual([c.expected === 'utp' ? 1 : 0])
      expect(theirs.every((p) => p.utp === (c.expected === 'utp') && !p.outgoing)).toBe(true)
      const connections = node.engine.download(infoHash)!.connections
      expect(connections[c.expected]).toBeGreaterThan(0)
      expect(connections[c.expected === 'utp' ? 'tcp' : 'utp']).toBe(0)
      // uTP worked: no TCP dial was needed. uTP off: the TCP dial followed the failed uTP one.
      if (c.expected === 'utp') expect(node.engine.directTraffic().tcpDials).toBe(0)
      else expect(node.engine.directTraffic().tcpDials).toBeGreaterThan(0)
    })
  }
})
