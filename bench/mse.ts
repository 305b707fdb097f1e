// RC4 speed for message stream encryption: our TypeScript RC4 against OpenSSL's (run in a child Node with the
// legacy provider, which Node 20 does not load by default), over the same 64 KiB chunks. Then the whole encrypted
// stream: MSE handshake plus RC4 both ways through an in-process Duplex pair. Prints MB/s and the ratio.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { infoHashLookup, mseInitiate, mseRespond, Rc4 } from '../src/bittorrent/mse/index.js'
import { duplexPair } from '../src/bittorrent/peer-wire/index.js'

const TOTAL_BYTES = Number(process.env.BENCH_MSE_BYTES ?? 512 * 1024 * 1024)
const CHUNK_BYTES = 64 * 1024
const RUNS = 3

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0

function ours(): number {
  const rc4 = new Rc4(Buffer.alloc(20, 7))
  const input = Buffer.alloc(CHUNK_BYTES, 1)
  const output = Buffer.alloc(CHUNK_BYTES)
  const start = performance.now()
  for (let n = 0; n < TOTAL_BYTES; n += CHUNK_BYTES) rc4.process(input, output)
  return TOTAL_BYTES / 1e6 / ((performance.now() - start) / 1000)
}

function openssl(): number | undefined {
  const script = `
    const c = require('node:crypto').createCipheriv('rc4', Buffer.alloc(20, 7), null)
    const input = Buffer.alloc(${CHUNK_BYTES}, 1)
    const start = performance.now()
    for (let n = 0; n < ${TOTAL_BYTES}; n += ${CHUNK_BYTES}) c.update(input)
    process.stdout.write(String(${TOTAL_BYTES} / 1e6 / ((performance.now() - start) / 1000)))`
  const result = spawnSync(process.execPath, ['--openssl-legacy-provider', '-e', script], {
    encoding: 'utf8',
  })
  return result.status === 0 ? Number(result.stdout) : undefined
}

async function stream(): Promise<number> {
  const infoHash = createHash('sha1').update('bench').digest()
  const [a, b] = duplexPair()
  const [out, inc] = await Promise.all([
    mseInitiate(a, { infoHash, allowedMethods: ['rc4'], nativeRc4: false }),
    mseRespond(b, { lookup: infoHashLookup([infoHash]), nativeRc4: false }),
  ])
  const total = Math.min(TOTAL_BYTES, 256 * 1024 * 1024)
  const chunk = Buffer.alloc(CHUNK_BYTES, 3)
  const start = performance.now()
  let received = 0
  const done = new Promise<void>((resolve) =>
    inc.stream.on('data', (data: Buffer) => {
      received += data.length
      if (received >= total) resolve()
    }),
  )
  for (let sent = 0; sent < total; sent += CHUNK_BYTES) {
    if (!out.stream.write(chunk)) await new Promise((resolve) => out.stream.once('drain', resolve))
  }
  await done
  const mbps = total / 1e6 / ((performance.now() - start) / 1000)
  out.stream.destroy()
  return mbps
}

const ourRuns: number[] = []
const sslRuns: number[] = []
const streamRuns: number[] = []
for (let i = 0; i < RUNS; i++) {
  ourRuns.push(ours())
  const ssl = openssl()
  if (ssl !== undefined) sslRuns.push(ssl)
  streamRuns.push(await stream())
}
const o = median(ourRuns)
console.log(`RC4, ${TOTAL_BYTES / 1024 / 1024} MiB in ${CHUNK_BYTES / 1024} KiB chunks, median of ${RUNS}`)
console.log(`  ours (TypeScript)        ${o.toFixed(0)} MB/s`)
if (sslRuns.length > 0) {
  const s = median(sslRuns)
  console.log(`  OpenSSL (legacy provider) ${s.toFixed(0)} MB/s`)
  console.log(`  ratio (ours / OpenSSL)   ${(o / s).toFixed(2)}`)
} else {
  console.log('  OpenSSL RC4 unavailable (no legacy provider)')
}
console.log(`MSE stream, RC4 one way through an in-process pair: ${median(streamRuns).toFixed(0)} MB/s`)
