import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// src/ipv8/testing (or dist/ipv8/testing) is three levels below the repository root.
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

/** The shared reference folder: `../shared` next to the repository, or `$TRIBLER_SHARED_DIR`. */
export function sharedDir(): string {
  return process.env.TRIBLER_SHARED_DIR ?? resolve(REPO_ROOT, '../shared')
}

/** Parses one of the py-ipv8 vector files in `shared/vectors/`. */
export function loadVectors<T>(name: 'keys' | 'packets' | 'serializer' | 'tunnel_crypto' | 'trustchain'): T {
  return JSON.parse(readFileSync(resolve(sharedDir(), 'vectors', `${name}.json`), 'utf8')) as T
}

/** One key pair of `keys.json`. */
export interface KeyVector {
  index: number
  curve25519_secret_key: string
  ed25519_seed: string
  private_key_bin: string
  public_key_bin: string
  curve25519_public_key: string
  ed25519_verify_key: string
  mid_sha1_of_public_key_bin: string
  sign_message_hex: string
  signature: string
  signature_len: number
}

/** The deterministic key pairs of `keys.json`. */
export function keyVectors(): KeyVector[] {
  return loadVectors<{ keys: KeyVector[] }>('keys').keys
}
