import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

/** Where the core keeps its files inside the state directory. */
export interface StatePaths {
  readonly root: string
  /** settings.json: the settings tree. */
  readonly settings: string
  /** tribler.db: the SQLite store. */
  readonly database: string
  /** keys/: identity key pairs (mode 0700). */
  readonly keys: string
  /** logs/: `tribler-core.log` and its rotated predecessor. */
  readonly logs: string
  readonly coreLog: string
  readonly guiLog: string
  /** resume/: per-download resume data. */
  readonly resume: string
}

/** The file layout of a state directory. */
export function statePaths(root: string): StatePaths {
  const logs = join(root, 'logs')
  return {
    root,
    settings: join(root, 'settings.json'),
    database: join(root, 'tribler.db'),
    keys: join(root, 'keys'),
    logs,
    coreLog: join(logs, 'tribler-core.log'),
    guiLog: join(logs, 'tribler-gui.log'),
    resume: join(root, 'resume'),
  }
}

/**
 * The state directory: the `--state-dir` flag, else `TRIBLER_STATE_DIR`, else `~/.tribler-ts`.
 */
export function resolveStateDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? (env.TRIBLER_STATE_DIR === '' ? undefined : env.TRIBLER_STATE_DIR)
  return resolve(chosen ?? join(homedir(), '.tribler-ts'))
}

/** The download folder used when `download_defaults.saveas` is not set: `~/Downloads/TriblerDownloads`. */
export function defaultDownloadDir(): string {
  return join(homedir(), 'Downloads', 'TriblerDownloads')
}

/**
 * Whether the public network is on: off with `TRIBLER_NO_PUBLIC_NETWORK=1` (or `true`), unless an explicit
 * choice is given.
 */
export function publicNetworkFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.TRIBLER_NO_PUBLIC_NETWORK?.toLowerCase()
  return !(value === '1' || value === 'true' || value === 'yes')
}
