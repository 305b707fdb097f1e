import { randomBytes } from 'node:crypto'
import {
  type Clock,
  logger,
  type Service,
  systemClock,
  TaskScope,
  TypedEmitter,
  toHex,
} from '../../common/index.js'
import type { DatagramSocket, SocketAddress } from '../../net/index.js'
import { decodeLsdAnnounce, encodeLsdAnnounce } from './message.js'
import { LSD_GROUP_V4, LsdError, type LsdPeer } from './types.js'

const log = logger('bittorrent:lsd')

/** What a {@link LocalServiceDiscovery} needs. */
export interface LsdDeps {
  /** A socket joined to the multicast group (see `bindLsdSocket`), or any datagram socket in tests. */
  socket: Pick<DatagramSocket, 'send' | 'onMessage'>
  clock?: Clock
}

/** Options of a {@link LocalServiceDiscovery}. */
export interface LsdOptions {
  /** Our BitTorrent listen port, announced to the group. */
  port: number
  /** The multicast group (default BEP 14's IPv4 group). */
  group?: SocketAddress
  /** Whether LSD may run at all (default: unless `TRIBLER_NO_PUBLIC_NETWORK=1`); off means nothing is sent. */
  publicNetwork?: boolean
  /** How often every torrent is announced (default 5 minutes). */
  announceIntervalMs?: number
  /** Announces accepted per source address per minute (default 60). */
  maxAnnouncesPerMinPerAddress?: number
}

/** Events of a {@link LocalServiceDiscovery}. */
export interface LsdEvents {
  /** A peer on the local network announced a torrent we have. */
  peer: LsdPeer
}

/** Info hashes per message: keeps each datagram well under a typical MTU. */
const HASHES_PER_MESSAGE = 8

/**
 * BEP 14 local service discovery: announces our torrents to a multicast group with BT-SEARCH messages and reports
 * peers that announce torrents we have. Our own announces (recognised by a cookie) are ignored. Off when the node
 * may not use the public network.
 *
 * @example
 * ```ts
 * const lsd = new LocalServiceDiscovery({ socket: await bindLsdSocket() }, { port: 6881 })
 * lsd.events.on('peer', ({ infoHash, host, port }) => download(infoHash)?.addPeer({ host, port }))
 * lsd.add(infoHash)
 * await lsd.start()
 * ```
 */
export class LocalServiceDiscovery implements Service {
  readonly name = 'lsd'
  readonly events = new TypedEmitter<LsdEvents>()
  /** Messages that were not valid BT-SEARCH, and announces dropped by the rate limit. */
  readonly stats = { received: 0, invalid: 0, rateLimited: 0, sent: 0 }
  readonly #socket: LsdDeps['socket']
  readonly #clock: Clock
  readonly #options: LsdOptions
  readonly #group: SocketAddress
  readonly #cookie = randomBytes(8).toString('hex')
  readonly #torrents = new Set<string>()
  readonly #stopped = new AbortController()
  readonly #tasks: TaskScope
  readonly #rate = new Map<string, number>()
  #rateWindowStart = 0
  #unsubscribe: (() => void) | undefined

  constructor(deps: LsdDeps, options: LsdOptions) {
    if (!Number.isInteger(options.port) || options.port <= 0 || options.port > 0xffff) {
      throw new LsdError('INVALID_ARGUMENT', { field: 'port', port: options.port })
    }
    this.#socket = deps.socket
    this.#clock = deps.clock ?? systemClock
    this.#options = options
    this.#group = options.group ?? LSD_GROUP_V4
    this.#tasks = new TaskScope(this.#stopped.signal, this.#clock)
  }

  /** Whether LSD is allowed to run by the public-network setting. */
  get enabled(): boolean {
    return this.#options.publicNetwork ?? process.env.TRIBLER_NO_PUBLIC_NETWORK !== '1'
  }

  async start(): Promise<void> {
    if (!this.enabled || this.#unsubscribe !== undefined || this.#stopped.signal.aborted) return
    this.#unsubscribe = this.#socket.onMessage((data, from) => this.handleDatagram(data, from))
    this.#tasks.every('announce', this.#options.announceIntervalMs ?? 5 * 60_000, () => this.announceAll(), {
      now: true,
    })
  }

  async stop(): Promise<void> {
    this.#stopped.abort()
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
  }

  /** Adds a torrent to announce (announced at once when running). */
  add(infoHash: Uint8Array): void {
    if (infoHash.length !== 20)
      throw new LsdError('INVALID_ARGUMENT', { field: 'infoHash', length: infoHash.length })
    const hex = toHex(infoHash)
    if (this.#torrents.has(hex)) return
    this.#torrents.add(hex)
    if (this.#unsubscribe !== undefined) this.#send([hex])
  }

  remove(infoHash: Uint8Array): void {
    this.#torrents.delete(toHex(infoHash))
  }

  /** Announces every torrent now (only while running). */
  announceAll(): void {
    const all = [...this.#torrents]
    for (let i = 0; i < all.length; i += HASHES_PER_MESSAGE) this.#send(all.slice(i, i + HASHES_PER_MESSAGE))
  }

  /** Takes one datagram from the group socket; returns true when it was a BT-SEARCH message. */
  handleDatagram(data: Buffer, from: SocketAddress): boolean {
    if (this.#unsubscribe === undefined) return false
    this.stats.received += 1
    let announce: ReturnType<typeof decodeLsdAnnounce>
    try {
      announce = decodeLsdAnnounce(data)
    } catch {
      this.stats.invalid += 1
      return false
    }
    if (announce.cookie === this.#cookie) return true
    if (!this.#allow(from.host)) {
      this.stats.rateLimited += 1
      return true
    }
    for (const infoHash of announce.infoHashes) {
      if (!this.#torrents.has(infoHash)) continue
      log.debug('local peer', { port: announce.port })
      this.events.emit('peer', { infoHash, host: from.host, port: announce.port })
    }
    return true
  }

  #send(infoHashes: string[]): void {
    if (infoHashes.length === 0 || this.#unsubscribe === undefined) return
    this.stats.sent += 1
    this.#socket.send(
      encodeLsdAnnounce(this.#group, { port: this.#options.port, infoHashes, cookie: this.#cookie }),
      this.#group,
    )
  }

  #allow(host: string): boolean {
    const now = this.#clock.monotonic()
    if (now - this.#rateWindowStart >= 60_000) {
      this.#rateWindowStart = now
      this.#rate.clear()
    }
    const count = (this.#rate.get(host) ?? 0) + 1
    this.#rate.set(host, count)
    return count <= (this.#options.maxAnnouncesPerMinPerAddress ?? 60)
  }
}
