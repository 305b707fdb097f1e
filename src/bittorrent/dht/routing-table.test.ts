import { describe, expect, it } from 'vitest'
import { bigIntToId, idToBigInt } from './node-id.js'
import { GOOD_NODE_MS, K, RoutingTable } from './routing-table.js'

const own = bigIntToId(0n)
const idAt = (n: bigint) => bigIntToId(n)
const TOP = 1n << 159n

describe('RoutingTable', () => {
  it('splits only the bucket holding our own id', () => {
    const table = new RoutingTable(own)
    // Far half of the id space: one bucket that never splits once full.
    for (let i = 0; i < K + 4; i++)
      table.insert(
        { id: idAt(TOP + BigInt(i)), host: '10.0.0.1', port: 1000 + i },
        { responded: true, nowMs: 0 },
      )
    expect(table.size).toBe(K)
    // Near our id: buckets keep splitting so close nodes all fit.
    for (let i = 1; i <= 20; i++)
      table.insert(
        { id: idAt(BigInt(i) << 100n), host: '10.0.1.1', port: 1000 + i },
        { responded: true, nowMs: 0 },
      )
    expect(table.size).toBe(K + 20)
    expect(table.bucketCount).toBeGreaterThan(2)
  })

  it('asks to ping the oldest questionable node when a bucket is full, and replaces it once it goes bad', () => {
    const table = new RoutingTable(own)
    for (let i = 0; i < K; i++)
      table.insert(
        { id: idAt(TOP + BigInt(i)), host: '10.0.0.1', port: 1000 + i },
        { responded: true, nowMs: i },
      )
    const later = GOOD_NODE_MS + 100
    const newcomer = { id: idAt(TOP + 100n), host: '10.0.0.2', port: 7 }
    const result = table.insert(newcomer, { responded: true, nowMs: later })
    expect(result.added).toBe(false)
    expect(idToBigInt(result.ping!.id)).toBe(TOP)
    table.failed(result.ping!.id, later)
    expect(table.get(newcomer.id)).toBeUndefined()
    table.failed(result.ping!.id, later)
    expect(table.get(newcomer.id)).toBeDefined()
    expect(table.get(result.ping!.id)).toBeUndefined()
  })

  it('tells good, questionable and bad nodes apart', () => {
    const table = new RoutingTable(own)
    table.insert({ id: idAt(5n), host: '10.0.0.1', port: 1 }, { responded: true, nowMs: 0 })
    table.insert({ id: idAt(6n), host: '10.0.0.1', port: 2 }, { responded: false, nowMs: 0 })
    const [a, b] = [table.get(idAt(5n))!, table.get(idAt(6n))!]
    expect(table.standing(a, 1000)).toBe('good')
    expect(table.standing(b, 1000)).toBe('questionable')
    expect(table.standing(a, GOOD_NODE_MS + 1)).toBe('questionable')
    table.failed(a.id, 0)
    table.failed(a.id, 0)
    expect(table.standing(a, 0)).toBe('bad')
  })

  it('keeps a good node at its address when another address claims its id', () => {
    const table = new RoutingTable(own)
    table.insert({ id: idAt(9n), host: '10.0.0.1', port: 1 }, { responded: true, nowMs: 0 })
    table.insert({ id: idAt(9n), host: '10.6.6.6', port: 1 }, { responded: true, nowMs: 0 })
    expect(table.get(idAt(9n))?.host).toBe('10.0.0.1')
  })

  it('returns the closest nodes by XOR distance', () => {
    const table = new RoutingTable(own)
    for (const n of [1n, 2n, 3n, 8n, 12n])
      table.insert({ id: idAt(n), host: '10.0.0.1', port: Number(n) }, { responded: true, nowMs: 0 })
    expect(table.closest(idAt(9n), 3, 0).map((e) => idToBigInt(e.id))).toEqual([8n, 12n, 1n])
  })

  it('gives one refresh target per idle bucket, inside the bucket', () => {
    const table = new RoutingTable(own)
    expect(table.refreshTargets(15 * 60_000, 15 * 60_000)).toHaveLength(1)
    expect(table.refreshTargets(15 * 60_000 + 1, 15 * 60_000)).toHaveLength(0)
  })
})
