import { spawn } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ApiError, defaultGuiDir, RestApi } from '../api/index.js'
import { BitTorrentEngine, DOWNLOAD_MANAGER_SERVICE, isDownloadManager } from '../bittorrent/engine/index.js'
import {
  configureLogging,
  errorMessage,
  type LogLevel,
  type LogRecord,
  type LogSink,
  parseLogLevel,
  type Service,
} from '../common/index.js'
import { TorrentService } from '../content/torrents/index.js'
import { Ipv8Service } from '../ipv8/index.js'
import {
  fileLogSink,
  publicNetworkFromEnv,
  resolveStateDir,
  type ServiceDeps,
  type ServiceOptions,
  Session,
  statePaths,
  triblerVersion,
} from '../session/index.js'
import { circuitUpstream, Socks5Service } from '../socks5/index.js'
import { WatchFolder } from '../watch-folder/index.js'
import { isClientCommand, runClientCommand } from './commands.js'

/** Where the CLI writes and what it reads; tests pass their own. */
export interface CliIo {
  stdout: (line: string) => void
  stderr: (line: string) => void
  env: NodeJS.ProcessEnv
  /** Receives SIGINT/SIGTERM handlers; default `process`. */
  signals: Pick<NodeJS.Process, 'on' | 'off'>
  /** Called on a second signal. Default `process.exit`. */
  forceExit: (code: number) => void
  /** Services to run after {@link CORE_SERVICES}, e.g. a test's own. */
  services: readonly CoreService[]
  /** Raw text to stdout, for the redrawn progress line of `tribler download`. */
  write: (text: string) => void
  /** Whether stdout is a terminal. Default `process.stdout.isTTY`. */
  isTTY: boolean
  /** Terminal width. */
  columns: number
  cwd: string
  /** How often `tribler download` polls the core (ms). */
  pollMs: number
  /** How often `tribler download` prints a progress line when stdout is not a terminal (ms). */
  lineEveryMs: number
}

/** A service the CLI adds to the session: its factory (given the session too, to find other services) and how it starts. */
export interface CoreService {
  readonly factory: (deps: ServiceDeps, session: Session) => Service
  readonly options?: ServiceOptions
}

/**
 * The services of a full core, in start order, after the REST API. Each subsystem that runs in the core adds its
 * entry here, e.g. `{ factory: (deps) => new Ipv8Service(deps), options: { readableState: 'Loading communities...' } }`.
 */
export const CORE_SERVICES: CoreService[] = [
  { factory: (deps) => new Ipv8Service(deps), options: { readableState: 'Loading communities...' } },
  {
    factory: (deps, session) =>
      new Socks5Service(deps, {
        upstream: circuitUpstream(() => {
          const ipv8 = session.service('ipv8')
          return ipv8 instanceof Ipv8Service ? ipv8.tunnels : undefined
        }),
      }),
    options: { readableState: 'Starting anonymous proxies...' },
  },
  {
    // Downloads with hops > 0 run through the IPv8 service's tunnel community.
    factory: (deps, session) =>
      new BitTorrentEngine(deps, {
        tunnels: () => {
          const ipv8 = session.service('ipv8')
          return ipv8 instanceof Ipv8Service ? ipv8.tunnels : undefined
        },
      }),
    options: { readableState: 'Starting libtorrent...' },
  },
  {
    factory: (deps, session) =>
      new TorrentService(deps, {
        downloads: () => {
          const manager = session.service(DOWNLOAD_MANAGER_SERVICE)
          return isDownloadManager(manager) ? manager : undefined
        },
      }),
    options: { readableState: 'Starting torrent checker...' },
  },
  {
    factory: (deps, session) =>
      new WatchFolder(deps, {
        downloads: () => {
          const manager = session.service(DOWNLOAD_MANAGER_SERVICE)
          return isDownloadManager(manager) ? manager : undefined
        },
      }),
    options: { readableState: 'Starting watch folder...' },
  },
]

const USAGE = `Usage: tribler [start] [options]
       tribler <command> [arguments] [options]

Runs the Tribler.ts core in the foreground and serves its REST API. The commands talk to a running core:

  download <magnet|file|url>   add a download and show its progress until it is complete
  downloads                    list the downloads
  pause <infohash>             stop a download
  resume <infohash>            resume a stopped download
  remove <infohash>            remove a download (--with-data also deletes its files)
  limit <infohash>             show or set a download's own rate limits (--down, --up)

tribler <command> --help describes each command.

Options:
  --port <n>            REST API port (default 8085, or http_api.port when set; 0 picks a free port)
  --state-dir <dir>     settings, database, keys, logs and resume data (default ~/.tribler-ts,
                        or $TRIBLER_STATE_DIR)
  --api-key <key>       require this key (X-Api-Key header or apikey query parameter) for this run
  --log-level <level>   trace, debug, info, warn, error or silent (default: the log.level setting)
  --open                open the web GUI in the browser once the core has started
  --no-public-network   private, LAN-free mode: no bootstrap servers, trackers, DHT routers, LAN
                        discovery, UPnP/NAT-PMP or version check (also TRIBLER_NO_PUBLIC_NETWORK=1)
  -h, --help            show this help
  -v, --version         show the version

Stop with Ctrl+C or SIGTERM (a second signal forces the exit), or PUT /shutdown.`

const EXIT_USAGE = 2
const EXIT_FAILURE = 1
const EXIT_FORCED = 130

/**
 * The `tribler` command. Resolves with the exit code once the core has stopped (after a signal or
 * `PUT /shutdown`), or at once for `--help`, `--version`, bad arguments and a port already in use.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2))
 * ```
 */
export async function main(argv: readonly string[], io: Partial<CliIo> = {}): Promise<number> {
  const out = io.stdout ?? ((line: string) => process.stdout.write(`${line}\n`))
  const err = io.stderr ?? ((line: string) => process.stderr.write(`${line}\n`))
  const env = io.env ?? process.env
  const signals = io.signals ?? process
  const forceExit = io.forceExit ?? ((code: number) => process.exit(code))

  if (isClientCommand(argv[0])) {
    return runClientCommand(argv, {
      stdout: out,
      stderr: err,
      write: io.write ?? ((text: string) => process.stdout.write(text)),
      isTTY: io.isTTY ?? (io.stdout === undefined && process.stdout.isTTY === true),
      columns: io.columns ?? (process.stdout.columns || 100),
      env,
      cwd: io.cwd ?? process.cwd(),
      signals,
      pollMs: io.pollMs ?? positiveNumber(env.TRIBLER_CLI_POLL_MS) ?? 1000,
      lineEveryMs: io.lineEveryMs ?? positiveNumber(env.TRIBLER_CLI_LINE_MS) ?? 5000,
    })
  }

  let args: ReturnType<typeof parse>
  try {
    args = parse(argv)
  } catch (e) {
    err(`tribler: ${errorMessage(e)}`)
    err('Try tribler --help')
    return EXIT_USAGE
  }
  if (args.help) {
    out(USAGE)
    return 0
  }
  if (args.version) {
    out(`tribler ${triblerVersion()}`)
    return 0
  }

  const stateDir = resolveStateDir(args.stateDir, env)
  const paths = statePaths(stateDir)
  let session: Session
  try {
    mkdirSync(paths.logs, { recursive: true, mode: 0o700 })
    session = new Session({
      stateDir,
      publicNetwork: args.noPublicNetwork ? false : publicNetworkFromEnv(env),
    })
    if (args.apiKey !== undefined) session.config.override('api', 'key', args.apiKey)
  } catch (e) {
    err(`tribler: cannot use the state directory ${stateDir}: ${errorMessage(e)}`)
    return EXIT_FAILURE
  }

  const level = args.logLevel ?? parseLogLevel(env.TRIBLER_LOG_LEVEL) ?? configuredLevel(session)
  const file = fileLogSink(paths.coreLog, session.config.getNumber('log', 'max_file_bytes'))
  const console = new HeldConsole(
    err,
    args.logLevel !== undefined || parseLogLevel(env.TRIBLER_LOG_LEVEL) !== undefined,
  )
  configureLogging({ level, sinks: [file, console.sink] })

  const api = session.addService(() => new RestApi(session, { port: args.port }), {
    early: true,
    readableState: 'Starting HTTP API...',
  })
  try {
    for (const { factory, options } of [...CORE_SERVICES, ...(io.services ?? [])])
      session.addService((deps) => factory(deps, session), options)
  } catch (e) {
    err(`tribler: cannot build the core: ${errorMessage(e)}`)
    file.close()
    return EXIT_FAILURE
  }

  let received = 0
  const onSignal = (name: string): void => {
    received++
    if (received === 1) {
      void session.stop()
      return
    }
    err(`tribler: ${name} again, exiting without a clean shutdown`)
    forceExit(EXIT_FORCED)
  }
  const onInt = (): void => onSignal('SIGINT')
  const onTerm = (): void => onSignal('SIGTERM')
  const onUncaught = (e: unknown): void => session.reportException(e)
  signals.on('SIGINT', onInt)
  signals.on('SIGTERM', onTerm)
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUncaught)
  const stopped = new Promise<{ error?: unknown }>((resolve) => session.lifecycle.once('stopped', resolve))

  try {
    await session.start()
    console.release(true)
    const mode = session.publicNetwork ? '' : ' (public network off)'
    out(`Tribler.ts ${session.version} started${mode}; REST API at ${api.url}`)
    if (existsSync(join(defaultGuiDir(), 'index.html'))) {
      out(`Web GUI at ${api.url}/ui/`)
      if (args.open) openBrowser(`${api.url}/ui/`, err)
    } else if (args.open) {
      err('tribler: the web GUI is not built (npm run build); nothing to open')
    }
  } catch (e) {
    console.release(api.url !== '')
    if (e instanceof ApiError && (e.code === 'PORT_IN_USE' || e.code === 'LISTEN_FAILED')) {
      err(
        `tribler: ${e.code === 'PORT_IN_USE' ? `${e.message}; choose another with --port` : errorMessage(e)}`,
      )
      await session.stop()
      cleanup()
      return EXIT_FAILURE
    }
    if (!session.isShuttingDown) {
      const where = api.url === '' ? '' : ` (GET ${api.url}/state reports it)`
      err(`tribler: the core failed to start: ${errorMessage(e)}${where}`)
    }
    if (api.url === '') {
      await session.stop()
      cleanup()
      return EXIT_FAILURE
    }
  }

  const result = await stopped
  cleanup()
  return result.error === undefined ? 0 : EXIT_FAILURE

  function cleanup(): void {
    signals.off('SIGINT', onInt)
    signals.off('SIGTERM', onTerm)
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUncaught)
    file.close()
  }
}

function parse(argv: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      port: { type: 'string' },
      'state-dir': { type: 'string' },
      'api-key': { type: 'string' },
      'log-level': { type: 'string' },
      'no-public-network': { type: 'boolean' },
      open: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  })
  const [command, ...rest] = positionals
  if ((command !== undefined && command !== 'start') || rest.length > 0) {
    throw new Error(`unknown command: ${positionals.join(' ')}`)
  }
  let port: number | undefined
  if (values.port !== undefined) {
    port = Number(values.port)
    if (!/^\d+$/.test(values.port) || port > 65535)
      throw new Error(`--port must be 0…65535, got ${values.port}`)
  }
  let logLevel: LogLevel | undefined
  if (values['log-level'] !== undefined) {
    logLevel = parseLogLevel(values['log-level'])
    if (logLevel === undefined) throw new Error(`unknown log level: ${values['log-level']}`)
  }
  return {
    port,
    logLevel,
    stateDir: values['state-dir'],
    apiKey: values['api-key'],
    noPublicNetwork: values['no-public-network'] === true,
    open: values.open === true,
    help: values.help === true,
    version: values.version === true,
  }
}

/** Opens `url` in the desktop's browser without waiting for it; a failure is one line on stderr. */
function openBrowser(url: string, err: (line: string) => void): void {
  const [command, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '', url]]
        : ['xdg-open', [url]]
  const failed = (e: unknown) =>
    err(`tribler: could not open a browser (${errorMessage(e)}); open ${url} yourself`)
  try {
    const child = spawn(command, args, { detached: true, stdio: 'ignore' })
    child.on('error', failed)
    child.unref()
  } catch (e) {
    failed(e)
  }
}

function positiveNumber(text: string | undefined): number | undefined {
  const n = Number(text)
  return text !== undefined && text !== '' && Number.isFinite(n) && n > 0 ? n : undefined
}

function configuredLevel(session: Session): LogLevel {
  return parseLogLevel(session.config.getString('log', 'level')) ?? 'info'
}

/**
 * The console log sink: warnings and errors, or every record when a level was asked for explicitly. Until the start succeeds it holds records back, so a failed start
 * prints one clear line instead of a trace; the full records are always in the log file.
 */
class HeldConsole {
  readonly #write: (line: string) => void
  readonly #verbose: boolean
  #held: string[] | undefined = []
  #muted = false

  constructor(write: (line: string) => void, verbose: boolean) {
    this.#write = write
    this.#verbose = verbose
  }

  readonly sink: LogSink = (record: LogRecord, line: string) => {
    if (!this.#verbose && record.level !== 'warn' && record.level !== 'error') return
    if (this.#muted) return
    if (this.#held === undefined) this.#write(line)
    else if (this.#held.length < 100) this.#held.push(line)
  }

  /** Prints what was held and everything after it; without `keep`, discards both (the process is about to exit). */
  release(keep: boolean): void {
    const held = this.#held ?? []
    if (!keep) {
      this.#held = []
      this.#muted = true
      return
    }
    this.#held = undefined
    for (const line of held) this.#write(line)
  }
}
