import { lookup } from 'node:dns/promises'
import { logger } from '../../common/index.js'
import { type DatagramSocket, type DatagramTransport, ipFamily, type SocketAddress } from '../../net/index.js'
import type { PublicKey } from '../keys/index.js'
import type { SessionKeys } from './crypto.js'
import { couldBeBitTorrent, couldBeIpv8 } from './payloads.js'
import { type CircuitId, PEER_FLAG_EXIT_BT, PEER_FLAG_EXIT_IPV8 } from './types.js'

const log = logger('ipv8:tunnel')

/** Packets queued while the exit's sockets open (py-ipv8 keeps 10). */
const QUEUE_LIMIT = 10

/**
 * The exit policy (spec §7.6, py-ipv8's `TunnelExitSocket.is_allowed`): a datagram may leave (or come back
 * through) an exit if it looks like BitTorrent (uTP, a UDP tracker message or a bencoded dictionary) and the node
 * advertises EXIT_BT, if it looks like IPv8 and the node advertises EXIT_IPV8, or if it is an IPv8 packet of the
 * tunnel community itself (`prefix`, which hidden services send through any node). The checks look at a few
 * header bytes only, so they are a filter against casual misuse, not a protocol parser.
 */
export function exitAllows(data: Uint8Array, flags: readonly number[], prefix: Uint8Array): boolean {
  const bt = couldBeBitTorrent(data)
  const ipv8 = couldBeIpv8(data)
  return (
    (bt && flags.includes(PEER_FLAG_EXIT_BT)) ||
    (ipv8 && flags.includes(PEER_FLAG_EXIT_IPV8)) ||
    (ipv8 && Buffer.from(data.buffer, data.byteOffset, prefix.length).equals(prefix))
  )
}

/** Resolves a host name at the exit: the addresses it has, in the resolver's order. */
export type ExitLookup = (host: string) => Promise<string[]>

/** The exit's default resolver: the system's (getaddrinfo, as py-ipv8 uses). */
export async function systemExitLookup(host: string): Promise<string[]> {
  const found = await lookup(host, { all: true })
  return found.map((a) => a.address)
}

/** What an exit socket needs from its community. */
export interface ExitSocketDeps {
  /** Where the exit's UDP sockets come from. */
  transport: DatagramTransport
  /** Host to bind the IPv4 socket to (default 0.0.0.0). */
  bindHost: string
  /** Resolves a domain destination to IP addresses (the community's {@link ExitLookup}). */
  lookup: ExitLookup
  /** Whether the exit may send (or accept back) this payload. */
  isAllowed(data: Buffer): boolean
  /** Sends a reply back through the circuit. */
  tunnel(exit: ExitSocket, data: Buffer, origin: SocketAddress): void
  /** Counts a refused datagram. */
  refused(): void
  /** Counts a datagram to a domain name the exit could not resolve. */
  unresolved(): void
  now(): number
}

/**
 * The last hop of someone's circuit: it decrypts the final layer and, once data arrives, opens its own UDP
 * sockets to talk to destinations on the originator's behalf. Every hop starts as an exit socket; a relay's is
 * replaced by relay routes when the circuit is extended through it.
 */
export class ExitSocket {
  readonly circuitId: CircuitId
  /** The previous hop. */
  readonly address: SocketAddress
  readonly publicKey: PublicKey
  readonly keys: SessionKeys
  readonly createdAtMs: number
  bytesUp = 0
  bytesDown = 0
  lastActivityMs: number
  readonly #deps: ExitSocketDeps
  readonly #sockets: { v4: DatagramSocket | undefined; v6: DatagramSocket | undefined } = {
    v4: undefined,
    v6: undefined,
  }
  readonly #opening = new Set<'v4' | 'v6'>()
  readonly #queue: [Buffer, SocketAddress][] = []
  #enabled = false
  #closed = false

  constructor(
    circuitId: CircuitId,
    address: SocketAddress,
    publicKey: PublicKey,
    keys: SessionKeys,
    deps: ExitSocketDeps,
  ) {
    this.circuitId = circuitId
    this.address = address
    this.publicKey = publicKey
    this.keys = keys
    this.#deps = deps
    this.createdAtMs = deps.now()
    this.lastActivityMs = this.createdAtMs
  }

  /** Whether the exit has opened (or is opening) its sockets. */
  get enabled(): boolean {
    return this.#enabled
  }

  /** Allows sending; sockets open on first use. */
  enable(): void {
    this.#enabled = true
  }

  /** Sends one datagram to `destination` if the data checker allows it; domain names are resolved first. */
  sendTo(data: Buffer, destination: SocketAddress): void {
    if (this.#closed || !this.#enabled) return
    if (!this.#deps.isAllowed(data)) {
      this.#deps.refused()
      return
    }
    const ip = ipFamily(destination.host)
    if (ip === 0) {
      // py-ipv8 resolves with getaddrinfo and prefers IPv4. The reply comes back from (and is reported as) the
      // resolved address, not the name.
      this.#deps
        .lookup(destination.host)
        .then((found) => {
          const best = found.find((a) => ipFamily(a) === 4) ?? found.find((a) => ipFamily(a) === 6)
          if (best === undefined) throw new Error('no address')
          this.sendTo(data, { host: best, port: destination.port })
        })
        .catch((err: unknown) => {
          this.#deps.unresolved()
          log.debug('exit could not resolve', { host: destination.host, err })
        })
      return
    }
    const family = ip === 6 ? 'v6' : 'v4'
    const socket = this.#sockets[family]
    if (socket !== undefined) {
      socket.send(data, destination)
      this.bytesUp += data.length
      this.lastActivityMs = this.#deps.now()
      return
    }
    if (this.#queue.length < QUEUE_LIMIT) this.#queue.push([data, destination])
    if (!this.#opening.has(family)) {
      this.#opening.add(family)
      this.#open(family).catch((err: unknown) => log.debug('exit socket failed', { err }))
    }
  }

  /** Closes the sockets. */
  async close(): Promise<void> {
    this.#closed = true
    this.#queue.length = 0
    for (const socket of [this.#sockets.v4, this.#sockets.v6]) await socket?.close()
  }

  async #open(family: 'v4' | 'v6'): Promise<void> {
    const socket = await this.#deps.transport.bind({
      host: family === 'v4' ? this.#deps.bindHost : '::',
      port: 0,
    })
    if (this.#closed) {
      await socket.close()
      return
    }
    socket.onMessage((data, from) => this.#received(data, from, family))
    this.#sockets[family] = socket
    const waiting = this.#queue.splice(0)
    for (const [data, destination] of waiting) this.sendTo(data, destination)
  }

  #received(data: Buffer, from: SocketAddress, family: 'v4' | 'v6'): void {
    if (this.#closed) return
    if (family === 'v6' && from.host.toLowerCase().startsWith('::ffff:')) {
      // IPv4 belongs on the IPv4 socket; a dual-stack IPv6 socket would otherwise take it too (py-ipv8)
      this.#deps.refused()
      return
    }
    this.bytesDown += data.length
    if (!this.#deps.isAllowed(data)) {
      this.#deps.refused()
      return
    }
    this.lastActivityMs = this.#deps.now()
    this.#deps.tunnel(this, data, from)
  }
}
