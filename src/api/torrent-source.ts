import { readFile, stat } from 'node:fs/promises'
import { isAbsolute } from 'node:path'
import { type BencodeValue, decode } from '../bencode/index.js'
import { anySignal, TriblerError } from '../common/index.js'
import { DEFAULT_MAX_TORRENT_BYTES } from '../metainfo/index.js'

/** How long fetching a .torrent over HTTP may take, connection and body included. */
export const HTTP_TORRENT_TIMEOUT_MS = 30_000
/** The largest .torrent read from a file or an HTTP response. */
export const MAX_TORRENT_FILE_BYTES = DEFAULT_MAX_TORRENT_BYTES
const MAX_REDIRECTS = 5

/** Why a `uri` parameter could not be turned into a torrent or a magnet. */
export type TorrentSourceErrorCode =
  | 'INVALID_URI'
  | 'FILE_NOT_FOUND'
  | 'UNREADABLE'
  | 'TOO_LARGE'
  | 'HTTP_FAILED'
  | 'HTTP_TIMEOUT'

/** A `uri` failed; the message is meant for the REST client. */
export class TorrentSourceError extends TriblerError<TorrentSourceErrorCode> {}

/** What an http(s) URL gave: the .torrent's bytes, or a magnet link it redirected to. */
export type FetchedTorrent =
  | { readonly kind: 'torrent'; readonly torrent: Buffer }
  | { readonly kind: 'magnet'; readonly magnet: string }

/**
 * The local path of a `file:` URI as the GUI sends it (`file:` + the percent-encoded absolute path; `file:///x`
 * and `file://localhost/x` work too), percent-decoded like Python's `url2pathname`.
 *
 * @throws {TorrentSourceError} `INVALID_URI` for another host or a relative path.
 */
export function filePathOfUri(uri: string): string {
  let rest = uri.slice('file:'.length)
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2)
    const host = slash === -1 ? rest.slice(2) : rest.slice(2, slash)
    if (host !== '' && host.toLowerCase() !== 'localhost') {
      throw new TorrentSourceError('INVALID_URI', { host }, `the file: URI names another host (${host})`)
    }
    rest = slash === -1 ? '/' : rest.slice(slash)
  }
  const path = percentDecode(rest)
  if (!isAbsolute(path)) {
    throw new TorrentSourceError('INVALID_URI', { path }, 'the file: URI must hold an absolute path')
  }
  return path
}

/** Python's `unquote`: `%xx` escapes become bytes (UTF-8); a malformed escape is kept as it is. */
export function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text.replace(/(%[0-9a-fA-F]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run)
      } catch {
        return run
      }
    })
  }
}

/** Python's `unquote_plus`: `+` is a space, then {@link percentDecode}. */
export function unquotePlus(text: string): string {
  return percentDecode(text.replaceAll('+', ' '))
}

/**
 * The bytes of a local .torrent file, at most {@link MAX_TORRENT_FILE_BYTES}.
 *
 * @throws {TorrentSourceError} `FILE_NOT_FOUND`, `UNREADABLE`, `TOO_LARGE`.
 */
export async function readTorrentFile(path: string): Promise<Buffer> {
  const info = await stat(path).catch((err: unknown) => {
    const code = (err as { code?: unknown }).code
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new TorrentSourceError('FILE_NOT_FOUND', { path }, `file not found: ${path}`)
    }
    throw new TorrentSourceError('UNREADABLE', { path, cause: err }, `cannot read ${path}: ${String(code)}`)
  })
  if (!info.isFile()) throw new TorrentSourceError('UNREADABLE', { path }, `not a file: ${path}`)
  if (info.size > MAX_TORRENT_FILE_BYTES) {
    throw new TorrentSourceError('TOO_LARGE', { path }, `${path} is too large for a .torrent file`)
  }
  return readFile(path).catch((err: unknown) => {
    const code = (err as { code?: unknown }).code
    throw new TorrentSourceError('UNREADABLE', { path, cause: err }, `cannot read ${path}: ${String(code)}`)
  })
}

/**
 * Fetches a .torrent over http(s), following up to five redirects; a redirect to a `magnet:` link (as some
 * trackers' download links do) gives that magnet. The body may be at most {@link MAX_TORRENT_FILE_BYTES}.
 *
 * @throws {TorrentSourceError} `HTTP_FAILED` (DNS, connection, HTTP status, too many redirects), `HTTP_TIMEOUT`,
 *   `TOO_LARGE`, `INVALID_URI`.
 */
export async function fetchTorrentUrl(
  url: string,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<FetchedTorrent> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? HTTP_TORRENT_TIMEOUT_MS)
  const signal = anySignal(timeout, opts.signal)
  let current = url
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    let parsed: URL
    try {
      parsed = new URL(current)
    } catch {
      throw new TorrentSourceError('INVALID_URI', { url: current }, `invalid URL: ${current}`)
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TorrentSourceError('INVALID_URI', { url: current }, `not an http(s) URL: ${current}`)
    }
    try {
      const response = await fetch(parsed, {
        redirect: 'manual',
        signal,
        headers: { accept: 'application/x-bittorrent, */*' },
      })
      const location = response.headers.get('location')
      if (response.status >= 300 && response.status < 400 && location !== null) {
        await response.body?.cancel()
        if (/^magnet:/i.test(location)) return { kind: 'magnet', magnet: location }
        current = new URL(location, parsed).href
        continue
      }
      if (!response.ok) {
        await response.body?.cancel()
        throw new TorrentSourceError(
          'HTTP_FAILED',
          { url: current, status: response.status },
          `${current} answered HTTP ${response.status}`,
        )
      }
      return { kind: 'torrent', torrent: await readCapped(response, current) }
    } catch (err) {
      if (err instanceof TorrentSourceError) throw err
      if (timeout.aborted) {
        throw new TorrentSourceError('HTTP_TIMEOUT', { url: current }, `fetching ${current} timed out`)
      }
      throw new TorrentSourceError(
        'HTTP_FAILED',
        { url: current, cause: err },
        `cannot fetch ${current}: ${fetchFailure(err)}`,
      )
    }
  }
  throw new TorrentSourceError('HTTP_FAILED', { url }, `too many redirects fetching ${url}`)
}

async function readCapped(response: Response, url: string): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN)
  if (declared > MAX_TORRENT_FILE_BYTES) {
    await response.body?.cancel()
    throw new TorrentSourceError('TOO_LARGE', { url }, `${url} is too large for a .torrent file`)
  }
  const chunks: Buffer[] = []
  let total = 0
  if (response.body === null) return Buffer.alloc(0)
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    total += chunk.length
    if (total > MAX_TORRENT_FILE_BYTES) {
      await response.body.cancel().catch(() => {})
      throw new TorrentSourceError('TOO_LARGE', { url }, `${url} is too large for a .torrent file`)
    }
    chunks.push(Buffer.from(chunk))
  }
  return Buffer.concat(chunks)
}

// undici reports every network failure as `TypeError: fetch failed` with the system error as its cause
function fetchFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause
  if (typeof cause?.code === 'string') return cause.code
  if (typeof cause?.message === 'string') return cause.message
  return err instanceof Error ? err.message : String(err)
}

const UTF8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A decoded .torrent as JSON: byte strings become text (UTF-8 when valid, else one character per byte, as the
 * reference's latin-1 strings), `pieces` becomes base64, integers beyond the safe range become strings.
 */
export function metainfoJson(torrent: Uint8Array): Record<string, unknown> {
  const value = toJson(decode(torrent, { strict: false }), '')
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {}
}

function toJson(value: BencodeValue, key: string): unknown {
  if (typeof value === 'number') return value
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (value instanceof Uint8Array) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    if (key === 'pieces') return bytes.toString('base64')
    return text(bytes)
  }
  if (Array.isArray(value)) return value.map((item) => toJson(item, ''))
  const out: Record<string, unknown> = Object.create(null)
  for (const [rawKey, item] of Object.entries(value)) {
    // keys are binary strings, one character per byte
    const name = text(Buffer.from(rawKey, 'latin1'))
    out[name] = toJson(item, name)
  }
  return out
}

function text(bytes: Buffer): string {
  try {
    return UTF8.decode(bytes)
  } catch {
    return bytes.toString('latin1')
  }
}
