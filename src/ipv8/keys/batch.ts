import { createRequire } from 'node:module'
import { logger } from '../../common/index.js'
import { type PublicKey, SIGNATURE_LENGTH } from './keys.js'

const log = logger('ipv8:keys')

/** The native Ed25519 batch verifier (`native/ed25519`), built by node-gyp into `build/Release`. */
interface NativeBatch {
  readonly KEY_BYTES: number
  readonly MAX_BATCH: number
  prepareKey(key: Uint8Array, out: Uint8Array): boolean
  verifyBatch(
    packets: readonly Uint8Array[],
    ends: Uint32Array,
    keyIndex: Uint32Array,
    keys: readonly Uint8Array[],
    status: Uint8Array,
  ): boolean
}

// The same relative path from src/ipv8/keys and from dist/ipv8/keys.
const NATIVE_PATH = '../../../build/Release/ed25519_batch.node'

/** Loads the addon, or says why not. `TRIBLER_NO_NATIVE_ED25519=1` turns it off. Never throws. */
function loadNative(): NativeBatch | string {
  if (process.env.TRIBLER_NO_NATIVE_ED25519 === '1') return 'turned off by TRIBLER_NO_NATIVE_ED25519=1'
  try {
    return createRequire(import.meta.url)(NATIVE_PATH) as NativeBatch
  } catch (err) {
    return `the addon did not load: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`
  }
}

const loaded = loadNative()
const native: NativeBatch | undefined = typeof loaded === 'string' ? undefined : loaded
if (typeof loaded === 'string') {
  log.warn('native Ed25519 batch verification unavailable; verifying signatures one at a time', {
    reason: loaded,
  })
}

/** @internal the native module itself, for tests of the batch equation without the libsodium fallback. */
export const nativeBatchForTests: NativeBatch | undefined = native

/** Which verifier {@link verifyBatch} uses: the native batch verifier, or single verifies. */
export const batchVerifier: 'native' | 'single' = native === undefined ? 'single' : 'native'

/** Signatures verified together at most; a longer list is split. */
export const MAX_SIGNATURE_BATCH = 64

/**
 * One signed message: the signature lies at `data[signatureOffset, signatureOffset + 64)` and signs the bytes
 * before it.
 */
export interface SignedItem {
  readonly key: PublicKey
  readonly data: Uint8Array
  readonly signatureOffset: number
}

// Prepared keys (decompressed point and its table of multiples), kept while the PublicKey lives: PublicKey
// instances are themselves cached (bounded) by PublicKey.fromBin. `null` marks a key the verifier refuses; `SEEN` a
// key with one valid signature so far, checked by libsodium: a table costs a fraction of a verify and pays off only
// from a key's second signature on, so a flood of fresh keys costs one libsodium verify each, as without batches.
const SEEN = 0
const prepared = new WeakMap<PublicKey, Uint8Array | null | typeof SEEN>()

/** Signatures verified so far, by how. */
export interface VerifyCounts {
  /** Batches whose equation was evaluated. */
  batches: number
  /** Of those, batches whose equation failed (every signature in them was then checked with libsodium). */
  failedBatches: number
  /** Signatures checked on their own with libsodium (a key's first, a failed batch's, a back-off's). */
  single: number
}

/**
 * Whether each item's Ed25519 signature is valid, checked as batches of up to {@link MAX_SIGNATURE_BATCH}:
 * one random linear combination of all signature equations (RFC 8032 signatures, the batch equation of
 * Bernstein et al., "High-speed high-security signatures", with 128-bit random weights) costs far less than
 * one verify each. A batch that fails is checked again one signature at a time with libsodium, so the answer
 * for every item is libsodium's. Where a batch passes, the check is the cofactored equation
 * `[8][S]B = [8]R + [8][k]A`, while libsodium checks `[S]B = R + [k]A`: the two differ only for a signature
 * whose R or key carries a small-order component that the signer put there on purpose, which the batch
 * accepts and libsodium rejects (never the other way round). Points of small order, non-canonical encodings
 * and S >= L are rejected exactly as libsodium does. A single item, a key's first signature, or a platform
 * without the native module takes the libsodium path.
 *
 * @example
 * ```ts
 * const valid = verifyBatch(packets.map((data) => ({ key, data, signatureOffset: data.length - 64 })))
 * ```
 */
export function verifyBatch(items: readonly SignedItem[], counts?: VerifyCounts): boolean[] {
  const out = new Array<boolean>(items.length)
  const tally = counts ?? { batches: 0, failedBatches: 0, single: 0 }
  const lib = native
  if (lib === undefined || items.length < 2) {
    for (let i = 0; i < items.length; i++) out[i] = verifyOne(items[i] as SignedItem)
    tally.single += items.length
    return out
  }
  for (let start = 0; start < items.length; start += MAX_SIGNATURE_BATCH) {
    verifyChunk(lib, items, start, Math.min(items.length, start + MAX_SIGNATURE_BATCH), out, tally)
  }
  return out
}

/** After a failed batch, bursts verified one signature at a time at first; the most such bursts in a row. */
const BACKOFF_FIRST = 4
const BACKOFF_MAX = 256

/**
 * {@link verifyBatch} for a stream of bursts from the network, bounded against forgeries: a failed batch costs
 * its batch equation on top of a libsodium verify per signature, so after one the following bursts are verified
 * one signature at a time, as without batches, until a run of bursts without a bad signature shows a batch would
 * pass again. A burst with a bad signature during that run starts it over, and each batch that fails doubles the
 * next run's length (up to 256 bursts; as many passing batches as the run is long halve it again). A sender who forges one
 * signature per burst thus keeps the verifier at libsodium's cost per signature, never above it.
 */
export class SignatureVerifier {
  readonly counts: VerifyCounts = { batches: 0, failedBatches: 0, single: 0 }
  #singleBursts = 0
  /** Length of the run of single bursts in progress, and of the one the next failed batch starts. */
  #run = BACKOFF_FIRST
  #nextRun = BACKOFF_FIRST
  /** Batches passed since the last failure or the last halving of the back-off. */
  #passes = 0

  /** Whether the next burst is verified one signature at a time. */
  get backingOff(): boolean {
    return this.#singleBursts > 0
  }

  /** Whether each item's signature is valid (libsodium's answer, as {@link verifyBatch}). */
  verify(items: readonly SignedItem[]): boolean[] {
    if (this.#singleBursts > 0) {
      const out = new Array<boolean>(items.length)
      let bad = false
      for (let i = 0; i < items.length; i++) {
        const ok = verifyOne(items[i] as SignedItem)
        out[i] = ok
        if (!ok) bad = true
      }
      this.counts.single += items.length
      this.#singleBursts = bad ? this.#run : this.#singleBursts - 1
      return out
    }
    const failedBefore = this.counts.failedBatches
    const batchesBefore = this.counts.batches
    const out = verifyBatch(items, this.counts)
    if (this.counts.failedBatches > failedBefore) {
      this.#run = this.#nextRun
      this.#singleBursts = this.#run
      this.#nextRun = Math.min(BACKOFF_MAX, this.#nextRun * 2)
      this.#passes = 0
    } else if (this.counts.batches > batchesBefore && ++this.#passes >= this.#nextRun) {
      this.#nextRun = Math.max(BACKOFF_FIRST, this.#nextRun >> 1)
      this.#passes = 0
    }
    return out
  }
}

function verifyOne(item: SignedItem): boolean {
  const end = item.signatureOffset
  if (end < 0 || end + SIGNATURE_LENGTH > item.data.length) return false
  return item.key.verify(item.data.subarray(0, end), item.data.subarray(end, end + SIGNATURE_LENGTH))
}

function verifyChunk(
  lib: NativeBatch,
  items: readonly SignedItem[],
  start: number,
  end: number,
  out: boolean[],
  counts: VerifyCounts,
): void {
  const n = end - start
  if (n === 1) {
    out[start] = verifyOne(items[start] as SignedItem)
    counts.single += 1
    return
  }
  const packets: Uint8Array[] = []
  const ends = new Uint32Array(n)
  const keyIndex = new Uint32Array(n)
  const keys: Uint8Array[] = []
  const keySlots = new Map<PublicKey, number>()
  const slotOf = new Int32Array(n)
  let count = 0
  for (let i = 0; i < n; i++) {
    const item = items[start + i] as SignedItem
    slotOf[i] = -1
    out[start + i] = false
    const offset = item.signatureOffset
    if (offset < 0 || offset + SIGNATURE_LENGTH > item.data.length) continue
    let table = prepared.get(item.key)
    if (table === undefined) {
      // a key's first signature: libsodium, and a table only once the key has signed something
      counts.single += 1
      if (verifyOne(item)) {
        out[start + i] = true
        prepared.set(item.key, SEEN)
      }
      continue
    }
    if (table === SEEN) {
      table = new Uint8Array(lib.KEY_BYTES)
      if (!lib.prepareKey(item.key.verifyKey, table)) table = null
      prepared.set(item.key, table)
    }
    if (table === null) {
      // libsodium accepted a signature of this key, the batch verifier refuses it: libsodium decides
      out[start + i] = verifyOne(item)
      counts.single += 1
      continue
    }
    let slot = keySlots.get(item.key)
    if (slot === undefined) {
      slot = keys.length
      keys.push(table)
      keySlots.set(item.key, slot)
    }
    packets.push(item.data)
    ends[count] = offset
    keyIndex[count] = slot
    slotOf[i] = count
    count += 1
  }
  if (count === 0) return
  if (count === 1) {
    // nothing to share the batch equation with
    for (let i = 0; i < n; i++) {
      if (slotOf[i] !== 0) continue
      out[start + i] = verifyOne(items[start + i] as SignedItem)
      counts.single += 1
    }
    return
  }
  const status = new Uint8Array(count)
  const passed = lib.verifyBatch(packets, ends, keyIndex, keys, status)
  counts.batches += 1
  if (!passed) counts.failedBatches += 1
  for (let i = 0; i < n; i++) {
    const slot = slotOf[i] as number
    if (slot < 0 || status[slot] !== 1) continue
    // a failed batch says only that some signature is bad: libsodium finds which
    if (passed) {
      out[start + i] = true
    } else {
      out[start + i] = verifyOne(items[start + i] as SignedItem)
      counts.single += 1
    }
  }
}
