import type { SocketAddress } from '../../net/index.js'
import type { PublicKey } from '../keys/index.js'
import type { EphemeralKey, SessionKeys } from './crypto.js'
import type { CircuitId, CircuitPurpose, CircuitState, Direction } from './types.js'

/** One verified hop of a circuit, or the hop being added. */
export interface Hop {
  readonly publicKey: PublicKey
  /** Known only for the first hop: later hops are reached through the circuit. */
  readonly address: SocketAddress | undefined
  /** Flags the hop advertised (empty if we never met it). */
  readonly flags: readonly number[]
  keys: SessionKeys | undefined
  ephemeral: EphemeralKey | undefined
}

/** A peer that must be a circuit's last hop. */
export interface RequiredExit {
  readonly publicKey: PublicKey
  readonly address: SocketAddress
}

/** Handler of a datagram that came back through a circuit. */
export type CircuitDataHandler = (data: Buffer, origin: SocketAddress) => void

/**
 * A circuit this node originated: its verified hops (first hop first), the hop being added, and its counters.
 */
export class Circuit {
  readonly circuitId: CircuitId
  readonly goalHops: number
  readonly hops: Hop[] = []
  readonly createdAtMs: number
  unverifiedHop: Hop | undefined
  state: CircuitState = 'extending'
  bytesUp = 0
  bytesDown = 0
  lastActivityMs: number
  relayEarlyCount = 0
  /** What the circuit is for; only `data` circuits serve {@link TunnelCommunity.circuit}. */
  purpose: CircuitPurpose = 'data'
  /** The peer that must be the last hop, if any. */
  requiredExit: RequiredExit | undefined
  /** End-to-end session keys of a joined hidden-service circuit (one more layer inside the hops'). */
  hsKeys: SessionKeys | undefined
  /** Why the circuit closed, once it did. */
  closeReason: string | undefined
  readonly #handlers = new Set<CircuitDataHandler>()

  constructor(circuitId: CircuitId, goalHops: number, nowMs: number) {
    this.circuitId = circuitId
    this.goalHops = goalHops
    this.createdAtMs = nowMs
    this.lastActivityMs = nowMs
  }

  /** The first hop, the only peer the originator sends to. */
  get firstHop(): Hop | undefined {
    return this.hops[0] ?? this.unverifiedHop
  }

  /** The session keys of the verified hops, first hop first. */
  get hopKeys(): SessionKeys[] {
    return this.hops.map((hop) => hop.keys as SessionKeys)
  }

  /** Adds a handler of replies that come back through this circuit; returns its remover. */
  onData(handler: CircuitDataHandler): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  /** @internal delivers a reply to the handlers. */
  deliver(data: Buffer, origin: SocketAddress): void {
    for (const handler of this.#handlers) handler(data, origin)
  }
}

/** One direction of a relayed circuit: cells arriving under the table key go to `address` under `circuitId`. */
export interface RelayRoute {
  /** The circuit id on the outgoing link. */
  readonly circuitId: CircuitId
  readonly address: SocketAddress
  readonly publicKey: PublicKey
  readonly keys: SessionKeys
  /** FORWARD: peel a layer; BACKWARD: add one. */
  readonly direction: Direction
  /** Rendezvous relays: after peeling the incoming side's layer, seal with these keys (BACKWARD). */
  readonly rendezvousKeys?: SessionKeys
  readonly createdAtMs: number
  bytesUp: number
  bytesDown: number
  relayEarlyCount: number
  lastActivityMs: number
}
