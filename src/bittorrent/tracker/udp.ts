import { randomBytes } from 'node:crypto'
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { type Clock, logger, systemClock, toHex } from '../../common/index.js'
import type { DatagramSocket, SocketAddress } from '../../net/index.js'
import { canonicalHost } from '../../net/index.js'
import { parseCompactPeers, uniquePeers } from './compact.js'
import {
  type AnnounceRequest,
  type AnnounceResponse,
  type ScrapeResponse,
  type TrackerClient,
  TrackerError,
  type TrackerRequestOptions,
} from './types.js'

const log = logger('bittorrent:tracker:udp')

// BEP 15 constants.
const PROTOCOL_ID = 0x41727101980n
const ACTION_CONNECT = 0
const ACTION_ANNOUNCE = 1
const ACTION_SCRAPE = 2
const ACTION_ERROR = 3
const EVENT_CODES = { none: 0, completed: 1, started: 2, stopped: 3 } as const
// BEP 41 option types.
const OPTION_END = 0
const OPTION_URL_DATA = 2
const MAX_OPTION_LENGTH = 255
/** BEP 15: at most about 74 info hashes fit in one scrape. */
export const MAX_UDP_SCRAPE_HASHES = 74

/** Resolves a host name to IP addresses. */
export type HostLookup = (host: string) => Promise<string[]>

/** What a {@link UdpTrackerClient} needs. */
export interface UdpTrackerDeps {
  /** The socket requests are sent from. Its incoming datagrams reach the client as said by `receive`. */
  socket: Pick<DatagramSocket, 'send' | 'onMessage' | 'local'>
  clock?: Clock
  /** Host name resolution; default the system resolver. */
  lookup?: HostLookup
}

/** Options of a {@link UdpTrackerClient}. */
export interface UdpTrackerOptions {
  /** First retransmission timeout; BEP 15 says 15 s, doubled after every retransmission. */
  retransmitBaseMs?: number
  /** Retransmissions before giving up; BEP 15 says up to 8. */
  maxRetransmits?: number
  /** How long a connection id is used (BEP 15: one minute). */
  connectionIdTtlMs?: number
  /**
   * `socket` (default): the client subscribes to the socket. `external`: the owner of the socket passes datagrams
   * to {@link UdpTrackerClient.handleDatagram} (a port shared with uTP and the DHT).
   */
  receive?: 'socket' | 'external'
  /**
   * `local` (default): host names are resolved with `lookup` and replies must come from the resolved address.
   * `remote`: host names go to the socket as they are, for a socket that resolves them at its far end (a circuit
   * whose exit resolves them, so no name is ever looked up here); `lookup` is never called. A reply then comes
   * from whatever address the far end resolved, so replies to a named tracker are matched by transaction id and
   * action alone.
   */
  hostNames?: 'local' | 'remote'
}

interface Pending {
  /** The address the reply must come from, or undefined for a tracker named by host name and resolved remotely. */
  readonly from: string | undefined
  readonly action: number
  resolve(data: Buffer, from: SocketAddress): void
  reject(err: TrackerError): void
}

interface Connection {
  readonly id: Buffer
  readonly expiresAt: number
}

/** Counters of one UDP tracker client. */
export interface UdpTrackerStats {
  requestsSent: number
  retransmits: number
  responses: number
  /** Datagrams with a wrong length, an unknown transaction or from the wrong address. */
  dropped: number
}

/**
 * A BEP 15 UDP tracker client over an injected datagram socket: connect, announce and scrape with transaction
 * ids, connection-id reuse, 15·2ⁿ s retransmission, IPv4 and IPv6 peers, error replies and BEP 41 URL data.
 *
 * @example
 * ```ts
 * const client = new UdpTrackerClient({ socket })
 * const res = await client.announce('udp://tracker.example:6969/announce', request, { signal })
 * console.log(res.peers)
 * ```
 */
export class UdpTrackerClient implements TrackerClient {
  readonly stats: UdpTrackerStats = { requestsSent: 0, retransmits: 0, responses: 0, dropped: 0 }
  readonly #socket: UdpTrackerDeps['socket']
  readonly #clock: Clock
  readonly #lookup: HostLookup
  readonly #pending = new Map<number, Pending>()
  readonly #connections = new Map<string, Connection>()
  readonly #baseMs: number
  readonly #maxRetransmits: number
  readonly #connectionTtlMs: number
  readonly #remoteNames: boolean
  readonly #closed = new AbortController()
  readonly #unsubscribe: (() => void) | undefined

  constructor(deps: UdpTrackerDeps, options: UdpTrackerOptions = {}) {
    this.#socket = deps.socket
    this.#clock = deps.clock ?? systemClock
    this.#lookup = deps.lookup ?? defaultLookup
    this.#baseMs = options.retransmitBaseMs ?? 15_000
    this.#maxRetransmits = options.maxRetransmits ?? 8
    this.#connectionTtlMs = options.connectionIdTtlMs ?? 60_000
    this.#remoteNames = options.hostNames === 'remote'
    if ((options.receive ?? 'socket') === 'socket') {
      this.#unsubscribe = this.#socket.onMessage((data, from) => this.handleDatagram(data, from))
    }
  }

  /**
   * Takes one incoming datagram. Returns true when it answered one of our transactions; anything else is left
   * alone (and counted as dropped only when it looked like a reply to us).
   */
  handleDatagram(data: Buffer, from: SocketAddress): boolean {
    if (data.length < 8) return false
    const action = data.readUInt32BE(0)
    const transactionId = data.readUInt32BE(4)
    const pending = this.#pending.get(transactionId)
    if (pending === undefined) return false
    if (pending.from !== undefined && pending.from !== addressKey(from)) {
      this.stats.dropped += 1
      return false
    }
    if (action === ACTION_ERROR) {
      this.#pending.delete(transactionId)
      this.stats.responses += 1
      pending.reject(new TrackerError('TRACKER_FAILURE', { reason: data.subarray(8, 1032).toString('utf8') }))
      return true
    }
    if (action !== pending.action) {
      this.stats.dropped += 1
      return true
    }
    this.#pending.delete(transactionId)
    this.stats.responses += 1
    pending.resolve(data, from)
    return true
  }

  async announce(
    url: string,
    request: AnnounceRequest,
    opts: TrackerRequestOptions = {},
  ): Promise<AnnounceResponse> {
    checkRequest(request)
    const target = parseUdpUrl(url)
    const to = await this.#resolve(target.host, target.port, opts.signal)
    const body = Buffer.alloc(98 - 16)
    Buffer.from(request.infoHash).copy(body, 0)
    Buffer.from(request.peerId).copy(body, 20)
    body.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(request.downloaded))), 40)
    body.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(request.left))), 48)
    body.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(request.uploaded))), 56)
    body.writeUInt32BE(EVENT_CODES[request.event], 64)
    body.writeUInt32BE(0, 68) // IP: 0 means the sender's address
    body.writeUInt32BE((request.key ?? 0) >>> 0, 72)
    body.writeInt32BE(request.numWant ?? -1, 76)
    body.writeUInt16BE(request.port, 80)
    const packet = Buffer.concat([body, urlDataOptions(target.urlData)])
    const { reply, from } = await this.#transact(to, ACTION_ANNOUNCE, packet, opts.signal)
    // The tracker answers with peers of the family it was reached over: for a name resolved remotely, the
    // family of the address the reply came from.
    const family = isIP(to.host) === 0 ? isIP(from.host) : isIP(to.host)
    return parseAnnounceReply(reply, family === 6 ? 6 : 4)
  }

  async scrape(
    url: string,
    infoHashes: readonly Uint8Array[],
    opts: TrackerRequestOptions = {},
  ): Promise<ScrapeResponse> {
    if (infoHashes.length === 0 || infoHashes.length > MAX_UDP_SCRAPE_HASHES) {
      throw new TrackerError('INVALID_REQUEST', { hashes: infoHashes.length, max: MAX_UDP_SCRAPE_HASHES })
    }
    for (const hash of infoHashes) {
      if (hash.length !== 20)
        throw new TrackerError('INVALID_REQUEST', { field: 'infoHash', length: hash.length })
    }
    const target = parseUdpUrl(url)
    const to = await this.#resolve(target.host, target.port, opts.signal)
    const { reply } = await this.#transact(
      to,
      ACTION_SCRAPE,
      Buffer.concat(infoHashes.map((h) => Buffer.from(h))),
      opts.signal,
    )
    if ((reply.length - 8) % 12 !== 0 || reply.length - 8 > infoHashes.length * 12) {
      throw new TrackerError('MALFORMED_RESPONSE', { action: 'scrape', length: reply.length })
    }
    const result: ScrapeResponse = new Map()
    for (let i = 0; 8 + i * 12 < reply.length; i++) {
      const offset = 8 + i * 12
      result.set(toHex(infoHashes[i]!), {
        complete: reply.readUInt32BE(offset),
        downloaded: reply.readUInt32BE(offset + 4),
        incomplete: reply.readUInt32BE(offset + 8),
      })
    }
    return result
  }

  /** Rejects every pending request with `ABORTED` and stops listening. */
  close(): void {
    this.#closed.abort()
    this.#unsubscribe?.()
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id)
      pending.reject(new TrackerError('ABORTED', { reason: 'closed' }))
    }
  }

  /** Connects when needed, sends the request and retransmits per BEP 15 until a reply arrives. */
  async #transact(
    to: SocketAddress,
    action: number,
    body: Buffer,
    signal?: AbortSignal,
  ): Promise<{ reply: Buffer; from: SocketAddress }> {
    const key = addressKey(to)
    let retriedConnection = false
    for (let attempt = 0; attempt <= this.#maxRetransmits; attempt++) {
      if (attempt > 0) this.stats.retransmits += 1
      const timeoutMs = this.#baseMs * 2 ** attempt
      let connection = this.#connections.get(key)
      const reused = connection !== undefined && connection.expiresAt > this.#clock.now()
      if (connection === undefined || !reused) {
        this.#connections.delete(key)
        const header = Buffer.alloc(16)
        header.writeBigUInt64BE(PROTOCOL_ID, 0)
        header.writeUInt32BE(ACTION_CONNECT, 8)
        const answer = await this.#send(to, header, ACTION_CONNECT, timeoutMs, signal)
        if (answer === undefined) continue
        if (answer.reply.length < 16)
          throw new TrackerError('MALFORMED_RESPONSE', { action: 'connect', length: answer.reply.length })
        connection = {
          id: Buffer.from(answer.reply.subarray(8, 16)),
          expiresAt: this.#clock.now() + this.#connectionTtlMs,
        }
        this.#connections.set(key, connection)
      }
      const header = Buffer.alloc(16)
      connection.id.copy(header, 0)
      header.writeUInt32BE(action, 8)
      let reply: { reply: Buffer; from: SocketAddress } | undefined
      try {
        reply = await this.#send(to, Buffer.concat([header, body]), action, timeoutMs, signal)
      } catch (err) {
        // A tracker that restarted no longer knows a connection id we still think valid, and answers with an
        // error: connect again once before believing the error.
        if (!reused || !(err instanceof TrackerError) || err.code !== 'TRACKER_FAILURE' || retriedConnection)
          throw err
        retriedConnection = true
        this.#connections.delete(key)
        attempt -= 1
        continue
      }
      if (reply !== undefined) return reply
    }
    if (isIP(to.host) === 0) {
      // Nothing answered a name sent unresolved: the far end may not resolve it, and cannot tell us so.
      throw new TrackerError('TIMEOUT', {
        tracker: key,
        retransmits: this.#maxRetransmits,
        reason: 'no reply; the exit may not resolve the host name',
      })
    }
    throw new TrackerError('TIMEOUT', { tracker: key, retransmits: this.#maxRetransmits })
  }

  /**
   * Sends one packet with a fresh transaction id; resolves with the reply and the address it came from, or
   * undefined after `timeoutMs`.
   */
  #send(
    to: SocketAddress,
    packet: Buffer,
    action: number,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<{ reply: Buffer; from: SocketAddress } | undefined> {
    const abortSignal =
      signal === undefined ? this.#closed.signal : AbortSignal.any([this.#closed.signal, signal])
    if (abortSignal.aborted) return Promise.reject(new TrackerError('ABORTED', {}))
    let transactionId = randomBytes(4).readUInt32BE(0)
    while (this.#pending.has(transactionId)) transactionId = (transactionId + 1) >>> 0
    packet.writeUInt32BE(transactionId, 12)
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.#pending.delete(transactionId)
        this.#clock.clearTimeout(timer)
        abortSignal.removeEventListener('abort', onAbort)
      }
      const onAbort = (): void => {
        done()
        reject(new TrackerError('ABORTED', {}))
      }
      const timer = this.#clock.setTimeout(() => {
        done()
        resolve(undefined)
      }, timeoutMs)
      abortSignal.addEventListener('abort', onAbort, { once: true })
      this.#pending.set(transactionId, {
        from: isIP(to.host) === 0 ? undefined : addressKey(to),
        action,
        resolve: (reply, from) => {
          done()
          resolve({ reply, from })
        },
        reject: (err) => {
          done()
          reject(err)
        },
      })
      this.stats.requestsSent += 1
      this.#socket.send(packet, to)
    })
  }

  async #resolve(host: string, port: number, signal?: AbortSignal): Promise<SocketAddress> {
    if (isIP(host) !== 0) return { host: canonicalHost(host), port }
    if (this.#remoteNames) return { host: host.toLowerCase(), port }
    let addresses: string[]
    try {
      addresses = await this.#lookup(host)
    } catch (err) {
      throw new TrackerError('NETWORK', { host, cause: err })
    }
    if (signal?.aborted === true || this.#closed.signal.aborted) throw new TrackerError('ABORTED', {})
    // The socket is of one family: prefer addresses of that family.
    const wantV6 = isIP(this.#socket.local.host) === 6
    const address = addresses.find((a) => (isIP(a) === 6) === wantV6) ?? addresses[0]
    if (address === undefined) throw new TrackerError('NETWORK', { host, reason: 'no address' })
    log.debug('resolved tracker', { host, address })
    return { host: canonicalHost(address), port }
  }
}

async function defaultLookup(host: string): Promise<string[]> {
  const results = await dnsLookup(host, { all: true })
  return results.map((r) => r.address)
}

function addressKey(address: SocketAddress): string {
  return `${canonicalHost(address.host)}|${address.port}`
}

/** Checks the fields every announce needs. */
export function checkRequest(request: AnnounceRequest): void {
  if (request.infoHash.length !== 20) {
    throw new TrackerError('INVALID_REQUEST', { field: 'infoHash', length: request.infoHash.length })
  }
  if (request.peerId.length !== 20) {
    throw new TrackerError('INVALID_REQUEST', { field: 'peerId', length: request.peerId.length })
  }
  if (!Number.isInteger(request.port) || request.port < 0 || request.port > 0xffff) {
    throw new TrackerError('INVALID_REQUEST', { field: 'port', port: request.port })
  }
}

/** A parsed `udp://host:port/path?query` URL; `urlData` is the BEP 41 path and query. */
export interface UdpTrackerUrl {
  readonly host: string
  readonly port: number
  readonly urlData: string
}

/** Parses a UDP tracker URL. */
export function parseUdpUrl(url: string): UdpTrackerUrl {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch (err) {
    throw new TrackerError('INVALID_URL', { url, cause: err })
  }
  if (parsed.protocol !== 'udp:') throw new TrackerError('INVALID_URL', { url, reason: 'not udp' })
  const host = parsed.hostname.replace(/^\[|\]$/g, '')
  const port = Number(parsed.port)
  if (host === '' || !Number.isInteger(port) || port <= 0 || port > 0xffff) {
    throw new TrackerError('INVALID_URL', { url, reason: 'host or port' })
  }
  return { host, port, urlData: `${parsed.pathname}${parsed.search}` }
}

/** BEP 41: the path and query as URL-data options of at most 255 bytes each, then end-of-options. */
function urlDataOptions(urlData: string): Buffer {
  if (urlData === '' || urlData === '/') return Buffer.alloc(0)
  const data = Buffer.from(urlData, 'utf8')
  if (data.length > 16 * MAX_OPTION_LENGTH)
    throw new TrackerError('INVALID_URL', { reason: 'URL data too long' })
  const parts: Buffer[] = []
  for (let offset = 0; offset < data.length; offset += MAX_OPTION_LENGTH) {
    const chunk = data.subarray(offset, offset + MAX_OPTION_LENGTH)
    parts.push(Buffer.from([OPTION_URL_DATA, chunk.length]), chunk)
  }
  parts.push(Buffer.from([OPTION_END]))
  return Buffer.concat(parts)
}

/** Parses a BEP 15 announce reply; peers are 6-byte IPv4 or 18-byte IPv6 entries by the tracker's family. */
export function parseAnnounceReply(reply: Buffer, family: 4 | 6): AnnounceResponse {
  if (reply.length < 20)
    throw new TrackerError('MALFORMED_RESPONSE', { action: 'announce', length: reply.length })
  const body = reply.subarray(20)
  // Some trackers answer IPv6 requests with 6-byte IPv4 entries (BEP 15 wants 18): accept that when unambiguous.
  const entryFamily = family === 6 && body.length % 18 !== 0 && body.length % 6 === 0 ? 4 : family
  const peers = parseCompactPeers(body, entryFamily)
  if (peers === undefined)
    throw new TrackerError('MALFORMED_RESPONSE', { action: 'announce', length: reply.length })
  return {
    intervalSec: reply.readUInt32BE(8),
    incomplete: reply.readUInt32BE(12),
    complete: reply.readUInt32BE(16),
    peers: uniquePeers(peers),
  }
}
