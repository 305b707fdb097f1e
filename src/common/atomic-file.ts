import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * Replaces `path` with `data` so that a crash at any moment leaves either the old or the new file, never a mix:
 * the data goes to a temporary file beside it, is fsynced, renamed over the target, and the directory is fsynced
 * so the rename itself survives a power loss.
 *
 * @example
 * ```ts
 * writeFileAtomic(join(stateDir, 'settings.json'), JSON.stringify(tree))
 * ```
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): void {
  const temp = `${path}.tmp-${process.pid}`
  const fd = openSync(temp, 'w', opts.mode ?? 0o600)
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    let offset = 0
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset)
    fsyncSync(fd)
  } catch (err) {
    closeSync(fd)
    rmSync(temp, { force: true })
    throw err
  }
  closeSync(fd)
  renameSync(temp, path)
  syncDirectory(dirname(path))
}

function syncDirectory(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // some platforms cannot fsync a directory; the rename is still atomic there
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}
