import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import * as fsp from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import type { DownloadState } from '../engine/types.js'
import { PEX_FLAGS, type PeerWire } from '../peer-wire/index.js'
import { decideUnchokes } from './choker.js'
import { Download, MAX_PEER_CANDIDATES } from './download.js'
import { MemorySwarm, makeTorrent, sameBytes, type TestTorrent, until } from './swarm.test-support.js'

const SEED = { host: '10.0.0.1', port: 6881 }
const SEED2 = { host: '10.0.0.2', port: 6881 }
const LEECH = { host: '10.0.0.3', port: 6881 }
const LEECH2 = { host: '10.0.0.4', port: 6881 }
const EVIL = { host: '10.0.0.66', port: 6881 }

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function fixture(sizes: Record<string, number>, pieceLength = 32_768): Promise<TestTorrent> {
  const t = await makeTorrent(sizes, { pieceLength })
  cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
  return t
}

function swarm(): MemorySwarm {
  const s = new MemorySwarm()
  cleanup.push(() => s.stopAll())
  return s
}

function states(dl: Download): DownloadState[] {
  const seen: DownloadState[] = [dl.state]
  dl.events.on('state', (s) => seen.push(s))
  return seen
}

describe('Download over in-memory connections', () => {
  it('checks existing data, seeds it, and a leecher downloads every byte of a multi-file torrent', async () => {
    const t = await fixture({ 'a.bin': 700_000, 'sub/b.bin': 123_457, 'c.bin': 1 })
    const s = swarm()
    const seed = s.add(SEED, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir })
    const seedStates = states(seed)
    await seed.start()
    expect(seed.state).toBe('DLSTATUS_SEEDING')
    expect(seedStates).toContain('DLSTATUS_HASHCHECKING')
    expect(seed.rechecked).toBe(true)

    const dir = path.join(t.root, 'leech')
    const leech = s.add(LEECH, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: dir })
    const leechStates = states(leech)
    let finished = 0
    leech.events.on('finished', () => finished++)
    await leech.start()
    expect(leech.state).toBe('DLSTATUS_DOWNLOADING')
    expect(leech.rechecked).toBe(false)
    leech.addPeers([SEED], 'manual')
    await until(() => leech.state === 'DLSTATUS_SEEDING', 20_000, 'leech to finish')
    expect(finished).toBe(1)
    expect(await sameBytes(t, dir)).toBe(true)
    expect(leechStates).toEqual(['DLSTATUS_STOPPED', 'DLSTATUS_DOWNLOADING', 'DLSTATUS_SEEDING'])
    const status = leech.status()
    expect(status.progress).toBe(1)
    expect(status.totalDown).toBeGreaterThanOrEqual(t.torrent.totalLength)
    expect(seed.status().totalUp).toBeGreaterThanOrEqual(t.torrent.totalLength)
    expect(leech.files().every((f) => f.progress === 1 && f.included)).toBe(true)
    expect(leech.pieces()).toEqual(seed.pieces())
  })

  it('keeps at least 64 requests in flight to a peer that answers slowly', async () => {
    const t = await fixture({ 'a.bin': 4 * 1024 * 1024 }, 262_144)
    const s = swarm()
    let maxQueued = 0
    const held: Array<() => void> = []
    s.listen(SEED, (wire: PeerWire) => {
      wire.once('handshake', () => {
        wire.handshake(t.torrent.infoHash)
        wire.setNumPieces(t.torrent.pieceCount)
        wire.haveAll()
        wire.unchoke()
      })
      wire.on('request', () => {
        maxQueued = Math.max(maxQueued, wire.peerRequests.length)
        held.push(() => {})
      })
    })
    const leech = s.add(LEECH, {
      infoHash: t.torrent.infoHash,
      torrent: t.torrent,
      downloadDir: path.join(t.root, 'leech'),
    })
    await leech.start()
    leech.addPeers([SEED], 'manual')
    await until(() => maxQueued >= 64, 10_000, '64 queued requests')
    expect(maxQueued).toBeGreaterThanOrEqual(64)
  })

  it('downloads only the selected files, leaving skipped files uncreated', async () => {
    const t = await fixture({ 'a.bin': 300_000, 'b.bin': 300_000, 'c.bin': 300_000 })
    const s = swarm()
    const seed = s.add(SEED, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir })
    await seed.start()
    const dir = path.join(t.root, 'leech')
    const indexOf = (name: string): number => t.torrent.files.find((f) => f.path.endsWith(name))!.index
    const leech = s.add(LEECH, {
      infoHash: t.torrent.infoHash,
      torrent: t.torrent,
      downloadDir: dir,
      selectedFiles: [indexOf('a.bin'), indexOf('c.bin')],
    })
    await leech.start()
    leech.addPeers([SEED], 'manual')
    await until(() => leech.state === 'DLSTATUS_SEEDING', 20_000, 'selected files')
    expect(await sameBytes(t, dir, ['a.bin', 'c.bin'])).toBe(true)
    expect(existsSync(path.join(dir, t.torrent.name, 'b.bin'))).toBe(false)
    const files = leech.files()
    expect(files.find((f) => f.name.endsWith('b.bin'))?.included).toBe(false)
    expect(files.find((f) => f.name.endsWith('b.bin'))!.progress).toBeLessThan(1)
    expect(leech.status().progress).toBe(1)

    // Selecting the skipped file later resumes downloading it.
    await leech.setSelectedFiles([])
    await until(() => leech.state === 'DLSTATUS_SEEDING' && leech.isComplete, 20_000, 'all files')
    expect(await sameBytes(t, dir)).toBe(true)
  })

  it('gets the metadata of a magnet from a peer (BEP 9), then downloads', async () => {
    const t = await fixture({ 'a.bin': 500_000, 'b.bin': 70_000 })
    const s = swarm()
    const seed = s.add(SEED, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir })
    await seed.start()
    const dir = path.join(t.root, 'leech')
    const leech = s.add(LEECH, { infoHash: t.torrent.infoHash, downloadDir: dir })
    const seen = states(leech)
    let metadataName = ''
    leech.events.on('metadata', (info) => {
      metadataName = info.name
    })
    await leech.start()
    expect(leech.state).toBe('DLSTATUS_METADATA')
    expect(leech.status().name).toBe('Unknown name')
    expect(leech.status().hasMetadata).toBe(false)
    expect(leech.files()).toEqual([])
    leech.addPeers([SEED], 'manual')
    await until(() => leech.state === 'DLSTATUS_SEEDING', 20_000, 'magnet download')
    expect(metadataName).toBe(t.torrent.name)
    expect(leech.status().name).toBe(t.torrent.displayName)
    expect(seen).toEqual([
      'DLSTATUS_STOPPED',
      'DLSTATUS_METADATA',
      'DLSTATUS_DOWNLOADING',
      'DLSTATUS_SEEDING',
    ])
    expect(await sameBytes(t, dir)).toBe(true)
  })

  it('bans a peer whose pieces fail the hash check and completes from a good peer', async () => {
    const t = await fixture({ 'a.bin': 1_000_000 })
    const s = swarm()
    let evilBlocks = 0
    s.listen(EVIL, (wire: PeerWire) => {
      wire.once('handshake', () => {
        wire.handshake(t.torrent.infoHash)
        wire.setNumPieces(t.torrent.pieceCount)
        wire.haveAll()
        wire.unchoke()
      })
      wire.on('request', (req) => {
        evilBlocks++
        wire.piece(req.index, req.begin, randomBytes(req.length))
      })
    })
    const dir = path.join(t.root, 'leech')
    const leech = s.add(LEECH, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: dir })
    const banned: string[] = []
    leech.events.on('banned', ({ host }) => banned.push(host))
    await leech.start()
    leech.addPeers([EVIL], 'manual')
    await until(() => banned.length > 0, 15_000, 'the ban')
    expect(banned).toEqual([EVIL.host])
    expect(leech.totals.hashFailures).toBeGreaterThan(0)
    expect(evilBlocks).toBeGreaterThan(0)
    // A banned host is never dialled again, whatever source names it.
    leech.addPeers([EVIL], 'tracker')

    const seed = s.add(SEED, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir })
    await seed.start()
    const blocksBefore = evilBlocks
    leech.addPeers([SEED], 'manual')
    await until(() => leech.state === 'DLSTATUS_SEEDING', 20_000, 'completion from the good peer')
    expect(await sameBytes(t, dir)).toBe(true)
    expect(evilBlocks).toBe(blocksBefore)
    expect(leech.peers().some((p) => p.ip === EVIL.host)).toBe(false)
  })

  it('reports a peer as snubbed once a request times out, until a block comes from it', async () => {
    const t = await fixture({ 'a.bin': 8 * 1024 * 1024 })
    const data = t.files.get('a.bin')!
    const clock = new ManualClock()
    const s = swarm()
    let requests = 0
    let answering = false
    let answer: ((req: { index: number; begin: number; length: number }) => void) | undefined
    const unanswered: Array<{ index: number; begin: number; length: number }> = []
    s.listen(EVIL, (wire: PeerWire) => {
      answer = (req) => {
        const at = req.index * t.torrent.pieceLength + req.begin
        wire.piece(req.index, req.begin, data.subarray(at, at + req.length))
      }
      wire.once('handshake', () => {
        wire.handshake(t.torrent.infoHash)
        wire.setNumPieces(t.torrent.pieceCount)
        wire.haveAll()
        wire.unchoke()
      })
      // Silent until told to answer; then real data, so no piece fails its hash check.
      wire.on('request', (req) => {
        requests++
        if (answering) answer?.(req)
        else unanswered.push(req)
      })
    })
    const leech = s.add(
      LEECH,
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: path.join(t.root, 'leech') },
      { clock },
    )
    await leech.start()
    leech.addPeers([EVIL], 'manual')
    const evil = () => leech.peers().find((p) => p.ip === EVIL.host)
    await until(() => requests > 0, 10_000, 'requests to the silent peer')
    expect(evil()?.snubbed).toBe(false)
    clock.advance(61_000)
    await until(() => evil()?.snubbed === true, 10_000, 'the snub')
    // Every request is answered now: those sent again after the timeout are still pending (blocks of the
    // timed-out ones are dropped as unexpected).
    answering = true
    for (const req of unanswered.splice(0)) answer?.(req)
    await until(() => evil()?.snubbed === false, 10_000, 'the block that ends the snub')
  })

  it('moves the requests of a snubbed peer to the others and asks it for one block at a time', async () => {
    const t = await fixture({ 'a.bin': 2 * 1024 * 1024 })
    const clock = new ManualClock()
    const s = swarm()
    let silentRequests = 0
    // Requests the silent peer holds, and the most at once since the snub.
    const outstanding = new Set<string>()
    let maxOutstanding = 0
    // Sampled whenever the silent peer gets a request.
    let leech: ReturnType<typeof s.add> | undefined
    let snubSeen = false
    const sampleSnub = (): void => {
      if (leech?.peers().find((p) => p.ip === EVIL.host)?.snubbed === true) snubSeen = true
    }
    s.listen(EVIL, (wire: PeerWire) => {
      wire.once('handshake', () => {
        wire.handshake(t.torrent.infoHash)
        wire.setNumPieces(t.torrent.pieceCount)
        wire.haveAll()
        wire.unchoke()
      })
      wire.on('request', (r) => {
        sampleSnub()
        silentRequests++
        outstanding.add(`${r.index}:${r.begin}`)
        maxOutstanding = Math.max(maxOutstanding, outstanding.size)
      })
      wire.on('cancel', (r) => outstanding.delete(`${r.index}:${r.begin}`))
    })
    const seed = s.add(SEED, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir })
    await seed.start()
    const dir = path.join(t.root, 'leech')
    leech = s.add(LEECH, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: dir }, { clock })
    await leech.start()
    // The silent peer takes requests first. Their timeout snubs it, while it is the only peer, so the snub is seen
    // before any other peer could finish the download (and drop the silent peer, a seed, with it): from then on it
    // gets one request at a time.
    leech.addPeers([EVIL], 'manual')
    await until(() => silentRequests > 0, 10_000, 'requests to the silent peer')
    const before = silentRequests
    clock.advance(61_000)
    outstanding.clear()
    maxOutstanding = 0
    await until(() => snubSeen && silentRequests > before, 10_000, 'a request to the snubbed peer')
    // The seed comes later and gets the blocks the silent peer held; the silent peer never holds more than one.
    leech.addPeers([SEED], 'manual')
    await until(() => leech?.state === 'DLSTATUS_SEEDING', 20_000, 'the download through the seed')
    expect(await sameBytes(t, dir)).toBe(true)
    expect(maxOutstanding).toBe(1)
  })

  it('stops seeding when the ratio of the seeding policy is reached, and at once with "never"', async () => {
    const t = await fixture({ 'a.bin': 400_000 })
    const s = swarm()
    const seed = s.add(
      SEED,
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir },
      { seedingPolicy: () => ({ mode: 'ratio', ratio: 1, timeMinutes: 60 }) },
    )
    let seedDone = 0
    seed.events.on('seedingDone', () => seedDone++)
    await seed.start()
    const leech = s.add(
      LEECH,
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: path.join(t.root, 'leech') },
      { seedingPolicy: () => ({ mode: 'never', ratio: 0, timeMinutes: 0 }) },
    )
    let leechDone = 0
    leech.events.on('seedingDone', () => leechDone++)
    await leech.start()
    leech.addPeers([SEED], 'manual')
    await until(() => leechDone === 1 && seedDone === 1, 20_000, 'both to stop')
    expect(leech.state).toBe('DLSTATUS_STOPPED')
    expect(seed.state).toBe('DLSTATUS_STOPPED')
    expect(seed.totals.up).toBeGreaterThanOrEqual(t.torrent.totalLength)
  })

  it('stops seeding after the seeding time of the policy, on the injected clock', async () => {
    const t = await fixture({ 'a.bin': 200_000 })
    const clock = new ManualClock()
    const s = swarm()
    const seed = s.add(
      SEED,
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir },
      { clock },
    )
    const policy = { mode: 'time' as const, ratio: 0, timeMinutes: 30 }
    const leech = s.add(
      LEECH,
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: path.join(t.root, 'leech') },
      { clock, seedingPolicy: () => policy },
    )
    let done = 0
    leech.events.on('seedingDone', () => done++)
    await seed.start()
    await leech.start()
    leech.addPeers([SEED], 'manual')
    await until(() => leech.state === 'DLSTATUS_SEEDING', 20_000, 'download')
    clock.advance(29 * 60_000)
    expect(leech.state).toBe('DLSTATUS_SEEDING')
    clock.advance(2 * 60_000)
    await until(() => done === 1, 5_000, 'the stop')
    expect(leech.state).toBe('DLSTATUS_STOPPED')
    expect(seed.state).toBe('DLSTATUS_SEEDING')
  })

  it('dials a leecher while seeding, and does not redial a peer that turned out to be a seed', async () => {
    const t = await fixture({ 'a.bin': 300_000 })
    const clock = new ManualClock()
    const s = swarm()
    let seedDials = 0
    let seedDropped = 0
    s.listen(SEED2, (wire: PeerWire) => {
      seedDials++
      wire.once('close', () => seedDropped++)
      wire.once('handshake', () => {
        wire.handshake(t.torrent.infoHash)
        wire.setNumPieces(t.torrent.pieceCount)
        wire.haveAll()
      })
    })
    const seed = s.add(
      SEED,
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir },
      { clock },
    )
    await seed.start()
    expect(seed.state).toBe('DLSTATUS_SEEDING')
    seed.addPeers([SEED2], 'tracker')
    await until(() => seedDropped === 1, 10_000, 'the other seed dialled and dropped')
    expect(seed.peers()).toEqual([])
    // Well past any reconnect delay: the seed is remembered as one and left alone.
    for (let i = 0; i < 10; i++) clock.advance(60_000)

    // A leecher that never dials anyone gets every byte because the seed dials it.
    const dir = path.join(t.root, 'leech')
    const leech = s.add(LEECH, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: dir })
    await leech.start()
    seed.addPeers([LEECH], 'manual')
    await until(() => leech.state === 'DLSTATUS_SEEDING', 20_000, 'the leecher to finish')
    expect(await sameBytes(t, dir)).toBe(true)
    expect(seed.peers().find((p) => p.ip === LEECH.host)?.direction ?? 'L').toBe('L')
    for (let i = 0; i < 10; i++) clock.advance(60_000)
    expect(seedDials).toBe(1)
  })

  it('leaves a peer untried while mayDial refuses it, and dials it once allowed', async () => {
    const t = await fixture({ 'a.bin': 100_000 })
    const clock = new ManualClock()
    const s = swarm()
    let dials = 0
    s.listen(SEED2, () => {
      dials++
    })
    let allowed = false
    const leech = s.add(
      LEECH,
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: path.join(t.root, 'leech') },
      { clock, mayDial: () => allowed },
    )
    await leech.start()
    leech.addPeers([SEED2], 'tracker')
    for (let i = 0; i < 5; i++) clock.advance(60_000)
    expect(dials).toBe(0)
    allowed = true
    leech.addPeers([SEED2], 'tracker')
    await until(() => dials === 1, 5_000, 'the dial')
  })

  it('forgets a hidden peer once its end-to-end session is gone instead of dialling its stand-in address', async () => {
    const t = await fixture({ 'a.bin': 300_000 })
    const clock = new ManualClock()
    const s = swarm()
    let dials = 0
    s.listen(SEED2, (wire: PeerWire) => {
      dials++
      wire.once('handshake', () => {
        wire.handshake(t.torrent.infoHash)
        wire.setNumPieces(t.torrent.pieceCount)
      })
    })
    // SEED2 stands in for an end-to-end circuit while `session` is true
    let session = true
    const leech = s.add(
      LEECH,
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: path.join(t.root, 'leech') },
      { clock, isHiddenPeer: (addr) => session && addr.host === SEED2.host },
    )
    await leech.start()
    leech.addPeers([SEED2], 'hidden')
    await until(() => leech.peers().length === 1, 10_000, 'the hidden peer to connect')
    expect(dials).toBe(1)
    // The circuit goes, and the connection with it: the address now names some unrelated host.
    session = false
    expect(leech.disconnectPeers(() => false)).toBe(1)
    await until(() => leech.peers().length === 0, 5_000, 'the hidden peer to go')
    for (let i = 0; i < 10; i++) clock.advance(60_000)
    expect(dials).toBe(1)
    expect(leech.knownPeers().some((p) => p.host === SEED2.host)).toBe(false)
  })

  it('tells peers about each other with ut_pex (BEP 11)', async () => {
    const t = await fixture({ 'a.bin': 300_000, 'b.bin': 300_000 }, 65_536)
    // The seed lacks b.bin, so nobody completes and the swarm stays connected.
    await fsp.rm(path.join(t.seedDir, t.torrent.name, 'b.bin'))
    const s = swarm()
    const tuning = { pexIntervalMs: 1000 }
    const seed = s.add(SEED, {
      infoHash: t.torrent.infoHash,
      torrent: t.torrent,
      downloadDir: t.seedDir,
      tuning,
    })
    await seed.start()
    const opts = (dir: string) => ({
      infoHash: t.torrent.infoHash,
      torrent: t.torrent,
      downloadDir: path.join(t.root, dir),
      tuning,
    })
    const a = s.add(LEECH, opts('a'))
    const b = s.add(LEECH2, opts('b'))
    await a.start()
    await b.start()
    a.addPeers([SEED], 'manual')
    b.addPeers([SEED], 'manual')
    await until(
      () => b.knownPeers().some((p) => p.host === LEECH.host && p.source === 'pex'),
      15_000,
      'a peer learnt through ut_pex',
    )
    expect(a.knownPeers().some((p) => p.host === LEECH2.host && p.source === 'pex')).toBe(true)
  })

  it('passes on which peers a ut_pex message says speak uTP', async () => {
    const t = await fixture({ 'a.bin': 300_000 })
    const s = swarm()
    s.listen(SEED2, (wire: PeerWire) => {
      wire.once('handshake', () => {
        wire.handshake(t.torrent.infoHash)
        wire.setNumPieces(t.torrent.pieceCount)
        void wire.waitForExtendedHandshake().then(() =>
          wire.sendPex({
            added: [
              { host: '10.0.0.20', port: 6881, flags: PEX_FLAGS.SUPPORTS_UTP },
              { host: '10.0.0.21', port: 6881, flags: PEX_FLAGS.SEED },
            ],
            dropped: [],
          }),
        )
      })
    })
    const speaksUtp: string[] = []
    const leech = s.add(
      LEECH,
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: path.join(t.root, 'leech') },
      { peerSpeaksUtp: (address) => speaksUtp.push(`${address.host}:${address.port}`) },
    )
    await leech.start()
    leech.addPeers([SEED2], 'manual')
    await until(() => leech.knownPeers().some((p) => p.source === 'pex'), 10_000, 'the ut_pex message')
    expect(speaksUtp).toEqual(['10.0.0.20:6881'])
  })

  it('never tells other peers about hidden-service peers with ut_pex, and closes peers by address on request', async () => {
    const t = await fixture({ 'a.bin': 300_000, 'b.bin': 300_000 }, 65_536)
    // The seed lacks b.bin, so nobody completes and the swarm stays connected.
    await fsp.rm(path.join(t.seedDir, t.torrent.name, 'b.bin'))
    const s = swarm()
    const tuning = { pexIntervalMs: 1000 }
    const opts = (dir: string) => ({
      infoHash: t.torrent.infoHash,
      torrent: t.torrent,
      downloadDir: path.join(t.root, dir),
      tuning,
    })
    const seed = s.add(SEED, { ...opts('unused'), downloadDir: t.seedDir })
    await seed.start()
    // SEED and SEED2 stand in for end-to-end circuits (the deps hook), SEED also given with source `hidden` as
    // the engine gives the seeders its hidden swarm meets (a hidden candidate is dialled only while it is one)
    const seed2 = s.add(SEED2, { ...opts('unused2'), downloadDir: t.seedDir })
    await seed2.start()
    const a = s.add(LEECH, opts('a'), {
      isHiddenPeer: (addr) => addr.host === SEED.host || addr.host === SEED2.host,
    })
    const b = s.add(LEECH2, opts('b'))
    await a.start()
    await b.start()
    a.addPeers([SEED], 'hidden')
    a.addPeers([SEED2, LEECH2], 'manual')
    await until(() => a.peers().length === 3, 15_000, 'a to meet three peers')
    // a's ut_pex names LEECH2 to the seeds but never SEED (source hidden) nor SEED2 (a hidden address) to b
    await until(
      () => seed.knownPeers().some((p) => p.host === LEECH2.host && p.source === 'pex'),
      15_000,
      'the hidden seed to learn of the other leecher',
    )
    // (the seeds lack a file, so they may dial b themselves once they hear of it: that is not ut_pex)
    const pexAtB = b.knownPeers().filter((p) => p.source === 'pex')
    expect(pexAtB.some((p) => p.host === SEED.host || p.host === SEED2.host)).toBe(false)

    expect(a.disconnectPeers((addr) => addr.host === SEED.host || addr.host === SEED2.host)).toBe(1)
    await until(() => a.peers().length === 2, 5_000, 'the other peer to go')
    expect(
      a
        .peers()
        .map((p) => p.ip)
        .sort(),
    ).toEqual([SEED.host, SEED2.host])
  })

  it('remembers at most MAX_PEER_CANDIDATES addresses however many peers name, and a manual one still gets in', async () => {
    const t = await fixture({ 'a.bin': 200_000 })
    const s = swarm()
    const leech = s.add(LEECH, {
      infoHash: t.torrent.infoHash,
      torrent: t.torrent,
      downloadDir: path.join(t.root, 'leech'),
    })
    await leech.start()
    // As a hostile peer's ut_pex messages would: far more addresses than the list holds, none of them answers.
    const flood = Array.from({ length: MAX_PEER_CANDIDATES + 500 }, (_, i) => ({
      host: `10.1.${i >> 8}.${i & 0xff}`,
      port: 6881,
    }))
    leech.addPeers(flood, 'pex')
    expect(leech.knownPeers()).toHaveLength(MAX_PEER_CANDIDATES)
    leech.addPeers([SEED], 'manual')
    expect(leech.knownPeers()).toHaveLength(MAX_PEER_CANDIDATES)
    expect(leech.knownPeers().some((p) => p.host === SEED.host && p.source === 'manual')).toBe(true)
  })

  it('takes no peers from ut_pex for a private torrent (BEP 27)', async () => {
    const t = await makeTorrent({ 'a.bin': 100_000 }, { private: true })
    cleanup.push(() => fsp.rm(t.root, { recursive: true, force: true }))
    expect(t.torrent.private).toBe(true)
    const s = swarm()
    s.listen(EVIL, (wire: PeerWire) => {
      wire.once('handshake', () => {
        wire.handshake(t.torrent.infoHash)
        wire.setNumPieces(t.torrent.pieceCount)
      })
      wire.once('extendedHandshake', () => {
        wire.sendPex({ added: [{ ...SEED2, flags: 0 }], dropped: [] })
        // Sent after the ut_pex message: once the leecher sees it, the ut_pex message has been handled.
        wire.haveAll()
      })
    })
    const leech = s.add(LEECH, {
      infoHash: t.torrent.infoHash,
      torrent: t.torrent,
      downloadDir: path.join(t.root, 'leech'),
    })
    await leech.start()
    leech.addPeers([EVIL], 'manual')
    await until(
      () => leech.peers().some((p) => p.ip === EVIL.host && p.seed),
      10_000,
      'the peer after its ut_pex',
    )
    expect(leech.knownPeers().map((p) => p.host)).toEqual([EVIL.host])
  })

  it('resumes from resume data without hashing again and without downloading verified pieces', async () => {
    const t = await fixture({ 'a.bin': 600_000 })
    const s = swarm()
    const seed = s.add(SEED, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir })
    await seed.start()
    const dir = path.join(t.root, 'leech')
    let saved: Buffer | undefined
    const first = s.add(
      LEECH,
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: dir },
      {
        saveResumeData: async (data) => {
          saved = data
        },
      },
    )
    await first.start()
    first.addPeers([SEED], 'manual')
    await until(() => first.state === 'DLSTATUS_SEEDING', 20_000, 'first run')
    await first.stop()
    expect(saved).toBeDefined()

    const second = s.add(LEECH2, {
      infoHash: t.torrent.infoHash,
      torrent: t.torrent,
      downloadDir: dir,
      resumeData: saved!,
    })
    const seen = states(second)
    await second.start()
    expect(second.rechecked).toBe(false)
    expect(seen).not.toContain('DLSTATUS_HASHCHECKING')
    expect(second.state).toBe('DLSTATUS_SEEDING')
    expect(second.totals.down).toBe(0)
  })

  it('stops only the download whose folder cannot be written, with the error text', async () => {
    const t = await fixture({ 'a.bin': 200_000 })
    const s = swarm()
    const seed = s.add(SEED, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir })
    await seed.start()
    // A file where the download folder should be: every write fails.
    const blocked = path.join(t.root, 'blocked')
    await fsp.writeFile(blocked, 'not a folder')
    const bad = s.add(LEECH, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: blocked })
    const errors: string[] = []
    bad.events.on('error', (text) => errors.push(text))
    const good = s.add(LEECH2, {
      infoHash: t.torrent.infoHash,
      torrent: t.torrent,
      downloadDir: path.join(t.root, 'good'),
    })
    await bad.start()
    await good.start()
    bad.addPeers([SEED], 'manual')
    good.addPeers([SEED], 'manual')
    await until(() => bad.state === 'DLSTATUS_STOPPED_ON_ERROR', 20_000, 'the error')
    expect(errors).toHaveLength(1)
    expect(bad.status().error).not.toBe('')
    await until(() => good.state === 'DLSTATUS_SEEDING', 20_000, 'the good download')
    expect(seed.state).toBe('DLSTATUS_SEEDING')
  })

  it('reports how each connection is encrypted, and an MSE handshake with a plaintext payload is not RC4', async () => {
    const t = await fixture({ 'a.bin': 4 * 1024 * 1024 })
    const s = swarm()
    for (const address of [SEED, SEED2]) {
      const seed = s.add(address, {
        infoHash: t.torrent.infoHash,
        torrent: t.torrent,
        downloadDir: t.seedDir,
      })
      await seed.start()
    }
    const dial = s.connector(LEECH)
    const leech = new Download(
      {
        // As the engine's MSE connector reports the method each handshake settled on.
        connect: async (peer, opts) => ({
          ...(await dial(peer, opts)),
          encryption: peer.host === SEED.host ? 'plaintext' : 'rc4',
        }),
        peerId: randomBytes(20),
      },
      { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: path.join(t.root, 'leech') },
    )
    cleanup.push(() => leech.stop())
    await leech.start()
    leech.addPeers([SEED, SEED2], 'manual')
    // Seeds drop each other once the leech completes, so what is seen is collected while it downloads.
    const byHost: Record<string, string> = {}
    const atSeed = new Set<string>()
    await until(
      () => {
        for (const p of leech.peers()) byHost[p.ip] = p.encryption
        for (const p of s.downloads[0]!.peers()) atSeed.add(p.encryption)
        return Object.keys(byHost).length === 2 && atSeed.size > 0
      },
      15_000,
      'both seeds connected',
    )
    expect(byHost).toEqual({ [SEED.host]: 'plaintext', [SEED2.host]: 'rc4' })
    // The seed accepted a plain in-process stream, with no encryption at all.
    expect([...atSeed]).toEqual(['none'])
  })

  it('downloads from two seeds at once and gets blocks from both', async () => {
    const t = await fixture({ 'a.bin': 2_000_000 })
    const s = swarm()
    const dir2 = path.join(t.root, 'seed2')
    await fsp.cp(t.seedDir, dir2, { recursive: true })
    const a = s.add(SEED, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: t.seedDir })
    const b = s.add(SEED2, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: dir2 })
    await a.start()
    await b.start()
    const dir = path.join(t.root, 'leech')
    const leech = s.add(LEECH, { infoHash: t.torrent.infoHash, torrent: t.torrent, downloadDir: dir })
    await leech.start()
    leech.addPeers([SEED, SEED2], 'manual')
    await until(() => leech.state === 'DLSTATUS_SEEDING', 20_000, 'download from two seeds')
    expect(await sameBytes(t, dir)).toBe(true)
    expect(a.totals.up).toBeGreaterThan(0)
    expect(b.totals.up).toBeGreaterThan(0)
  })
})

describe('decideUnchokes', () => {
  const peer = (id: string, downRate: number, upRate = 0, interested = true, uploadOnly = false) => ({
    id,
    interested,
    downRate,
    upRate,
    uploadOnly,
  })
  const base = { slots: 2, seeding: false, optimistic: undefined, rotateOptimistic: false, random: () => 0 }

  it('unchokes the interested peers that upload to us fastest, plus one optimistic', () => {
    const d = decideUnchokes({
      ...base,
      peers: [peer('a', 10), peer('b', 300), peer('c', 200), peer('d', 5, 0, false), peer('e', 1)],
    })
    expect([...d.unchoke].sort()).toEqual(['a', 'b', 'c'])
    expect(d.optimistic).toBe('a')
  })

  it('ranks by our upload rate when seeding and never unchokes seeds', () => {
    const d = decideUnchokes({
      ...base,
      seeding: true,
      peers: [peer('a', 0, 50), peer('b', 0, 10), peer('c', 0, 90), peer('s', 0, 999, true, true)],
    })
    expect(d.unchoke.has('c') && d.unchoke.has('a')).toBe(true)
    expect(d.unchoke.has('s')).toBe(false)
    expect(d.optimistic).toBe('b')
  })

  it('keeps the optimistic unchoke until it is time to rotate, then picks another', () => {
    const peers = [peer('a', 100), peer('b', 90), peer('c', 1), peer('d', 1)]
    const kept = decideUnchokes({ ...base, peers, optimistic: 'd' })
    expect(kept.optimistic).toBe('d')
    const rotated = decideUnchokes({ ...base, peers, optimistic: 'd', rotateOptimistic: true })
    expect(rotated.optimistic).toBe('c')
    expect(rotated.unchoke.has('d')).toBe(false)
  })
})
