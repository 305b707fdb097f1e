/**
 * Global setup of the interop tier. Interop tests skip themselves when a reference client is missing, which suits
 * a developer's machine; in CI (`CI=true`, or `TRIBLER_REQUIRE_INTEROP=1`) a missing client fails the run at once
 * instead, so a missing install step can never pass as a run of skipped tests.
 */
import { spawnSync } from 'node:child_process'
import { libtorrentAvailable } from './libtorrent.js'

function onPath(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 }).error === undefined
}

const REQUIRED: Array<{ name: string; available: () => boolean }> = [
  { name: 'python3-libtorrent', available: libtorrentAvailable },
  { name: 'opentracker', available: () => onPath('opentracker', ['-h']) },
  { name: 'transmission-cli', available: () => onPath('transmission-create', ['--version']) },
  { name: 'aria2', available: () => onPath('aria2c', ['--version']) },
]

export default function setup(): void {
  const strict = process.env.CI === 'true' || process.env.TRIBLER_REQUIRE_INTEROP === '1'
  if (!strict) return
  const missing = REQUIRED.filter((tool) => !tool.available()).map((tool) => tool.name)
  if (missing.length > 0) {
    throw new Error(
      `interop reference clients missing: ${missing.join(', ')} (scripts/setup.sh --test installs them)`,
    )
  }
}
