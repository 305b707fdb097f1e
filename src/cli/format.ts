/** Text formatting of the client commands: sizes, rates, times, progress lines and tables. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** Bytes in binary units: `0 B`, `1023 B`, `1.0 KiB`, `12.3 MiB`, `1.50 GiB`… (three significant digits). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?'
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  if (unit === 0) return `${Math.round(value)} B`
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2
  // 1023.96 KiB would round to "1024 KiB": show the next unit instead
  const text = value.toFixed(digits)
  if (Number(text) >= 1024 && unit < UNITS.length - 1) return `1.00 ${UNITS[unit + 1]}`
  return `${text} ${UNITS[unit]}`
}

/** A rate in binary units per second, e.g. `1.20 MiB/s`. */
export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`
}

/** Seconds as `h:mm:ss`; `∞` when unknown, negative or beyond 100 days. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0 || seconds >= 100 * 86_400) return '∞'
  const total = Math.ceil(seconds)
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total % 60
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`
}

/** A fraction 0..1 as a percentage with one decimal; never shows 100.0 % before it is complete. */
export function formatPercent(fraction: number): string {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0))
  const tenths = clamped < 1 ? Math.min(999, Math.floor(clamped * 1000)) : 1000
  return `${(tenths / 10).toFixed(1)}%`
}

const STATE_TEXT: Record<string, string> = {
  DLSTATUS_ALLOCATING_DISKSPACE: 'allocating',
  DLSTATUS_WAITING4HASHCHECK: 'waiting to check',
  DLSTATUS_HASHCHECKING: 'checking',
  DLSTATUS_DOWNLOADING: 'downloading',
  DLSTATUS_SEEDING: 'seeding',
  DLSTATUS_STOPPED: 'stopped',
  DLSTATUS_STOPPED_ON_ERROR: 'error',
  DLSTATUS_METADATA: 'fetching metadata',
  DLSTATUS_CIRCUITS: 'building circuits',
}

/** A download state (`DLSTATUS_…`) in words. */
export function formatState(status: string): string {
  return STATE_TEXT[status] ?? status.replace(/^DLSTATUS_/, '').toLowerCase()
}

/** The fields of a REST download object the progress line and the table show. */
export interface DownloadView {
  readonly infohash: string
  readonly name: string
  readonly status: string
  readonly progress: number
  readonly size: number
  readonly speed_down: number
  readonly speed_up: number
  readonly eta: number
  readonly num_connected_peers: number
  readonly num_connected_seeds: number
  readonly error?: string
  /** The download's own limits in bytes/s, 0 = unlimited. */
  readonly download_limit?: number
  readonly upload_limit?: number
}

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width)
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`
}

/** Peers as `seeds+peers`, the connected ones. */
function peersText(d: DownloadView): string {
  return `${d.num_connected_seeds + d.num_connected_peers}`
}

/**
 * One progress line of a download: percentage (with a bar when `barWidth` > 0), bytes done of the size, rates,
 * connected peers, ETA and state.
 *
 * @example
 * ```ts
 * formatProgress(download, { barWidth: 20 })
 * // ' 42.0% [########------------] 4.20 MiB/10.0 MiB  down 1.00 MiB/s  up 0 B/s  peers 1  eta 0:00:06  downloading'
 * ```
 */
export function formatProgress(d: DownloadView, opts: { barWidth?: number } = {}): string {
  const downloading = d.status === 'DLSTATUS_DOWNLOADING' || d.status === 'DLSTATUS_METADATA'
  const parts = [formatPercent(d.progress).padStart(6)]
  if ((opts.barWidth ?? 0) > 0) parts.push(bar(d.progress, opts.barWidth ?? 0))
  const done = d.status === 'DLSTATUS_SEEDING' ? d.size : Math.floor(d.size * Math.min(1, d.progress))
  parts.push(
    d.size > 0 ? `${formatBytes(done)}/${formatBytes(d.size)}` : '?/?',
    ` down ${formatRate(d.speed_down)}`,
    ` up ${formatRate(d.speed_up)}`,
    ` peers ${peersText(d)}`,
    ` eta ${downloading ? formatEta(d.eta) : '-'}`,
    ` ${formatState(d.status)}`,
  )
  return parts.join(' ')
}

/** Text cut to `width` characters with an ellipsis. */
export function truncate(text: string, width: number): string {
  const chars = [...text]
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`
}

/** Rows as a left-aligned table; columns whose name starts with `>` are right-aligned (the `>` is dropped). */
export function formatTable(columns: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const right = columns.map((c) => c.startsWith('>'))
  const header = columns.map((c) => c.replace(/^>/, ''))
  const widths = header.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...(r[i] ?? '')].length)))
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => {
        const pad = ' '.repeat(Math.max(0, (widths[i] ?? 0) - [...cell].length))
        return right[i] ? pad + cell : cell + pad
      })
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)]
}

/** The `tribler downloads` table. */
export function formatDownloads(downloads: readonly DownloadView[]): string[] {
  return formatTable(
    ['INFOHASH', 'NAME', '>SIZE', '>PROGRESS', 'STATE', '>DOWN', '>UP', '>PEERS'],
    downloads.map((d) => [
      d.infohash.slice(0, 8),
      truncate(d.name, 40),
      d.size > 0 ? formatBytes(d.size) : '?',
      formatPercent(d.progress),
      d.status === 'DLSTATUS_STOPPED_ON_ERROR' && d.error
        ? `error: ${truncate(d.error, 30)}`
        : formatState(d.status),
      formatRate(d.speed_down),
      formatRate(d.speed_up),
      peersText(d),
    ]),
  )
}
