// One onion layer on one core: ChaCha20-Poly1305 encrypt (sender) and decrypt (relay) of 1 KiB cells, the way
// the tunnel community seals every data cell. When /usr/bin/python3 has libnacl (Debian python3-libnacl), the
// same layer as py-ipv8's pure-Python TunnelCrypto (libnacl AEAD, salt || counter nonce) is measured beside it.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { BACKWARD, decryptLayer, deriveSessionKeys, encryptLayer, FORWARD } from '../src/ipv8/tunnel/index.js'

const CELL_BYTES = 1024
const TARGET_MB_PER_SEC = 300
const MAX_CELLS = 2_000_000
const MAX_MS = 3_000

function measure(label: string, run: () => void): number {
  for (let i = 0; i < 2_000; i++) run()
  const start = performance.now()
  let cells = 0
  while (cells < MAX_CELLS && performance.now() - start < MAX_MS) {
    for (let i = 0; i < 1_000; i++) run()
    cells += 1_000
  }
  const seconds = (performance.now() - start) / 1000
  const mbPerSec = (cells * CELL_BYTES) / seconds / 1e6
  console.log(`${label.padEnd(28)} ${mbPerSec.toFixed(0).padStart(6)} MB/s  (${cells} cells)`)
  return mbPerSec
}

const PYTHON = `
import struct, time, os, libnacl
from libnacl.aead import AEAD
key = os.urandom(32); salt = os.urandom(4); data = os.urandom(${CELL_BYTES}); counter = 1
aead = AEAD(key)
n = 0; start = time.perf_counter()
while time.perf_counter() - start < ${MAX_MS / 1000}:
    for _ in range(1000):
        counter += 1
        AEAD(key).encrypt(data, b"", nonce=salt + struct.pack("!q", counter), pack_nonce_aad=False)
    n += 1000
print(n * ${CELL_BYTES} / (time.perf_counter() - start) / 1e6)
`

function pythonReference(): number | undefined {
  const result = spawnSync('/usr/bin/python3', ['-c', PYTHON], { encoding: 'utf8', timeout: MAX_MS * 5 })
  if (result.status !== 0) return undefined
  const value = Number.parseFloat(result.stdout.trim())
  return Number.isFinite(value) ? value : undefined
}

const keys = deriveSessionKeys(randomBytes(64))
const cell = randomBytes(CELL_BYTES)
const sealed = encryptLayer(cell, keys, BACKWARD)
console.log(`tunnel crypto: one layer, ${CELL_BYTES}-byte cells, one core`)
const encrypt = measure('encrypt (originator/exit)', () => encryptLayer(cell, keys, FORWARD))
const decrypt = measure('decrypt (relay/originator)', () => decryptLayer(sealed, keys, BACKWARD))
const reference = pythonReference()
console.log('')
console.log(
  `target ${TARGET_MB_PER_SEC} MB/s: encrypt ${(encrypt / TARGET_MB_PER_SEC).toFixed(2)}x, decrypt ${(decrypt / TARGET_MB_PER_SEC).toFixed(2)}x`,
)
if (reference === undefined) {
  console.log('py-ipv8 layer (libnacl): not measured (/usr/bin/python3 without libnacl)')
} else {
  console.log(`py-ipv8 layer (libnacl AEAD, as TunnelCrypto.encrypt_str): ${reference.toFixed(0)} MB/s`)
  console.log(`us / py-ipv8: encrypt ${(encrypt / reference).toFixed(1)}x`)
}
