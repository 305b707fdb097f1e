import { isIP } from 'node:net'
import { type BencodeDict, type BencodeValue, decode } from '../../bencode/index.js'
import { logger, toHex } from '../../common/index.js'
import { canonicalHost } from '../../net/index.js'
import { parseCompactPeers, uniquePeers } from './compact.js'
import {
  type AnnounceRequest,
  type AnnounceResponse,
  type PeerAddress,
  type ScrapeEntry,
  type ScrapeResponse,
  type TrackerClient,
  TrackerError,
  type TrackerRequestOptions,
} from './types.js'
import { checkRequest } from './udp.js'

const log = logger('bittorrent:tracker:http')

/** The subset of `fetch` the HTTP client uses, so tests and proxies can replace it. */
export type FetchFunction = (
  url: string,
  init: { signal: AbortSignal; redirect: 'manual'; headers: Record<string, string> },
) => Promise<Response>

/** Options of an {@link HttpTrackerClient}. */
export interface HttpTrackerOptions {
  /** Time allowed for one request, redirects included (default 30 s). */
  timeoutMs?: number
  /** Largest response body accepted (default 1 MiB). */
  maxResponseBytes?: number
  /** Redirects followed before giving up (default 4). */
  maxRedirects?: number
  /** The `User-Agent` header. */
  userAgent?: string
}

/** The interval used when a tracker does not give one (seconds). */
const DEFAULT_INTERVAL_SEC = 1800
const UNRESERVED = /^[A-Za-z0-9.\-_~]$/

/**
 * Percent-encodes bytes for a query string: unreserved characters stay, every other byte becomes `%XX`
 * (BEP 3: info_hash and peer_id are raw bytes, not text).
 */
export function percentEncodeBytes(bytes: Uint8Array): string {
  let out = ''
  for (const byte of bytes) {
    const char = String.fromCharCode(byte)
    out += UNRESERVED.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/**
 * The scrape URL of an announce URL (the convention every tracker follows): the last path segment must start with
 * `announce`, which becomes `scrape`. Undefined when the tracker has no scrape URL.
 */
export function scrapeUrlOf(announceUrl: string): string | undefined {
  const queryStart = announceUrl.indexOf('?')
  const base = queryStart < 0 ? announceUrl : announceUrl.slice(0, queryStart)
  const query = queryStart < 0 ? '' : announceUrl.slice(queryStart)
  const slash = base.lastIndexOf('/')
  if (slash < 0 || !base.slice(slash + 1).startsWith('announce')) return undefined
  return `${base.slice(0, slash + 1)}scrape${base.slice(slash + 1 + 'announce'.length)}${query}`
}

/** The announce URL with the BEP 3 query parameters appended. */
export function announceUrlWithQuery(url: string, request: AnnounceRequest): string {
  const params: string[] = [
    `info_hash=${percentEncodeBytes(request.infoHash)}`,
    `peer_id=${percentEncodeBytes(request.peerId)}`,
    `port=${request.port}`,
    `uploaded=${Math.max(0, Math.floor(request.uploaded))}`,
    `downloaded=${Math.max(0, Math.floor(request.downloaded))}`,
    `left=${Math.max(0, Math.floor(request.left))}`,
    'compact=1',
  ]
  if (request.event !== 'none') params.push(`event=${request.event}`)
  if (request.numWant !== undefined) params.push(`numwant=${request.numWant}`)
  if (request.key !== undefined) params.push(`key=${(request.key >>> 0).toString(16).padStart(8, '0')}`)
  if (request.trackerId !== undefined)
    params.push(`trackerid=${percentEncodeBytes(Buffer.from(request.trackerId, 'latin1'))}`)
  return `${url}${url.includes('?') ? '&' : '?'}${params.join('&')}`
}

/**
 * An HTTP(S) tracker client (BEP 3, 7, 23): announce with compact IPv4 and IPv6 peers or dictionary peers, and
 * scrape. Redirects are followed a bounded number of times, bodies are size-limited and every request has a timeout.
 *
 * @example
 * ```ts
 * const client = new HttpTrackerClient()
 * const res = await client.announce('http://127.0.0.1:6969/announce', request, { signal })
 * ```
 */
export class HttpTrackerClient implements TrackerClient {
  readonly #fetch: FetchFunction
  readonly #timeoutMs: number
  readonly #maxBytes: number
  readonly #maxRedirects: number
  readonly #userAgent: string

  constructor(deps: { fetch?: FetchFunction } = {}, options: HttpTrackerOptions = {}) {
    this.#fetch = deps.fetch ?? ((url, init) => fetch(url, init))
    this.#timeoutMs = options.timeoutMs ?? 30_000
    this.#maxBytes = options.maxResponseBytes ?? 1024 * 1024
    this.#maxRedirects = options.maxRedirects ?? 4
    this.#userAgent = options.userAgent ?? 'Tribler.ts'
  }

  async announce(
    url: string,
    request: AnnounceRequest,
    opts: TrackerRequestOptions = {},
  ): Promise<AnnounceResponse> {
    checkRequest(request)
    checkHttpUrl(url)
    const body = await this.#get(announceUrlWithQuery(url, request), opts.signal)
    return parseHttpAnnounce(body)
  }

  async scrape(
    url: string,
    infoHashes: readonly Uint8Array[],
    opts: TrackerRequestOptions = {},
  ): Promise<ScrapeResponse> {
    checkHttpUrl(url)
    const scrapeUrl = scrapeUrlOf(url)
    if (scrapeUrl === undefined) throw new TrackerError('NOT_SUPPORTED', { url, reason: 'no scrape URL' })
    for (const hash of infoHashes) {
      if (hash.length !== 20)
        throw new TrackerError('INVALID_REQUEST', { field: 'infoHash', length: hash.length })
    }
    const query = infoHashes.map((h) => `info_hash=${percentEncodeBytes(h)}`).join('&')
    const full = query === '' ? scrapeUrl : `${scrapeUrl}${scrapeUrl.includes('?') ? '&' : '?'}${query}`
    return parseHttpScrape(await this.#get(full, opts.signal))
  }

  async #get(url: string, signal?: AbortSignal): Promise<Buffer> {
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout])
    let current = url
    try {
      for (let redirects = 0; ; redirects++) {
        const response = await this.#fetch(current, {
          signal: combined,
          redirect: 'manual',
          headers: { 'user-agent': this.#userAgent, 'accept-encoding': 'identity' },
        })
        if (response.status >= 300 && response.status < 400) {
          const location = response.headers.get('location')
          await response.body?.cancel()
          if (location === null) throw new TrackerError('HTTP_STATUS', { status: response.status })
          if (redirects >= this.#maxRedirects)
            throw new TrackerError('TOO_MANY_REDIRECTS', { max: this.#maxRedirects })
          current = new URL(location, current).toString()
          checkHttpUrl(current)
          log.debug('tracker redirect', { status: response.status })
          continue
        }
        if (response.status !== 200) {
          await response.body?.cancel()
          throw new TrackerError('HTTP_STATUS', { status: response.status })
        }
        return await readLimited(response, this.#maxBytes)
      }
    } catch (err) {
      if (err instanceof TrackerError) throw err
      if (signal?.aborted === true) throw new TrackerError('ABORTED', { cause: err })
      if (timeout.aborted) throw new TrackerError('TIMEOUT', { timeoutMs: this.#timeoutMs })
      throw new TrackerError('NETWORK', { cause: err })
    }
  }
}

function checkHttpUrl(url: string): void {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch (err) {
    throw new TrackerError('INVALID_URL', { url, cause: err })
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TrackerError('INVALID_URL', { url, reason: 'not http' })
  }
}

async function readLimited(response: Response, maxBytes: number): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN)
  if (declared > maxBytes) {
    await response.body?.cancel()
    throw new TrackerError('RESPONSE_TOO_LARGE', { maxBytes, length: declared })
  }
  if (response.body === null) return Buffer.alloc(0)
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of response.body) {
    total += chunk.length
    if (total > maxBytes) {
      await response.body.cancel().catch(() => undefined)
      throw new TrackerError('RESPONSE_TOO_LARGE', { maxBytes })
    }
    chunks.push(Buffer.from(chunk))
  }
  return Buffer.concat(chunks)
}

function decodeDict(body: Uint8Array): BencodeDict {
  let value: BencodeValue
  try {
    value = decode(body, { strict: false, maxDepth: 16, maxItems: 200_000 })
  } catch (err) {
    throw new TrackerError('MALFORMED_RESPONSE', { reason: 'bencode', cause: err })
  }
  if (!isDict(value)) throw new TrackerError('MALFORMED_RESPONSE', { reason: 'not a dictionary' })
  return value
}

/** Whether a bencode value is a dictionary. */
export function isDict(value: BencodeValue | undefined): value is BencodeDict {
  return typeof value === 'object' && !(value instanceof Uint8Array) && !Array.isArray(value)
}

function optionalCount(dict: BencodeDict, key: string): number | undefined {
  const value = dict[key]
  if (value === undefined) return undefined
  if (typeof value !== 'number' || value < 0) throw new TrackerError('MALFORMED_RESPONSE', { field: key })
  return value
}

function optionalText(dict: BencodeDict, key: string): string | undefined {
  const value = dict[key]
  if (value === undefined) return undefined
  if (!(value instanceof Uint8Array)) throw new TrackerError('MALFORMED_RESPONSE', { field: key })
  return Buffer.from(value).toString('utf8')
}

/** Parses the body of an HTTP announce reply. */
export function parseHttpAnnounce(body: Uint8Array): AnnounceResponse {
  const dict = decodeDict(body)
  const failure = dict['failure reason']
  if (failure !== undefined) {
    const reason = failure instanceof Uint8Array ? Buffer.from(failure).toString('utf8') : 'unknown'
    throw new TrackerError('TRACKER_FAILURE', { reason })
  }
  const peers: PeerAddress[] = []
  const v4 = dict.peers
  if (v4 instanceof Uint8Array) {
    const parsed = parseCompactPeers(v4, 4)
    if (parsed === undefined) throw new TrackerError('MALFORMED_RESPONSE', { field: 'peers' })
    peers.push(...parsed)
  } else if (Array.isArray(v4)) {
    for (const entry of v4) {
      const peer = dictPeer(entry)
      if (peer !== undefined) peers.push(peer)
    }
  } else if (v4 !== undefined) {
    throw new TrackerError('MALFORMED_RESPONSE', { field: 'peers' })
  }
  const v6 = dict.peers6
  if (v6 instanceof Uint8Array) {
    const parsed = parseCompactPeers(v6, 6)
    if (parsed === undefined) throw new TrackerError('MALFORMED_RESPONSE', { field: 'peers6' })
    peers.push(...parsed)
  } else if (v6 !== undefined) {
    throw new TrackerError('MALFORMED_RESPONSE', { field: 'peers6' })
  }
  const response: {
    -readonly [K in keyof AnnounceResponse]: AnnounceResponse[K]
  } = {
    intervalSec: optionalCount(dict, 'interval') ?? DEFAULT_INTERVAL_SEC,
    peers: uniquePeers(peers),
  }
  const minInterval = optionalCount(dict, 'min interval')
  if (minInterval !== undefined) response.minIntervalSec = minInterval
  const complete = optionalCount(dict, 'complete')
  if (complete !== undefined) response.complete = complete
  const incomplete = optionalCount(dict, 'incomplete')
  if (incomplete !== undefined) response.incomplete = incomplete
  const warning = optionalText(dict, 'warning message')
  if (warning !== undefined) response.warning = warning
  const trackerIdValue = dict['tracker id']
  if (trackerIdValue instanceof Uint8Array)
    response.trackerId = Buffer.from(trackerIdValue).toString('latin1')
  return response
}

/** A non-compact peer entry `{ ip, port, peer id }`; entries with a bad address are skipped. */
function dictPeer(entry: BencodeValue): PeerAddress | undefined {
  if (!isDict(entry)) return undefined
  const ip = entry.ip
  const port = entry.port
  if (!(ip instanceof Uint8Array) || typeof port !== 'number' || port <= 0 || port > 0xffff) return undefined
  const host = Buffer.from(ip).toString('latin1')
  if (isIP(host) === 0) return undefined
  const peerId = entry['peer id']
  return peerId instanceof Uint8Array && peerId.length === 20
    ? { host: canonicalHost(host), port, peerId: Buffer.from(peerId) }
    : { host: canonicalHost(host), port }
}

/** Parses the body of an HTTP scrape reply. */
export function parseHttpScrape(body: Uint8Array): ScrapeResponse {
  const dict = decodeDict(body)
  const failure = dict['failure reason']
  if (failure !== undefined) {
    const reason = failure instanceof Uint8Array ? Buffer.from(failure).toString('utf8') : 'unknown'
    throw new TrackerError('TRACKER_FAILURE', { reason })
  }
  const files = dict.files
  if (!isDict(files)) throw new TrackerError('MALFORMED_RESPONSE', { field: 'files' })
  const result: ScrapeResponse = new Map()
  for (const [key, value] of Object.entries(files)) {
    const hash = Buffer.from(key, 'latin1')
    if (hash.length !== 20 || !isDict(value)) continue
    const entry: ScrapeEntry = {
      complete: optionalCount(value, 'complete') ?? 0,
      downloaded: optionalCount(value, 'downloaded') ?? 0,
      incomplete: optionalCount(value, 'incomplete') ?? 0,
    }
    result.set(toHex(hash), entry)
  }
  return result
}
