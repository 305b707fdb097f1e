import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** A running `tribler` child process with its output collected. */
export interface CliProcess {
  readonly child: ChildProcess
  readonly stateDir: string
  stdout(): string
  stderr(): string
  /** Resolves with the first stdout line matching `pattern`; rejects after `timeoutMs` or on exit. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** A fresh state directory. */
export function tempStateDir(): string {
  return mkdtempSync(join(tmpdir(), 'tribler-cli-'))
}

/**
 * Runs `bin/tribler.js` (or a fixture script) from the built dist/, always in the private network mode. A core gets
 * `--state-dir`; a client command (`client: true`, e.g. `download`) takes no state directory.
 */
export function runCli(
  args: string[],
  opts: { stateDir?: string; script?: string; env?: Record<string, string>; client?: boolean } = {},
): CliProcess {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'index.js'))) throw new Error('build first: npm run build')
  const stateDir = opts.stateDir ?? tempStateDir()
  const script = opts.script ?? join(ROOT, 'bin', 'tribler.js')
  const child = spawn(
    process.execPath,
    [script, ...args, ...(opts.client === true ? [] : ['--state-dir', stateDir])],
    {
      env: { ...process.env, TRIBLER_NO_PUBLIC_NETWORK: '1', TRIBLER_LOG_LEVEL: '', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  let err = ''
  const waiters: Array<() => void> = []
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString()
    for (const wake of waiters.splice(0)) wake()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      for (const wake of waiters.splice(0)) wake()
      resolve({ code, signal })
    }),
  )
  return {
    child,
    stateDir,
    stdout: () => out,
    stderr: () => err,
    exited,
    line(pattern, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = out.split('\n').find((l) => pattern.test(l))
          if (found !== undefined) resolve(found)
          else if (child.exitCode !== null || child.signalCode !== null) {
            reject(new Error(`exited before printing ${pattern}; stderr: ${err}`))
          } else if (Date.now() > deadline) {
            reject(new Error(`timed out waiting for ${pattern}; stderr: ${err}`))
          } else {
            waiters.push(check)
            setTimeout(check, 200).unref()
          }
        }
        check()
      })
    },
  }
}

/** The REST URL printed by the CLI on start. */
export async function apiUrl(cli: CliProcess): Promise<string> {
  const line = await cli.line(/REST API at http:\/\//)
  const match = /(http:\/\/\S+)/.exec(line)
  if (match?.[1] === undefined) throw new Error(`no URL in ${line}`)
  return match[1]
}
