// Ed25519 verification on one core: the native batch verifier (native/ed25519) per signature for batches of 1, 8,
// 32 and 64, against libsodium's single verify (sodium-native), which is what every signed IPv8 message cost before.
// "one key" batches repeat a signer (its terms merge, as in a burst from one peer); "distinct keys" batches have a
// signer per signature. Then bursts of 64 as an overlay verifies them (SignatureVerifier), honest and under attack:
// one forged signature in every burst, and a fresh key for every packet. Times are CPU time of this process, the
// best of five trials.
import { loadavg } from 'node:os'
import {
  batchVerifier,
  PrivateKey,
  SignatureVerifier,
  type SignedItem,
  verifyBatch,
} from '../src/ipv8/index.js'

const SIGNATURES = 2_048
const TRIALS = 5
const MESSAGE_BYTES = 160

function cpuMicros(): number {
  const { user, system } = process.cpuUsage()
  return user + system
}

function items(count: number, signers: number): SignedItem[] {
  const keys = Array.from({ length: signers }, () => PrivateKey.generate())
  return Array.from({ length: count }, (_, i) => {
    const key = keys[i % signers] as PrivateKey
    const message = Buffer.alloc(MESSAGE_BYTES, i & 0xff)
    message.writeUInt32BE(i)
    return {
      key: key.publicKey,
      data: Buffer.concat([message, key.sign(message)]),
      signatureOffset: MESSAGE_BYTES,
    }
  })
}

/** The best of a few trials: on a shared, loaded machine the slower trials measure the neighbours. */
function usPerSignature(batch: SignedItem[], run: (batch: SignedItem[]) => void): number {
  const rounds = Math.ceil(SIGNATURES / batch.length)
  for (let i = 0; i < Math.min(rounds, 20); i++) run(batch)
  let best = Number.POSITIVE_INFINITY
  for (let trial = 0; trial < TRIALS; trial++) {
    const start = cpuMicros()
    for (let i = 0; i < rounds; i++) run(batch)
    best = Math.min(best, (cpuMicros() - start) / (rounds * batch.length))
  }
  return best
}

const batched = (batch: SignedItem[]): void => {
  const valid = verifyBatch(batch)
  if (!valid.every((v) => v)) throw new Error('a valid signature was rejected')
}
const single = (batch: SignedItem[]): void => {
  for (const it of batch) {
    const end = it.signatureOffset
    if (!it.key.verify(it.data.subarray(0, end), it.data.subarray(end))) throw new Error('rejected')
  }
}

console.log(
  `ed25519 verify, us per signature on one core (${batchVerifier} batch verifier; load ${loadavg()[0]?.toFixed(2)})`,
)
for (const [label, signersOf] of [
  ['one key', () => 1],
  ['distinct keys', (n: number) => n],
] as const) {
  for (const size of [1, 8, 32, 64]) {
    const batch = items(size, signersOf(size))
    const ours = usPerSignature(batch, batched)
    const theirs = usPerSignature(batch, single)
    console.log(
      `${label.padEnd(14)} batch ${String(size).padStart(2)}   batch ${ours.toFixed(1).padStart(5)} us   libsodium ${theirs.toFixed(1).padStart(5)} us   ratio ${(theirs / ours).toFixed(2)}x`,
    )
  }
}

/** Bursts of 64 signed packets, `forged` of them in each with a damaged signature (at a random position). */
function bursts(count: number, keysFor: (i: number) => PrivateKey, forged: number): SignedItem[][] {
  const out: SignedItem[][] = []
  for (let b = 0; b < count; b++) {
    const burst: SignedItem[] = []
    for (let i = 0; i < 64; i++) {
      const key = keysFor(b * 64 + i)
      const message = Buffer.alloc(MESSAGE_BYTES, i)
      message.writeUInt32BE(b * 64 + i)
      burst.push({
        key: key.publicKey,
        data: Buffer.concat([message, key.sign(message)]),
        signatureOffset: MESSAGE_BYTES,
      })
    }
    for (let f = 0; f < forged; f++) {
      const at = Math.floor(Math.random() * 64)
      const it = burst[at] as SignedItem
      const data = Buffer.from(it.data)
      data[MESSAGE_BYTES + 40] = (data[MESSAGE_BYTES + 40] as number) ^ 1
      burst[at] = { ...it, data }
    }
    out.push(burst)
  }
  return out
}

/** CPU us per signature over the bursts: `fresh` bursts are used once (their keys must never have been seen). */
function usPerSignatureOfBursts(make: () => SignedItem[][], run: (burst: SignedItem[]) => void): number {
  let best = Number.POSITIVE_INFINITY
  const warm = make()
  for (const burst of warm) run(burst)
  for (let trial = 0; trial < TRIALS; trial++) {
    const all = make()
    const start = cpuMicros()
    for (const burst of all) run(burst)
    best = Math.min(best, (cpuMicros() - start) / (all.length * 64))
  }
  return best
}

const BURSTS = 32
const sharedKeys = Array.from({ length: 16 }, () => PrivateKey.generate())
console.log(
  `bursts of 64 as an overlay receives them (${BURSTS} bursts per trial; load ${loadavg()[0]?.toFixed(2)})`,
)
for (const [label, forged, fresh] of [
  ['honest, 16 known keys', 0, false],
  ['one forged per burst', 1, false],
  ['fresh key per packet', 0, true],
  ['fresh key, one forged', 1, true],
] as const) {
  const make = (): SignedItem[][] =>
    bursts(BURSTS, fresh ? () => PrivateKey.generate() : (i) => sharedKeys[i % 16] as PrivateKey, forged)
  const verifier = new SignatureVerifier()
  const ours = usPerSignatureOfBursts(make, (burst) => {
    verifier.verify(burst)
  })
  const plain = usPerSignatureOfBursts(make, (burst) => {
    verifyBatch(burst)
  })
  const theirs = usPerSignatureOfBursts(make, (burst) => {
    for (const it of burst)
      it.key.verify(it.data.subarray(0, it.signatureOffset), it.data.subarray(it.signatureOffset))
  })
  console.log(
    `${label.padEnd(24)} verifier ${ours.toFixed(1).padStart(5)} us   without back-off ${plain.toFixed(1).padStart(5)} us   libsodium ${theirs.toFixed(1).padStart(5)} us   ratio ${(theirs / ours).toFixed(2)}x`,
  )
}
