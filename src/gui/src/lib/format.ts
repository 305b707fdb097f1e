const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/**
 * Formats a byte count with binary units, three significant digits.
 *
 * @example formatBytes(1536) // '1.50 KiB'
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '–'
  if (bytes < 1024) return `${Math.round(bytes)} B`
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2
  return `${value.toFixed(digits)} ${UNITS[unit]}`
}

/** Formats a transfer rate in bytes per second; zero is shown as an en dash to keep tables quiet. */
export function formatRate(bytesPerSec: number): string {
  if (!Number.isFinite(bytesPerSec) || bytesPerSec <= 0) return '–'
  return `${formatBytes(bytesPerSec)}/s`
}

// libtorrent reports an unknown ETA as a huge number; anything beyond a year is "unknown" for a person.
const ETA_UNKNOWN_SEC = 365 * 24 * 3600

/**
 * Formats an ETA in seconds as the two largest units (`2h 05m`), `∞` when unknown.
 *
 * @example formatEta(3725) // '1h 02m'
 */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0 || seconds >= ETA_UNKNOWN_SEC) return '∞'
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`
  const d = Math.floor(h / 24)
  return `${d}d ${String(h % 24).padStart(2, '0')}h`
}

/** Formats a 0..1 fraction as a percentage with one decimal below 100 %. */
export function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return '–'
  const pct = Math.min(1, Math.max(0, fraction)) * 100
  return pct >= 100 ? '100%' : `${pct.toFixed(1)}%`
}

/** Formats unix seconds as a local date and time. */
export function formatTime(unixSec: number): string {
  if (!Number.isFinite(unixSec) || unixSec <= 0) return '–'
  return new Date(unixSec * 1000).toLocaleString()
}
