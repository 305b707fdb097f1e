// Block throughput of the peer wire through an in-process Duplex pair: a seeder answers 16 KiB requests from a
// buffer in memory and a leecher keeps a pipeline of requests full. Measures our PeerWire and, when installed, the
// npm `bittorrent-protocol` Wire over the same kind of pair, and prints MB/s for both and the ratio (ours / theirs).
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import { duplexPair, PeerWire } from '../src/bittorrent/peer-wire/index.js'

const TOTAL_BYTES = Number(process.env.BENCH_WIRE_BYTES ?? 1024 * 1024 * 1024)
const BLOCK = 16_384
const PIECE = 256 * 1024
const PIPELINE = 128
const TIME_LIMIT_MS = 60_000
const RUNS = 3
const PIECE_DATA = Buffer.alloc(PIECE, 0x5a)
const INFO_HASH = Buffer.alloc(20, 1)

interface Result {
  bytes: number
  ms: number
}

type Done = (err: Error | null, block?: Buffer) => void

/** Keeps `PIPELINE` requests in flight until `TOTAL_BYTES` arrived (or the time limit); returns what moved. */
function transfer(request: (index: number, begin: number, done: Done) => void): Promise<Result> {
  const blocks = Math.floor(TOTAL_BYTES / BLOCK)
  const perPiece = PIECE / BLOCK
  let next = 0
  let received = 0
  const start = performance.now()
  return new Promise<Result>((resolve, reject) => {
    const pump = (): void => {
      while (next < blocks && next - received < PIPELINE) {
        const n = next++
        request(Math.floor(n / perPiece), (n % perPiece) * BLOCK, onBlock)
      }
    }
    const onBlock: Done = (err, block) => {
      if (err !== null || block?.length !== BLOCK) {
        reject(err ?? new Error('short block'))
        return
      }
      received++
      if (received === blocks || performance.now() - start > TIME_LIMIT_MS) {
        resolve({ bytes: received * BLOCK, ms: performance.now() - start })
      } else pump()
    }
    pump()
  })
}

async function ours(): Promise<Result> {
  const [sa, sb] = duplexPair()
  const seeder = new PeerWire(sa, { peerId: Buffer.alloc(20, 2), infoHash: INFO_HASH, reqq: PIPELINE * 2 })
  const leecher = new PeerWire(sb, { peerId: Buffer.alloc(20, 3), reqq: PIPELINE * 2 })
  leecher.on('handshake', (h) => leecher.handshake(h.infoHash))
  seeder.on('request', (r) =>
    seeder.piece(r.index, r.begin, PIECE_DATA.subarray(r.begin, r.begin + r.length)),
  )
  const unchoked = new Promise((resolve) => leecher.once('unchoke', resolve))
  await leecher.waitForExtendedHandshake()
  seeder.unchoke()
  await unchoked
  const result = await transfer((index, begin, done) =>
    leecher.request(index, begin, BLOCK).then(
      (block) => done(null, block),
      (err: Error) => done(err),
    ),
  )
  seeder.destroy()
  return result
}

async function theirs(): Promise<Result | undefined> {
  // The reference ships no type declarations; this is the part of its Wire the bench uses.
  interface RefWire extends Duplex {
    handshake(infoHash: string, peerId: string): void
    unchoke(): void
    request(index: number, offset: number, length: number, cb: Done): void
    // biome-ignore lint/suspicious/noExplicitAny: listeners of the untyped reference take varied arguments
    on(event: string, listener: (...args: any[]) => void): this
  }
  let Wire: new () => RefWire
  try {
    // @ts-expect-error optional devDependency without type declarations
    Wire = (await import('bittorrent-protocol')).default
  } catch {
    return undefined
  }
  const seeder = new Wire()
  const leecher = new Wire()
  seeder.pipe(leecher).pipe(seeder)
  const ih = INFO_HASH.toString('hex')
  seeder.on('request', (_i: number, offset: number, length: number, cb: Done) =>
    cb(null, PIECE_DATA.subarray(offset, offset + length)),
  )
  const ready = new Promise((resolve) => leecher.on('unchoke', resolve))
  leecher.on('handshake', () => leecher.handshake(ih, Buffer.alloc(20, 3).toString('hex')))
  seeder.handshake(ih, Buffer.alloc(20, 2).toString('hex'))
  seeder.unchoke()
  await ready
  const result = await transfer((index, begin, done) => leecher.request(index, begin, BLOCK, done))
  seeder.destroy()
  leecher.destroy()
  return result
}

const mbps = (r: Result): number => r.bytes / 1e6 / (r.ms / 1000)

async function median(run: () => Promise<Result | undefined>): Promise<Result | undefined> {
  const results: Result[] = []
  for (let i = 0; i < RUNS; i++) {
    const r = await run()
    if (r === undefined) return undefined
    results.push(r)
  }
  results.sort((x, y) => mbps(x) - mbps(y))
  return results[Math.floor(RUNS / 2)]
}

const describe = (r: Result): string =>
  `${mbps(r).toFixed(0)} MB/s (${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${r.ms.toFixed(0)} ms, median of ${RUNS})`
const a = (await median(ours))!
console.log(`ours   (PeerWire):            ${describe(a)}`)
const b = await median(theirs)
if (b === undefined) console.log('theirs: bittorrent-protocol not installed')
else {
  console.log(`theirs (bittorrent-protocol): ${describe(b)}`)
  console.log(`ratio ours/theirs: ${(mbps(a) / mbps(b)).toFixed(2)}x`)
}
