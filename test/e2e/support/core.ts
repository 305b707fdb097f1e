import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)))
const START_TIMEOUT_MS = 30_000

/** A `tribler` process started from the built CLI, on loopback, with its own state directory. */
export interface RunningCore {
  /** `http://127.0.0.1:<port>` */
  url: string
  port: number
  stateDir: string
  /** Everything the process printed. */
  output(): string
  /** Stops the process (SIGTERM, then SIGKILL after a grace period); keeps the state directory. */
  stop(): Promise<void>
  /** Stops the process and deletes the state directory. */
  dispose(): Promise<void>
}

/** Options of `startCore`. */
export interface StartCoreOptions {
  /** Fixed port (to restart a core on the same address); default a free one. */
  port?: number
  /** Reuse a state directory (restart); default a new temporary one. */
  stateDir?: string
  apiKey?: string
  /** Settings written to the state directory's settings.json before the start, by section. */
  settings?: Record<string, Record<string, unknown>>
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolvePort(port))
    })
  })
}

/**
 * Starts `bin/tribler.js start --no-public-network` and resolves once it printed its REST URL. Needs `npm run build`.
 */
export async function startCore(opts: StartCoreOptions = {}): Promise<RunningCore> {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'tribler-e2e-'))
  const port = opts.port ?? (await freePort())
  if (opts.settings !== undefined)
    writeFileSync(join(stateDir, 'settings.json'), JSON.stringify(opts.settings))
  const args = [
    'bin/tribler.js',
    'start',
    '--no-public-network',
    '--port',
    String(port),
    '--state-dir',
    stateDir,
  ]
  if (opts.apiKey !== undefined) args.push('--api-key', opts.apiKey)
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, TRIBLER_NO_PUBLIC_NETWORK: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`core did not start in time:\n${output}`)),
      START_TIMEOUT_MS,
    )
    const check = () => {
      const match = /REST API at (http:\/\/\S+)/.exec(output)
      if (match?.[1]) {
        clearTimeout(timer)
        resolveUrl(match[1])
      }
    }
    child.stdout?.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`core exited with ${code}:\n${output}`))
    })
  })
  const stop = () => stopProcess(child)
  return {
    url,
    port,
    stateDir,
    output: () => output,
    stop,
    dispose: async () => {
      await stop()
      rmSync(stateDir, { recursive: true, force: true })
    },
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((done) => child.once('exit', () => done()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}
