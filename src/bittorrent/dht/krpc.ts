import { type BencodeDict, type BencodeValue, decode, type Encodable, encode } from '../../bencode/index.js'
import { type Clock, logger, systemClock } from '../../common/index.js'
import type { DatagramSocket, SocketAddress } from '../../net/index.js'
import { canonicalHost } from '../../net/index.js'
import { ID_BYTES } from './node-id.js'
import { DhtError, type DhtStats, type NodeId } from './types.js'

const log = logger('bittorrent:dht:krpc')

/** KRPC error codes (BEP 5). */
export const KRPC_GENERIC_ERROR = 201
export const KRPC_SERVER_ERROR = 202
export const KRPC_PROTOCOL_ERROR = 203
export const KRPC_METHOD_UNKNOWN = 204

/** Longest transaction id accepted from others (ours are 2 bytes; some clients use up to 8). */
const MAX_TRANSACTION_BYTES = 16
/** Largest KRPC packet accepted. */
const MAX_PACKET_BYTES = 8192

/** A decoded KRPC query. */
export interface KrpcQuery {
  readonly kind: 'query'
  readonly transactionId: Buffer
  readonly method: string
  /** The `a` dictionary; `id` is checked to be 20 bytes. */
  readonly args: BencodeDict
  readonly senderId: NodeId
  /** BEP 43: the sender is read-only and must not be added to routing tables. */
  readonly readOnly: boolean
}

/** A decoded KRPC response. */
export interface KrpcResponse {
  readonly kind: 'response'
  readonly transactionId: Buffer
  /** The `r` dictionary; `id` is checked to be 20 bytes. */
  readonly values: BencodeDict
  readonly senderId: NodeId
}

/** A decoded KRPC error. */
export interface KrpcErrorMessage {
  readonly kind: 'error'
  readonly transactionId: Buffer
  readonly errorCode: number
  readonly reason: string
}

/** Any KRPC message. */
export type KrpcMessage = KrpcQuery | KrpcResponse | KrpcErrorMessage

function isDict(value: BencodeValue | undefined): value is BencodeDict {
  return typeof value === 'object' && !(value instanceof Uint8Array) && !Array.isArray(value)
}

function senderIdOf(dict: BencodeDict): NodeId {
  const id = dict.id
  if (!(id instanceof Uint8Array) || id.length !== ID_BYTES)
    throw new DhtError('INVALID_MESSAGE', { field: 'id' })
  return Buffer.from(id)
}

/**
 * Decodes and checks one KRPC packet.
 *
 * @throws {DhtError} `INVALID_MESSAGE` for anything that is not a well-formed query, response or error.
 */
export function decodeKrpc(data: Uint8Array): KrpcMessage {
  if (data.length > MAX_PACKET_BYTES) throw new DhtError('INVALID_MESSAGE', { reason: 'too large' })
  let value: BencodeValue
  try {
    // Lenient about key order and trailing bytes: several clients sort keys wrongly or pad packets.
    value = decode(data, { strict: false, maxDepth: 8, maxItems: 2000, allowTrailing: true })
  } catch (err) {
    throw new DhtError('INVALID_MESSAGE', { reason: 'bencode', cause: err })
  }
  if (!isDict(value)) throw new DhtError('INVALID_MESSAGE', { reason: 'not a dictionary' })
  const t = value.t
  if (!(t instanceof Uint8Array) || t.length === 0 || t.length > MAX_TRANSACTION_BYTES) {
    throw new DhtError('INVALID_MESSAGE', { field: 't' })
  }
  const transactionId = Buffer.from(t)
  const y = value.y
  const type = y instanceof Uint8Array && y.length === 1 ? String.fromCharCode(y[0]!) : undefined
  if (type === 'q') {
    const q = value.q
    const args = value.a
    if (!(q instanceof Uint8Array) || q.length > 32 || !isDict(args)) {
      throw new DhtError('INVALID_MESSAGE', { field: 'q' })
    }
    return {
      kind: 'query',
      transactionId,
      method: Buffer.from(q).toString('latin1'),
      args,
      senderId: senderIdOf(args),
      readOnly: value.ro === 1,
    }
  }
  if (type === 'r') {
    const r = value.r
    if (!isDict(r)) throw new DhtError('INVALID_MESSAGE', { field: 'r' })
    return { kind: 'response', transactionId, values: r, senderId: senderIdOf(r) }
  }
  if (type === 'e') {
    const e = value.e
    const code = Array.isArray(e) ? e[0] : undefined
    const reason = Array.isArray(e) ? e[1] : undefined
    return {
      kind: 'error',
      transactionId,
      errorCode: typeof code === 'number' ? code : KRPC_GENERIC_ERROR,
      reason: reason instanceof Uint8Array ? Buffer.from(reason).toString('utf8').slice(0, 200) : '',
    }
  }
  throw new DhtError('INVALID_MESSAGE', { field: 'y' })
}

/** A query handler's answer: the `r` dictionary, or a KRPC error. */
export type QueryAnswer =
  | { readonly values: Record<string, Encodable> }
  | { readonly error: number; readonly reason: string }

/** Handles one incoming query. */
export type QueryHandler = (query: KrpcQuery, from: SocketAddress) => QueryAnswer | undefined

/** What a {@link Krpc} endpoint needs. */
export interface KrpcDeps {
  socket: Pick<DatagramSocket, 'send' | 'onMessage'>
  clock?: Clock
}

/** Options of a {@link Krpc} endpoint. */
export interface KrpcOptions {
  /** Time a query waits for its answer (default 4 s). */
  queryTimeoutMs?: number
  /** Incoming queries accepted per source address per second; more are dropped (default 40). */
  maxQueriesPerSecPerAddress?: number
  /** `socket` (default): subscribe to the socket. `external`: the owner calls {@link Krpc.handleDatagram}. */
  receive?: 'socket' | 'external'
  /** Sent as `v` in every message: client and version. */
  version?: Uint8Array
  /** BEP 43: mark our queries read-only. */
  readOnly?: boolean
}

interface Pending {
  readonly to: string
  resolve(message: KrpcResponse): void
  reject(err: DhtError): void
}

/** The answer to one of our queries, with the address it came from. */
export interface KrpcReply {
  readonly response: KrpcResponse
  readonly from: SocketAddress
}

/**
 * The KRPC layer of BEP 5 over an injected datagram socket: bencoded queries with transaction ids and timeouts,
 * responses, errors, per-address rate limiting of incoming queries, and counters of hostile packets.
 *
 * @example
 * ```ts
 * const krpc = new Krpc({ socket })
 * krpc.onQuery = (query, from) => ({ values: { id: myId } })
 * const { response } = await krpc.query({ host: '127.0.0.2', port: 6881 }, 'ping', { id: myId })
 * ```
 */
export class Krpc {
  readonly stats: DhtStats = {
    queriesSent: 0,
    queriesReceived: 0,
    responsesReceived: 0,
    errorsReceived: 0,
    timeouts: 0,
    invalidPackets: 0,
    rateLimited: 0,
  }
  /** The handler of incoming queries; without one, queries are ignored. */
  onQuery: QueryHandler | undefined
  readonly #socket: KrpcDeps['socket']
  readonly #clock: Clock
  readonly #timeoutMs: number
  readonly #rateLimit: number
  readonly #version: Uint8Array | undefined
  readonly #readOnly: boolean
  readonly #pending = new Map<string, Pending>()
  readonly #closed = new AbortController()
  readonly #unsubscribe: (() => void) | undefined
  #nextTransaction = Math.floor(Math.random() * 0x10000)
  #rateWindowStart = 0
  readonly #rateCounts = new Map<string, number>()

  constructor(deps: KrpcDeps, options: KrpcOptions = {}) {
    this.#socket = deps.socket
    this.#clock = deps.clock ?? systemClock
    this.#timeoutMs = options.queryTimeoutMs ?? 4000
    this.#rateLimit = options.maxQueriesPerSecPerAddress ?? 40
    this.#version = options.version
    this.#readOnly = options.readOnly ?? false
    if ((options.receive ?? 'socket') === 'socket') {
      this.#unsubscribe = this.#socket.onMessage((data, from) => this.handleDatagram(data, from))
    }
  }

  /** Number of queries waiting for an answer. */
  get pendingCount(): number {
    return this.#pending.size
  }

  /**
   * Takes one incoming datagram. Returns true when it was KRPC (a bencoded dictionary), whether or not it was
   * valid; other datagrams are left alone for other protocols on the same port.
   */
  handleDatagram(data: Buffer, from: SocketAddress): boolean {
    if (data[0] !== 0x64 /* 'd' */ || this.#closed.signal.aborted) return false
    let message: KrpcMessage
    try {
      message = decodeKrpc(data)
    } catch (err) {
      this.stats.invalidPackets += 1
      log.trace('invalid packet', { code: err instanceof DhtError ? err.code : undefined })
      return true
    }
    if (message.kind === 'query') this.#handleQuery(message, from)
    else this.#handleReply(message, from)
    return true
  }

  /**
   * Sends a query and waits for its response.
   *
   * @throws {DhtError} `TIMEOUT`, `ERROR_REPLY` or `ABORTED`.
   */
  query(
    to: SocketAddress,
    method: string,
    args: Record<string, Encodable>,
    opts: { signal?: AbortSignal | undefined; timeoutMs?: number } = {},
  ): Promise<KrpcReply> {
    const signal =
      opts.signal === undefined ? this.#closed.signal : AbortSignal.any([this.#closed.signal, opts.signal])
    if (signal.aborted) return Promise.reject(new DhtError('ABORTED', {}))
    const tid = this.#transactionId()
    const key = `${tid.toString('hex')}|${addressKey(to)}`
    const packet = this.#encode({ t: tid, y: 'q', q: method, a: args, ...(this.#readOnly ? { ro: 1 } : {}) })
    return new Promise<KrpcReply>((resolve, reject) => {
      const done = (): void => {
        this.#pending.delete(key)
        this.#clock.clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
      }
      const onAbort = (): void => {
        done()
        reject(new DhtError('ABORTED', {}))
      }
      const timer = this.#clock.setTimeout(() => {
        done()
        this.stats.timeouts += 1
        reject(new DhtError('TIMEOUT', { method }))
      }, opts.timeoutMs ?? this.#timeoutMs)
      signal.addEventListener('abort', onAbort, { once: true })
      this.#pending.set(key, {
        to: addressKey(to),
        resolve: (response) => {
          done()
          resolve({ response, from: to })
        },
        reject: (err) => {
          done()
          reject(err)
        },
      })
      this.stats.queriesSent += 1
      this.#socket.send(packet, to)
    })
  }

  /** Stops: pending queries are rejected with `ABORTED`, incoming packets are ignored. */
  close(): void {
    this.#closed.abort()
    this.#unsubscribe?.()
  }

  #handleReply(message: KrpcResponse | KrpcErrorMessage, from: SocketAddress): void {
    const pending = this.#pending.get(`${message.transactionId.toString('hex')}|${addressKey(from)}`)
    if (pending === undefined) {
      this.stats.invalidPackets += 1
      return
    }
    if (message.kind === 'error') {
      this.stats.errorsReceived += 1
      pending.reject(new DhtError('ERROR_REPLY', { errorCode: message.errorCode, reason: message.reason }))
      return
    }
    this.stats.responsesReceived += 1
    pending.resolve(message)
  }

  #handleQuery(query: KrpcQuery, from: SocketAddress): void {
    if (!this.#allow(from)) {
      this.stats.rateLimited += 1
      return
    }
    this.stats.queriesReceived += 1
    if (this.onQuery === undefined) return
    let answer: QueryAnswer | undefined
    try {
      answer = this.onQuery(query, from)
    } catch (err) {
      log.debug('query handler failed', { method: query.method, err })
      answer = { error: KRPC_SERVER_ERROR, reason: 'server error' }
    }
    if (answer === undefined) return
    const body: Record<string, Encodable> =
      'error' in answer
        ? { t: query.transactionId, y: 'e', e: [answer.error, answer.reason] }
        : { t: query.transactionId, y: 'r', r: answer.values }
    this.#socket.send(this.#encode(body), from)
  }

  /** Fixed one-second windows per address: cheap, and enough to stop one host from flooding us. */
  #allow(from: SocketAddress): boolean {
    const now = this.#clock.monotonic()
    if (now - this.#rateWindowStart >= 1000) {
      this.#rateWindowStart = now
      this.#rateCounts.clear()
    }
    const key = from.host
    const count = (this.#rateCounts.get(key) ?? 0) + 1
    this.#rateCounts.set(key, count)
    return count <= this.#rateLimit
  }

  #encode(message: Record<string, Encodable>): Buffer {
    return encode(this.#version === undefined ? message : { ...message, v: this.#version })
  }

  #transactionId(): Buffer {
    const tid = Buffer.alloc(2)
    this.#nextTransaction = (this.#nextTransaction + 1) & 0xffff
    tid.writeUInt16BE(this.#nextTransaction)
    return tid
  }
}

function addressKey(address: SocketAddress): string {
  return `${canonicalHost(address.host)}|${address.port}`
}
