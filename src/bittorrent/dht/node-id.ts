import { randomBytes } from 'node:crypto'
import type { NodeId } from './types.js'

/** Bits in a node id. */
export const ID_BITS = 160
/** Bytes in a node id. */
export const ID_BYTES = 20

/** A random node id (or target). */
export function randomNodeId(): NodeId {
  return randomBytes(ID_BYTES)
}

/** An id as a number, for range arithmetic. */
export function idToBigInt(id: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')}`)
}

/** The id of a number in [0, 2^160). */
export function bigIntToId(value: bigint): NodeId {
  return Buffer.from(value.toString(16).padStart(ID_BYTES * 2, '0'), 'hex')
}

/** Compares the XOR distances of `a` and `b` to `target`: negative when `a` is closer. */
export function compareDistance(target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const da = a[i]! ^ target[i]!
    const db = b[i]! ^ target[i]!
    if (da !== db) return da - db
  }
  return 0
}
