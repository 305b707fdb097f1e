import { describe, expect, it } from 'vitest'
import { RelaySlots } from './slots.js'

const never = (): number => {
  throw new Error('balance read while a random slot was free')
}

describe('RelaySlots', () => {
  it('gives free random slots first, without asking for a balance', () => {
    const slots = new RelaySlots(2, 1)
    expect(slots.admit(10, never)).toEqual({ admitted: true, kind: 'random', evicted: undefined })
    expect(slots.admit(11, never)).toEqual({ admitted: true, kind: 'random', evicted: undefined })
    expect(slots.random).toEqual([10, 11])
    expect(slots.competing).toEqual([{ balance: 0, circuitId: undefined }])
  })

  it('puts a circuit in a free competing slot with its balance once the random slots are taken', () => {
    const slots = new RelaySlots(1, 2)
    slots.admit(1, never)
    expect(slots.admit(2, () => 7)).toEqual({ admitted: true, kind: 'competing', evicted: undefined })
    expect(slots.admit(3, () => 0)).toEqual({ admitted: true, kind: 'competing', evicted: undefined })
    expect(slots.competing).toEqual([
      { balance: 7, circuitId: 2 },
      { balance: 0, circuitId: 3 },
    ])
  })

  it('evicts the lowest balance for a strictly higher one', () => {
    const slots = new RelaySlots(0, 3)
    slots.admit(1, () => 5)
    slots.admit(2, () => -3)
    slots.admit(3, () => 8)
    expect(slots.admit(4, () => -1)).toEqual({ admitted: true, kind: 'competing', evicted: 2 })
    expect(slots.competing.map((s) => [s.balance, s.circuitId])).toEqual([
      [5, 1],
      [-1, 4],
      [8, 3],
    ])
  })

  it('on a tie for the lowest balance evicts the first such slot', () => {
    const slots = new RelaySlots(0, 2)
    slots.admit(1, () => 0)
    slots.admit(2, () => 0)
    expect(slots.admit(3, () => 1)).toMatchObject({ admitted: true, evicted: 1 })
  })

  it('refuses a circuit whose balance does not beat the lowest, as when every balance is 0', () => {
    const slots = new RelaySlots(1, 2)
    slots.admit(1, never)
    slots.admit(2, () => 0)
    slots.admit(3, () => 0)
    expect(slots.admit(4, () => 0)).toEqual({ admitted: false, lowestBalance: 0 })
    expect(slots.has(4)).toBe(false)
    expect(slots.random).toEqual([1])
    expect(slots.competing.map((s) => s.circuitId)).toEqual([2, 3])
  })

  it('refuses everything when it has no slots at all', () => {
    const slots = new RelaySlots(0, 0)
    expect(slots.admit(1, () => 1_000)).toMatchObject({ admitted: false })
  })

  it('frees a slot on release, and the next circuit takes it', () => {
    const slots = new RelaySlots(1, 1)
    slots.admit(1, never)
    slots.admit(2, () => 4)
    expect(slots.release(1)).toBe(true)
    expect(slots.release(2)).toBe(true)
    expect(slots.release(2)).toBe(false)
    expect(slots.random).toEqual([undefined])
    expect(slots.competing).toEqual([{ balance: 0, circuitId: undefined }])
    expect(slots.admit(3, never)).toMatchObject({ admitted: true, kind: 'random' })
    expect(slots.admit(4, () => 0)).toMatchObject({ admitted: true, kind: 'competing' })
  })

  it('keeps the slot of a circuit that asks again', () => {
    const slots = new RelaySlots(1, 1)
    slots.admit(1, never)
    slots.admit(2, () => 3)
    expect(slots.admit(1, never)).toMatchObject({ admitted: true, kind: 'random' })
    expect(slots.admit(2, never)).toMatchObject({ admitted: true, kind: 'competing' })
    expect(slots.random).toEqual([1])
    expect(slots.competing).toEqual([{ balance: 3, circuitId: 2 }])
  })

  it('treats circuit id 0 as a holder, not as a free slot', () => {
    const slots = new RelaySlots(1, 0)
    slots.admit(0, never)
    expect(slots.admit(5, () => 0)).toMatchObject({ admitted: false })
    expect(slots.has(0)).toBe(true)
  })
})
