// Cost of the unlimited path of the bandwidth limiter: the same bytes through an in-process Duplex pair, once
// raw and once through throttle() with unlimited session and download channels on both ends. Prints MB/s for both
// and the ratio (throttled / raw; 1.0 means no overhead).
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import { BandwidthManager, throttle } from '../src/bittorrent/bandwidth/index.js'
import { duplexPair } from '../src/bittorrent/peer-wire/index.js'

const TOTAL_BYTES = Number(process.env.BENCH_BANDWIDTH_BYTES ?? 1024 * 1024 * 1024)
const CHUNK = Buffer.alloc(16 * 1024 + 13, 0x5a)
const RUNS = 3

/** Moves TOTAL_BYTES from `writer` to `reader`; returns MB/s. */
async function transfer(writer: Duplex, reader: Duplex): Promise<number> {
  const start = performance.now()
  let received = 0
  const done = new Promise<void>((resolve) => {
    reader.on('data', (chunk: Buffer) => {
      received += chunk.length
      if (received >= TOTAL_BYTES) resolve()
    })
  })
  let sent = 0
  while (sent < TOTAL_BYTES) {
    sent += CHUNK.length
    if (!writer.write(CHUNK)) await new Promise((resolve) => writer.once('drain', resolve))
  }
  await done
  const ms = performance.now() - start
  writer.destroy()
  reader.destroy()
  return received / 1e6 / (ms / 1000)
}

async function raw(): Promise<number> {
  const [a, b] = duplexPair()
  return transfer(a, b)
}

async function throttled(): Promise<number> {
  const manager = new BandwidthManager()
  const channels = [manager.channel(0), manager.channel(0)]
  const [a, b] = duplexPair()
  return transfer(
    throttle(a, { manager, write: channels, read: channels }),
    throttle(b, { manager, write: channels, read: channels }),
  )
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0
const rawRuns: number[] = []
const ourRuns: number[] = []
for (let i = 0; i < RUNS; i++) {
  rawRuns.push(await raw())
  ourRuns.push(await throttled())
}
const r = median(rawRuns)
const o = median(ourRuns)
console.log(`bandwidth, unlimited path, ${TOTAL_BYTES / 1024 / 1024} MiB, median of ${RUNS}`)
console.log(`  raw duplex pair        ${r.toFixed(0)} MB/s`)
console.log(`  throttle(), unlimited  ${o.toFixed(0)} MB/s`)
console.log(`  ratio (ours / raw)     ${(o / r).toFixed(2)}`)
