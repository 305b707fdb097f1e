import { chmod, mkdir, open, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { Ipv8Error } from '../errors.js'
import { PrivateKey } from './keys.js'

/**
 * Loads the private key stored at `path` (the raw 74-byte bin, as Tribler's `ec_multichain.pem`), or on first
 * start creates a new key there with permissions 0600. An existing file that is not a key bin is an error
 * (`BAD_KEY`); it is never overwritten.
 *
 * @example
 * ```ts
 * const key = await loadOrCreateKeyFile(path.join(stateDir, 'ec_multichain.pem'))
 * ```
 */
export async function loadOrCreateKeyFile(path: string): Promise<PrivateKey> {
  const existing = await readKey(path)
  if (existing !== undefined) return existing
  const key = PrivateKey.generate()
  try {
    await mkdir(dirname(path), { recursive: true })
    // 'wx' fails if another process created the file meanwhile; then its key wins.
    const handle = await open(path, 'wx', 0o600)
    try {
      await handle.writeFile(key.toBin())
      await handle.sync()
    } finally {
      await handle.close()
    }
    await chmod(path, 0o600)
    return key
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const raced = await readKey(path)
      if (raced !== undefined) return raced
    }
    throw new Ipv8Error('KEY_FILE', { path, cause: err })
  }
}

async function readKey(path: string): Promise<PrivateKey | undefined> {
  let data: Buffer
  try {
    data = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new Ipv8Error('KEY_FILE', { path, cause: err })
  }
  return PrivateKey.fromBin(data)
}
