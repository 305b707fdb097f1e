// Core start-up and REST speed of the real CLI process (built dist/):
//  1. start-to-STARTED: median of 10 cold starts, each with a fresh state directory, measured from spawning
//     `bin/tribler.js` to its "REST API at" line (printed once the core is STARTED);
//  2. GET /state throughput: autocannon, in its own process, against one running core.
// Prints both numbers next to their targets and the ratio (target / measured for time, measured / target for rate).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const CLI = join(ROOT, 'bin', 'tribler.js')
const STARTS = 10
const START_TARGET_MS = 300
const RATE_TARGET = 15_000
const LOAD_SECONDS = 10
const CONNECTIONS = 64

interface Core {
  url: string
  startMs: number
  stop(): Promise<void>
}

function startCore(): Promise<Core> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tribler-bench-'))
  const began = performance.now()
  const child = spawn(
    process.execPath,
    [CLI, '--port', '0', '--no-public-network', '--state-dir', stateDir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TRIBLER_LOG_LEVEL: '' },
    },
  )
  const exited = new Promise<void>((done) => child.once('exit', () => done()))
  return new Promise((resolvePromise, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('the core did not start within 20 s')), 20_000)
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /REST API at (http:\/\/\S+)/.exec(out)
      if (match?.[1] === undefined) return
      clearTimeout(timer)
      resolvePromise({
        url: match[1],
        startMs: performance.now() - began,
        stop: async () => {
          child.kill('SIGTERM')
          await exited
          rmSync(stateDir, { recursive: true, force: true })
        },
      })
    })
    child.once('exit', (code) => reject(new Error(`the core exited with ${code} before starting`)))
  })
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

async function loadTest(url: string): Promise<{ average: number; errors: number; non2xx: number }> {
  const autocannon = join(
    dirname(createRequire(import.meta.url).resolve('autocannon/package.json')),
    'autocannon.js',
  )
  const child = spawn(
    process.execPath,
    [autocannon, '--json', '-c', String(CONNECTIONS), '-d', String(LOAD_SECONDS), `${url}/state`],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  )
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString()
  })
  await new Promise((done) => child.once('exit', done))
  const result = JSON.parse(out) as { requests: { average: number }; errors: number; non2xx: number }
  return { average: result.requests.average, errors: result.errors, non2xx: result.non2xx }
}

const times: number[] = []
for (let i = 0; i < STARTS; i++) {
  const core = await startCore()
  times.push(core.startMs)
  await core.stop()
}
const startMedian = median(times)

const core = await startCore()
const load = await loadTest(core.url)
await core.stop()

const fmt = (n: number, digits = 0): string => n.toFixed(digits)
console.log('core benchmark (Tribler.ts CLI process; the Python reference core is not run here)')
console.log(
  `  start-to-STARTED, median of ${STARTS} cold starts: ${fmt(startMedian)} ms (target < ${START_TARGET_MS} ms,`,
)
console.log(
  `    ratio target/measured ${fmt(START_TARGET_MS / startMedian, 2)}; all: ${times.map((t) => fmt(t)).join(' ')})`,
)
console.log(
  `  GET /state with ${CONNECTIONS} connections for ${LOAD_SECONDS} s: ${fmt(load.average)} requests/s ` +
    `(target >= ${RATE_TARGET}, ratio measured/target ${fmt(load.average / RATE_TARGET, 2)}; ` +
    `errors ${load.errors}, non-2xx ${load.non2xx})`,
)
