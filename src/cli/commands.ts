import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { errorMessage } from '../common/index.js'
import { CoreClient, CoreClientError, type CoreEvent } from './client.js'
import { type DownloadView, formatDownloads, formatProgress, formatRate } from './format.js'

/** Subcommands that talk to a running core over its REST API. */
export const CLIENT_COMMANDS = ['download', 'downloads', 'pause', 'resume', 'remove', 'limit'] as const
export type ClientCommand = (typeof CLIENT_COMMANDS)[number]

/** True when `name` is one of {@link CLIENT_COMMANDS}. */
export function isClientCommand(name: string | undefined): name is ClientCommand {
  return (CLIENT_COMMANDS as readonly string[]).includes(name ?? '')
}

/** Where the client commands write and what they read. */
export interface ClientIo {
  /** One line to stdout. */
  readonly stdout: (line: string) => void
  /** One line to stderr. */
  readonly stderr: (line: string) => void
  /** Raw text to stdout (the redrawn progress line). */
  readonly write: (text: string) => void
  /** stdout is a terminal: redraw one progress line instead of printing lines. */
  readonly isTTY: boolean
  /** Terminal width for the progress line. */
  readonly columns: number
  readonly env: NodeJS.ProcessEnv
  readonly cwd: string
  readonly signals: Pick<NodeJS.Process, 'on' | 'off'>
  /** How often the download is polled (default 1 s). */
  readonly pollMs: number
  /** How often a progress line is printed when stdout is not a terminal (default 5 s; state changes always). */
  readonly lineEveryMs: number
}

const EXIT_FAILURE = 1
const EXIT_USAGE = 2
const EXIT_INTERRUPTED = 130
const DEFAULT_HOST = '127.0.0.1'
const DEFAULT_PORT = 8085
/** A core that was just launched needs a moment before its late endpoints answer. */
const START_WAIT_MS = 60_000

const CONNECTION_HELP = `Connection options:
  --host <address>      the core's REST address (default 127.0.0.1)
  --port <n>            the core's REST port (default 8085)
  --api-key <key>       the core's API key (default $TRIBLER_API_KEY)
  -h, --help            show this help`

/** Help text of each client command. */
export const CLIENT_USAGE: Record<ClientCommand, string> = {
  download: `Usage: tribler download <magnet|file.torrent|url> [options]

Adds a download to the running Tribler core and shows its progress until it is complete and verified. Ctrl+C stops
watching; the download keeps running in the core (see \`tribler downloads\`). A core must be running (start it with
\`tribler\`); this command does not start one.

Options:
  --hops <n>            anonymity hops 0-3 (default 0; more than 0 also seeds anonymously)
  --dest <dir>          directory to save into (default: the core's download folder)
  --select <path>       download only this file (its path inside the torrent); repeat for more files
  --down-limit <rate>   this download's download limit (default 0, unlimited; see \`tribler limit --help\`)
  --up-limit <rate>     this download's upload limit (default 0, unlimited)

${CONNECTION_HELP}

Exit status: 0 when the download is complete, 1 when it fails or the core cannot be reached, 2 for bad arguments,
130 when interrupted.`,
  downloads: `Usage: tribler downloads [options]

Lists the downloads of the running Tribler core: infohash (first 8 characters), name, size, progress, state, rates
and connected peers.

${CONNECTION_HELP}`,
  pause: `Usage: tribler pause <infohash> [options]

Stops a download in the running core. <infohash> is the full infohash or a unique prefix of at least 4 characters.

${CONNECTION_HELP}`,
  resume: `Usage: tribler resume <infohash> [options]

Resumes a stopped download in the running core. <infohash> is the full infohash or a unique prefix of at least 4
characters.

${CONNECTION_HELP}`,
  limit: `Usage: tribler limit <infohash> [--down <rate>] [--up <rate>] [options]

Sets a download's own rate limits in the running core; without --down or --up it shows them. A rate is bytes per
second, with an optional suffix k, m or g (KiB/s, MiB/s, GiB/s); 0 is unlimited. The core's session-wide limits
(libtorrent.max_download_rate and max_upload_rate) apply too: the lower one holds. The limits stay with the download
across restarts. <infohash> is the full infohash or a unique prefix of at least 4 characters.

Options:
  --down <rate>         download limit
  --up <rate>           upload limit

${CONNECTION_HELP}`,
  remove: `Usage: tribler remove <infohash> [--with-data] [options]

Removes a download from the running core. The downloaded files stay on disk unless --with-data is given.
<infohash> is the full infohash or a unique prefix of at least 4 characters.

Options:
  --with-data           also delete the downloaded files

${CONNECTION_HELP}`,
}

class UsageError extends Error {}

/** Parsed arguments of a client command. */
export interface ClientArgs {
  readonly command: ClientCommand
  readonly help: boolean
  readonly host: string
  readonly port: number
  readonly apiKey: string | undefined
  /** The download's URI, or the infohash for pause/resume/remove. */
  readonly target: string | undefined
  readonly hops: number
  readonly dest: string | undefined
  readonly select: readonly string[]
  readonly withData: boolean
  /** Rate limits to set in bytes/s (`--down-limit`/`--up-limit` of download, `--down`/`--up` of limit). */
  readonly downLimit: number | undefined
  readonly upLimit: number | undefined
}

const RATE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

/** A rate as the CLI takes it: bytes per second with an optional k/m/g suffix (powers of 1024); 0 = unlimited. */
export function parseRate(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b?(?:\/s)?)?$/i.exec(text.trim())
  const value = match === null ? Number.NaN : Number(match[1]) * RATE_UNITS[match[2]!.toLowerCase()]!
  if (!Number.isFinite(value) || !Number.isSafeInteger(Math.round(value))) {
    throw new UsageError(`${option} must be bytes per second, e.g. 500k or 2m (0 = unlimited), got ${text}`)
  }
  return Math.round(value)
}

/** Parses `argv` (starting with the command name); throws an `Error` with a usage message when it is invalid. */
export function parseClientArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): ClientArgs {
  const [command, ...rest] = argv
  if (!isClientCommand(command)) throw new UsageError(`unknown command: ${command ?? ''}`)
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'api-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...(command === 'download'
        ? {
            hops: { type: 'string' },
            dest: { type: 'string' },
            select: { type: 'string', multiple: true },
            'down-limit': { type: 'string' },
            'up-limit': { type: 'string' },
          }
        : {}),
      ...(command === 'limit' ? { down: { type: 'string' }, up: { type: 'string' } } : {}),
      ...(command === 'remove' ? { 'with-data': { type: 'boolean' } } : {}),
    },
  })
  const help = values.help === true
  const wanted = command === 'downloads' ? 0 : 1
  if (!help && positionals.length !== wanted) {
    const what = command === 'download' ? 'one magnet link, .torrent file or URL' : 'one infohash'
    throw new UsageError(
      wanted === 0
        ? `${command} takes no arguments, got: ${positionals.join(' ')}`
        : `${command} needs ${what}`,
    )
  }
  let port = DEFAULT_PORT
  if (values.port !== undefined) {
    port = Number(values.port)
    if (!/^\d+$/.test(values.port) || port < 1 || port > 65535)
      throw new UsageError(`--port must be 1…65535, got ${values.port}`)
  }
  let hops = 0
  const hopsText = (values as { hops?: string }).hops
  if (hopsText !== undefined) {
    hops = Number(hopsText)
    if (!/^[0-3]$/.test(hopsText)) throw new UsageError(`--hops must be 0…3, got ${hopsText}`)
  }
  const dest = (values as { dest?: string }).dest
  if (dest === '') throw new UsageError('--dest needs a directory')
  const limits = values as { 'down-limit'?: string; 'up-limit'?: string; down?: string; up?: string }
  const downText = limits['down-limit'] ?? limits.down
  const upText = limits['up-limit'] ?? limits.up
  const optionName = (name: string): string => (command === 'limit' ? `--${name}` : `--${name}-limit`)
  const apiKey = values['api-key'] ?? env.TRIBLER_API_KEY
  return {
    command,
    help,
    host: values.host ?? DEFAULT_HOST,
    port,
    apiKey: apiKey === '' ? undefined : apiKey,
    target: positionals[0],
    hops,
    dest,
    select: (values as { select?: string[] }).select ?? [],
    withData: (values as { 'with-data'?: boolean })['with-data'] === true,
    downLimit: downText === undefined ? undefined : parseRate(downText, optionName('down')),
    upLimit: upText === undefined ? undefined : parseRate(upText, optionName('up')),
  }
}

/**
 * The URI `PUT /downloads` takes for what the user typed: magnet and http(s) links as they are, a `file:` URI as
 * it is, and a local path as `file:` plus its percent-encoded absolute path. Throws when the file does not exist.
 */
export function downloadUri(input: string, cwd: string): string {
  if (/^(magnet:|https?:\/\/|file:)/i.test(input)) return input
  const path = resolve(cwd, input)
  if (!existsSync(path)) throw new UsageError(`no such file: ${input}`)
  return `file:${pathToFileURL(path).pathname}`
}

/**
 * Runs a client command (`argv` starts with its name) against the core at `--host`/`--port`; resolves with the exit
 * code.
 */
export async function runClientCommand(argv: readonly string[], io: ClientIo): Promise<number> {
  let args: ClientArgs
  try {
    args = parseClientArgs(argv, io.env)
  } catch (e) {
    io.stderr(`tribler: ${errorMessage(e)}`)
    io.stderr(`Try tribler ${isClientCommand(argv[0]) ? `${argv[0]} ` : ''}--help`)
    return EXIT_USAGE
  }
  if (args.help) {
    io.stdout(CLIENT_USAGE[args.command])
    return 0
  }
  const core = new CoreClient({ host: args.host, port: args.port, apiKey: args.apiKey })
  const interrupted = new AbortController()
  const onSignal = (): void => interrupted.abort()
  io.signals.on('SIGINT', onSignal)
  io.signals.on('SIGTERM', onSignal)
  try {
    if (args.command === 'download') return await download(args, core, io, interrupted.signal)
    await core.waitStarted({ timeoutMs: START_WAIT_MS, signal: interrupted.signal })
    if (args.command === 'downloads') return await list(core, io)
    return await change(args, core, io)
  } catch (e) {
    if (interrupted.signal.aborted) return EXIT_INTERRUPTED
    io.stderr(`tribler: ${errorMessage(e)}`)
    return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE
  } finally {
    io.signals.off('SIGINT', onSignal)
    io.signals.off('SIGTERM', onSignal)
  }
}

async function downloads(core: CoreClient, signal?: AbortSignal): Promise<DownloadView[]> {
  const body = await core.request<{ downloads?: unknown }>('GET', '/downloads', undefined, { signal })
  if (!Array.isArray(body.downloads))
    throw new CoreClientError('BAD_RESPONSE', {}, 'GET /downloads sent no list')
  return body.downloads as DownloadView[]
}

async function list(core: CoreClient, io: ClientIo): Promise<number> {
  const all = await downloads(core)
  if (all.length === 0) io.stdout('No downloads.')
  else for (const line of formatDownloads(all)) io.stdout(line)
  return 0
}

/** The download a full infohash or a unique prefix names. */
async function resolveInfohash(core: CoreClient, text: string): Promise<DownloadView | { infohash: string }> {
  const wanted = text.toLowerCase()
  if (!/^[0-9a-f]+$/.test(wanted) || wanted.length > 40) throw new UsageError(`not an infohash: ${text}`)
  const all = await downloads(core)
  const exact = all.find((d) => d.infohash === wanted)
  if (exact !== undefined) return exact
  if (wanted.length === 40) return { infohash: wanted }
  if (wanted.length < 4) throw new UsageError(`give at least 4 characters of the infohash, got ${text}`)
  const matches = all.filter((d) => d.infohash.startsWith(wanted))
  if (matches.length === 0)
    throw new CoreClientError('REST_ERROR', {}, `no download has an infohash starting with ${text}`)
  if (matches.length > 1)
    throw new UsageError(`${text} matches ${matches.length} downloads; give more characters`)
  return matches[0] as DownloadView
}

async function change(args: ClientArgs, core: CoreClient, io: ClientIo): Promise<number> {
  const target = await resolveInfohash(core, args.target ?? '')
  const label = 'name' in target ? `${target.name} (${target.infohash.slice(0, 8)})` : target.infohash
  const path = `/downloads/${target.infohash}`
  if (args.command === 'remove') {
    await core.request('DELETE', path, { remove_data: args.withData ? '1' : '0' })
    io.stdout(`Removed ${label}${args.withData ? ' and its files' : '; its files stay on disk'}`)
  } else if (args.command === 'limit') {
    if (args.downLimit !== undefined || args.upLimit !== undefined) {
      await core.request('PATCH', path, {
        download_limit: args.downLimit === undefined ? undefined : String(args.downLimit),
        upload_limit: args.upLimit === undefined ? undefined : String(args.upLimit),
      })
    }
    const now = (await downloads(core)).find((d) => d.infohash === target.infohash)
    if (now?.download_limit === undefined || now.upload_limit === undefined) {
      throw new CoreClientError('BAD_RESPONSE', {}, 'the core does not report per-download rate limits')
    }
    io.stdout(
      `${label}: download limit ${formatLimit(now.download_limit)}, upload limit ${formatLimit(now.upload_limit)}`,
    )
  } else {
    await core.request('PATCH', path, { state: args.command === 'pause' ? 'stop' : 'resume' })
    io.stdout(`${args.command === 'pause' ? 'Paused' : 'Resumed'} ${label}`)
  }
  return 0
}

async function download(
  args: ClientArgs,
  core: CoreClient,
  io: ClientIo,
  interrupted: AbortSignal,
): Promise<number> {
  const uri = downloadUri(args.target ?? '', io.cwd)
  await core.waitStarted({ timeoutMs: START_WAIT_MS, signal: interrupted })

  // Listen before adding, so a torrent_finished sent right after the add is not missed.
  let infohash: string | undefined
  const finished = new Set<string>()
  const failed = new Map<string, string>()
  const stopEvents = new AbortController()
  const onEvent = ({ type, event }: CoreEvent): void => {
    const ih = (event as { infohash?: unknown } | undefined)?.infohash
    if (typeof ih !== 'string') return
    if (type === 'torrent_finished') finished.add(ih)
    if (type === 'torrent_error')
      failed.set(ih, String((event as { error?: unknown }).error ?? 'unknown error'))
  }
  // Without the events stream, completion is still seen as the seeding state.
  void core
    .events(onEvent, { signal: AbortSignal.any([stopEvents.signal, interrupted]) })
    .catch(() => undefined)

  const line = new ProgressLine(io)
  try {
    const added = await core.request<{ infohash?: unknown }>(
      'PUT',
      '/downloads',
      {
        uri,
        anon_hops: String(args.hops),
        safe_seeding: args.hops > 0 ? '1' : undefined,
        destination: args.dest === undefined ? undefined : resolve(io.cwd, args.dest),
        'selected_files[]': args.select.length > 0 ? args.select : undefined,
        download_limit: args.downLimit === undefined ? undefined : String(args.downLimit),
        upload_limit: args.upLimit === undefined ? undefined : String(args.upLimit),
      },
      { signal: interrupted },
    )
    if (typeof added.infohash !== 'string')
      throw new CoreClientError('BAD_RESPONSE', {}, 'PUT /downloads sent no infohash')
    const ih = added.infohash
    infohash = ih
    let announced = false
    let hinted = false
    for (;;) {
      const current = (await downloads(core, interrupted)).find((d) => d.infohash === ih)
      if (current === undefined) {
        line.end()
        io.stderr(`tribler: the download ${ih} was removed from the core`)
        return EXIT_FAILURE
      }
      if (!announced) {
        announced = true
        io.stdout(`Downloading ${current.name} (${ih})${args.hops > 0 ? ` over ${args.hops} hops` : ''}`)
      }
      const error =
        current.status === 'DLSTATUS_STOPPED_ON_ERROR' ? current.error || 'unknown error' : failed.get(ih)
      if (error !== undefined) {
        line.show(current, true)
        line.end()
        io.stderr(`tribler: download failed: ${error}`)
        return EXIT_FAILURE
      }
      const complete =
        current.status === 'DLSTATUS_SEEDING' ||
        (current.progress >= 1 && finished.has(ih) && current.status !== 'DLSTATUS_HASHCHECKING')
      line.show(complete ? { ...current, progress: 1 } : current, complete)
      if (complete) {
        line.end()
        io.stdout(`Completed: ${current.name} (${ih}); it keeps seeding in the core`)
        return 0
      }
      if (current.status === 'DLSTATUS_STOPPED' && current.progress < 1 && !hinted) {
        hinted = true
        line.end()
        io.stderr(`tribler: the download is stopped; \`tribler resume ${ih.slice(0, 8)}\` resumes it`)
      }
      await sleepUnless(io.pollMs, interrupted)
    }
  } catch (e) {
    line.end()
    if (interrupted.aborted) {
      io.stderr(
        infohash === undefined
          ? 'tribler: interrupted'
          : `tribler: interrupted; the download keeps running in the core (see \`tribler downloads\`)`,
      )
      return EXIT_INTERRUPTED
    }
    throw e
  } finally {
    stopEvents.abort()
  }
}

function formatLimit(bytesPerSec: number): string {
  return bytesPerSec === 0 ? 'unlimited' : formatRate(bytesPerSec)
}

function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * The progress display: on a terminal one line redrawn in place; otherwise a line when the state changes, and at
 * most one every `lineEveryMs` in between.
 */
class ProgressLine {
  readonly #io: ClientIo
  #drawn = false
  #lastState = ''
  #lastLineAt = 0

  constructor(io: ClientIo) {
    this.#io = io
  }

  show(d: DownloadView, final: boolean): void {
    if (this.#io.isTTY) {
      const barWidth = Math.max(0, Math.min(30, this.#io.columns - 90))
      const text = formatProgress(d, { barWidth })
      this.#io.write(`\r\x1b[2K${text.slice(0, Math.max(20, this.#io.columns - 1))}`)
      this.#drawn = true
      return
    }
    const now = Date.now()
    if (final || d.status !== this.#lastState || now - this.#lastLineAt >= this.#io.lineEveryMs) {
      this.#io.stdout(formatProgress(d))
      this.#lastState = d.status
      this.#lastLineAt = now
    }
  }

  /** Ends a redrawn line so the next output starts on its own line. */
  end(): void {
    if (this.#drawn) this.#io.write('\n')
    this.#drawn = false
  }
}
