import type { CircuitId } from './types.js'

/** A competing slot: the balance it was won with and the circuit holding it (undefined while free). */
export interface CompetingSlot {
  readonly balance: number
  readonly circuitId: CircuitId | undefined
}

/** The outcome of asking for a slot. */
export type SlotAdmission =
  | {
      readonly admitted: true
      readonly kind: 'random' | 'competing'
      /** The circuit that lost its competing slot to this one; the caller tears it down. */
      readonly evicted: CircuitId | undefined
    }
  | { readonly admitted: false; readonly lowestBalance: number }

/**
 * Tribler's relay slots (TriblerTunnelCommunity at 7.0): a node relays or exits a circuit only while that
 * circuit holds a slot. A free random slot is taken first come, first served. When none is free the circuit
 * competes for a competing slot with its initiator's bandwidth balance: it takes a free one, or evicts the
 * holder with the lowest balance if its own balance is strictly higher (the first such slot on a tie), or is
 * refused. A slot is freed when its relay route or exit socket goes.
 *
 * @example
 * ```ts
 * const slots = new RelaySlots(5, 15)
 * const admission = slots.admit(circuitId, () => balanceOfInitiator)
 * if (!admission.admitted) return // refuse the create
 * if (admission.kind === 'competing' && admission.evicted !== undefined) tearDown(admission.evicted)
 * ```
 */
export class RelaySlots {
  readonly #random: (CircuitId | undefined)[]
  readonly #competing: CompetingSlot[]

  constructor(randomSlots: number, competingSlots: number) {
    this.#random = Array.from({ length: Math.max(0, Math.floor(randomSlots)) }, () => undefined)
    this.#competing = Array.from({ length: Math.max(0, Math.floor(competingSlots)) }, () => FREE)
  }

  /** The random slots, each holding a circuit id or undefined. */
  get random(): readonly (CircuitId | undefined)[] {
    return this.#random
  }

  /** The competing slots. */
  get competing(): readonly CompetingSlot[] {
    return this.#competing
  }

  /** Whether a circuit holds a slot. */
  has(circuitId: CircuitId): boolean {
    return this.#random.includes(circuitId) || this.#competing.some((s) => s.circuitId === circuitId)
  }

  /**
   * Gives `circuitId` a slot if it can have one. `balance` is read only when no random slot is free, as Tribler
   * asks the initiator for its balance only then. A circuit that already holds a slot keeps it.
   */
  admit(circuitId: CircuitId, balance: () => number): SlotAdmission {
    if (this.#random.includes(circuitId)) return { admitted: true, kind: 'random', evicted: undefined }
    if (this.#competing.some((s) => s.circuitId === circuitId))
      return { admitted: true, kind: 'competing', evicted: undefined }
    const free = this.#random.indexOf(undefined)
    if (free >= 0) {
      this.#random[free] = circuitId
      return { admitted: true, kind: 'random', evicted: undefined }
    }
    const value = balance()
    let lowest = -1
    for (let i = 0; i < this.#competing.length; i++) {
      const slot = this.#competing[i] as CompetingSlot
      if (slot.circuitId === undefined) {
        this.#competing[i] = { balance: value, circuitId }
        return { admitted: true, kind: 'competing', evicted: undefined }
      }
      if (lowest < 0 || slot.balance < (this.#competing[lowest] as CompetingSlot).balance) lowest = i
    }
    const weakest = this.#competing[lowest]
    if (weakest === undefined || !(value > weakest.balance))
      return { admitted: false, lowestBalance: weakest?.balance ?? Number.POSITIVE_INFINITY }
    this.#competing[lowest] = { balance: value, circuitId }
    return { admitted: true, kind: 'competing', evicted: weakest.circuitId }
  }

  /** Frees the slot `circuitId` holds; returns whether it held one. */
  release(circuitId: CircuitId): boolean {
    let found = false
    for (let i = 0; i < this.#random.length; i++) {
      if (this.#random[i] === circuitId) {
        this.#random[i] = undefined
        found = true
      }
    }
    for (let i = 0; i < this.#competing.length; i++) {
      if (this.#competing[i]?.circuitId === circuitId) {
        this.#competing[i] = FREE
        found = true
      }
    }
    return found
  }

  /** Frees every slot. */
  clear(): void {
    this.#random.fill(undefined)
    this.#competing.fill(FREE)
  }
}

const FREE: CompetingSlot = { balance: 0, circuitId: undefined }
