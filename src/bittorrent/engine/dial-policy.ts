import type { Duplex } from 'node:stream'
import type { Clock } from '../../common/index.js'
import type { SocketAddress } from '../../net/index.js'
import { UtpError } from '../utp/index.js'

/** A transport an outgoing peer connection can run over. */
export type DialTransport = 'tcp' | 'utp'

/**
 * How long a uTP dial may take before TCP is tried instead, when TCP is on too. libtorrent gives a uTP SYN the same
 * 3 s (`utp_connect_timeout`) before it counts the attempt as failed.
 */
export const UTP_FALLBACK_MS = 3000

/** Peers whose transport support is remembered, at most; the oldest are forgotten first. */
export const MAX_REMEMBERED_PEERS = 10_000

/** Opens a raw connection to a peer over one transport. */
export type Dialer = (peer: SocketAddress, signal: AbortSignal) => Promise<Duplex>

interface TransportMemory {
  /** A uTP dial failed and none has worked: dial TCP only (libtorrent's `supports_utp` cleared). */
  noUtp: boolean
  /** A uTP connection to this peer worked once (libtorrent's `confirmed_supports_utp`); it is never withdrawn. */
  confirmedUtp: boolean
}

/**
 * Which transport an outgoing connection tries first, as libtorrent's `torrent::connect_to_peer` decides it: with
 * uTP and TCP both on, every peer is assumed to speak uTP until a uTP dial to it fails (`torrent_peer` starts with
 * `supports_utp` set); that failure is remembered and TCP is dialled at once (`peer_connection::connect_failed`), and
 * from then on the peer is dialled over TCP only, unless a uTP connection to it has worked before or a peer list
 * (ut_pex's uTP flag) says it speaks uTP. With one transport off, only the other is dialled.
 *
 * @example
 * ```ts
 * const policy = new DialPolicy({ clock, transports: () => ({ tcp: true, utp: true }) })
 * const { stream, transport } = await policy.dial(peer, { tcp: dialTcp, utp: dialUtp }, { signal })
 * ```
 */
export class DialPolicy {
  readonly #clock: Clock
  readonly #transports: () => { readonly tcp: boolean; readonly utp: boolean }
  readonly #max: number
  readonly #peers = new Map<string, TransportMemory>()

  constructor(opts: {
    clock: Clock
    transports: () => { readonly tcp: boolean; readonly utp: boolean }
    maxPeers?: number
  }) {
    this.#clock = opts.clock
    this.#transports = opts.transports
    this.#max = opts.maxPeers ?? MAX_REMEMBERED_PEERS
  }

  /** The transports to try for `peer`, in order. Empty when both are off. */
  order(peer: SocketAddress): DialTransport[] {
    const { tcp, utp } = this.#transports()
    if (!utp) return tcp ? ['tcp'] : []
    if (!tcp) return ['utp']
    const memory = this.#peers.get(keyOf(peer))
    if (memory?.noUtp === true && !memory.confirmedUtp) return ['tcp']
    return ['utp', 'tcp']
  }

  /** A peer list (ut_pex's flag 0x04) says the peer speaks uTP: dial it over uTP first again. */
  supportsUtp(peer: SocketAddress): void {
    const memory = this.#peers.get(keyOf(peer))
    if (memory !== undefined) memory.noUtp = false
  }

  /** What is remembered about `peer`: whether uTP is ruled out and whether it ever worked. */
  memory(peer: SocketAddress): { readonly noUtp: boolean; readonly confirmedUtp: boolean } | undefined {
    const memory = this.#peers.get(keyOf(peer))
    return memory === undefined ? undefined : { ...memory }
  }

  /**
   * Dials `peer` over the transports of {@link order}, each through its dialer. A uTP attempt that has TCP behind it
   * gets {@link UTP_FALLBACK_MS}; an attempt that fails (refused, reset, timed out) passes to the next transport
   * unless `signal` aborted. Rejects with the last failure.
   */
  async dial(
    peer: SocketAddress,
    dialers: Readonly<Record<DialTransport, Dialer>>,
    opts: { readonly signal: AbortSignal },
  ): Promise<{ stream: Duplex; transport: DialTransport }> {
    const order = this.order(peer)
    let lastError: unknown = new Error('no transport is enabled for outgoing connections')
    for (const [at, transport] of order.entries()) {
      opts.signal.throwIfAborted()
      const fallback = at < order.length - 1
      const attempt = fallback && transport === 'utp' ? this.#withTimeout(opts.signal) : undefined
      try {
        const stream = await dialers[transport](peer, attempt?.signal ?? opts.signal)
        this.#succeeded(peer, transport)
        return { stream, transport }
      } catch (err) {
        if (opts.signal.aborted) throw err
        if (!isLocalFailure(err)) this.#failed(peer, transport)
        lastError = err
      } finally {
        attempt?.done()
      }
    }
    throw lastError
  }

  #succeeded(peer: SocketAddress, transport: DialTransport): void {
    if (transport !== 'utp') return
    const memory = this.#remember(peer)
    memory.confirmedUtp = true
    memory.noUtp = false
  }

  #failed(peer: SocketAddress, transport: DialTransport): void {
    if (transport !== 'utp') return
    const memory = this.#remember(peer)
    if (!memory.confirmedUtp) memory.noUtp = true
  }

  #remember(peer: SocketAddress): TransportMemory {
    const key = keyOf(peer)
    let memory = this.#peers.get(key)
    if (memory === undefined) {
      if (this.#peers.size >= this.#max) {
        const oldest = this.#peers.keys().next().value
        if (oldest !== undefined) this.#peers.delete(oldest)
      }
      memory = { noUtp: false, confirmedUtp: false }
      this.#peers.set(key, memory)
    }
    return memory
  }

  /** A signal that aborts with `parent` or after {@link UTP_FALLBACK_MS} on the clock; `done` drops the timer. */
  #withTimeout(parent: AbortSignal): { signal: AbortSignal; done: () => void } {
    const controller = new AbortController()
    const onAbort = (): void => controller.abort(parent.reason)
    parent.addEventListener('abort', onAbort, { once: true })
    const timer = this.#clock.setTimeout(
      () => controller.abort(new Error(`no uTP answer within ${UTP_FALLBACK_MS} ms`)),
      UTP_FALLBACK_MS,
    )
    return {
      signal: controller.signal,
      done: () => {
        this.#clock.clearTimeout(timer)
        parent.removeEventListener('abort', onAbort)
      },
    }
  }
}

function keyOf(peer: SocketAddress): string {
  return `${peer.host}:${peer.port}`
}

/**
 * A dial that failed on our side (our uTP socket is full or closed) says nothing about the peer: it falls back to
 * the next transport without marking the peer as lacking uTP.
 */
function isLocalFailure(err: unknown): boolean {
  return err instanceof UtpError && (err.code === 'TOO_MANY_CONNECTIONS' || err.code === 'SOCKET_CLOSED')
}
