/**
 * Transmission (`transmission-cli`) and aria2 (`aria2c`) as child processes for interop tests, with DHT, LPD, PEX
 * and port mapping off so they talk only to the peers and trackers of the test on loopback.
 *
 * @example
 * ```ts
 * const seeder = await startAria2({ torrentPath, dir: seedDir, port: await freePort('127.0.0.1') })
 * // dial 127.0.0.1:seeder.port
 * await seeder.stop()
 * ```
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'

/** A client running in a child process. */
export interface RunningClient {
  readonly port: number
  /** Everything it printed so far. */
  output(): string
  /** Resolves with the exit code once it exits by itself. */
  readonly exited: Promise<number | null>
  stop(): Promise<void>
}

export function transmissionAvailable(): boolean {
  return spawnSync('transmission-cli', ['--version'], { stdio: 'ignore' }).error === undefined
}

export function aria2Available(): boolean {
  return spawnSync('aria2c', ['--version'], { stdio: 'ignore' }).error === undefined
}

function run(command: string, args: string[], port: number): RunningClient {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000)
  })
  child.stderr!.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000)
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return {
    port,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * Starts transmission-cli on a torrent whose data is in `dir` (it checks it, then seeds) or absent (it downloads,
 * then seeds; it does not exit by itself). It listens on every interface at `port` for TCP and, with `utp`, for
 * uTP on the same UDP port; plaintext peers are accepted.
 */
export async function startTransmission(opts: {
  torrentPath: string
  dir: string
  configDir: string
  port: number
  /** Accept and dial uTP (libutp). Default false. */
  utp?: boolean
}): Promise<RunningClient> {
  await mkdir(opts.configDir, { recursive: true })
  await writeFile(
    path.join(opts.configDir, 'settings.json'),
    JSON.stringify({
      'dht-enabled': false,
      'lpd-enabled': false,
      'pex-enabled': false,
      'port-forwarding-enabled': false,
      'utp-enabled': opts.utp ?? false,
      'peer-port': opts.port,
      encryption: 0,
      'rpc-enabled': false,
    }),
  )
  const args = ['-g', opts.configDir, '-w', opts.dir, '-p', String(opts.port), '-et', '-M', '-D', '-U']
  return run('transmission-cli', [...args, opts.torrentPath], opts.port)
}

/**
 * Starts aria2c (TCP only) on a torrent. With `seed`, the data in `dir` is checked and seeded until stopped;
 * otherwise it downloads into `dir` and exits once done.
 */
export function startAria2(opts: {
  torrentPath: string
  dir: string
  port: number
  seed: boolean
}): RunningClient {
  const args = [
    `--dir=${opts.dir}`,
    `--listen-port=${opts.port}`,
    '--enable-dht=false',
    '--enable-dht6=false',
    '--bt-enable-lpd=false',
    '--enable-peer-exchange=false',
    '--check-integrity=true',
    '--summary-interval=0',
    '--console-log-level=warn',
    '--file-allocation=none',
    '--bt-stop-timeout=120',
    opts.seed ? '--seed-ratio=0.0' : '--seed-time=0',
    opts.torrentPath,
  ]
  return run('aria2c', args, opts.port)
}
