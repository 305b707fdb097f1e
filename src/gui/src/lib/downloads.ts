import type { Download, MetainfoFile, TorrentInfo } from '../api/types.js'

/** How a download's state reads in the GUI, and the colour family it gets. */
export interface StatusView {
  label: string
  tone: 'active' | 'done' | 'paused' | 'error' | 'checking'
}

/** The label and tone of a download's `status` (a `DLSTATUS_*` name). */
export function statusView(d: Pick<Download, 'status' | 'progress'>): StatusView {
  switch (d.status) {
    case 'DLSTATUS_DOWNLOADING':
      return { label: 'Downloading', tone: 'active' }
    case 'DLSTATUS_SEEDING':
      return { label: 'Seeding', tone: 'done' }
    case 'DLSTATUS_STOPPED':
      return { label: d.progress >= 1 ? 'Completed' : 'Paused', tone: 'paused' }
    case 'DLSTATUS_STOPPED_ON_ERROR':
      return { label: 'Error', tone: 'error' }
    case 'DLSTATUS_METADATA':
      return { label: 'Fetching metadata', tone: 'checking' }
    case 'DLSTATUS_CIRCUITS':
      return { label: 'Building circuits', tone: 'checking' }
    case 'DLSTATUS_HASHCHECKING':
      return { label: 'Checking', tone: 'checking' }
    case 'DLSTATUS_WAITING4HASHCHECK':
      return { label: 'Queued for check', tone: 'checking' }
    case 'DLSTATUS_ALLOCATING_DISKSPACE':
      return { label: 'Allocating', tone: 'checking' }
    default:
      return { label: d.status.replace(/^DLSTATUS_/, '').toLowerCase(), tone: 'paused' }
  }
}

/** True for downloads a "pause" applies to; false for those a "resume" applies to. */
export function isRunning(d: Pick<Download, 'status'>): boolean {
  return d.status !== 'DLSTATUS_STOPPED' && d.status !== 'DLSTATUS_STOPPED_ON_ERROR'
}

/** Download list filters of the downloads page. */
export type DownloadFilter = 'all' | 'downloading' | 'seeding' | 'paused' | 'error'

/** Whether a download belongs in a filter tab. */
export function matchesFilter(d: Pick<Download, 'status'>, filter: DownloadFilter): boolean {
  switch (filter) {
    case 'all':
      return true
    case 'downloading':
      return !['DLSTATUS_SEEDING', 'DLSTATUS_STOPPED', 'DLSTATUS_STOPPED_ON_ERROR'].includes(d.status)
    case 'seeding':
      return d.status === 'DLSTATUS_SEEDING'
    case 'paused':
      return d.status === 'DLSTATUS_STOPPED'
    case 'error':
      return d.status === 'DLSTATUS_STOPPED_ON_ERROR'
  }
}

/**
 * The `uri` PUT /downloads and GET /torrentinfo take for what the person typed: magnets and http(s) URLs as they
 * are, `file:` URIs as they are, and an absolute local path as a `file:` URI with a percent-encoded path.
 * Returns undefined for anything else.
 *
 * @example toTorrentUri('/home/me/a b.torrent') // 'file:/home/me/a%20b.torrent'
 */
export function toTorrentUri(input: string): string | undefined {
  const text = input.trim()
  if (text === '') return undefined
  if (/^magnet:\?/i.test(text) || /^https?:\/\//i.test(text) || /^file:/i.test(text)) return text
  if (/^[0-9a-f]{40}$/i.test(text)) return `magnet:?xt=urn:btih:${text.toLowerCase()}`
  if (text.startsWith('/') || /^[a-z]:\\/i.test(text)) {
    const path = text.replace(/\\/g, '/')
    return `file:${path
      .split('/')
      .map((part) => (/^[a-z]:$/i.test(part) ? part : encodeURIComponent(part)))
      .join('/')}`
  }
  return undefined
}

/** A file of a torrent as the add dialog lists it. */
export interface TorrentFileEntry {
  /** Path inside the torrent, `/`-separated, as `selected_files[]` names it. */
  path: string
  size: number
}

/** The files of a torrent from GET /torrentinfo (a single-file torrent has one, named after the torrent). */
export function torrentFiles(info: TorrentInfo['metainfo']['info']): TorrentFileEntry[] {
  const files: MetainfoFile[] | undefined = Array.isArray(info.files) ? info.files : undefined
  if (files) {
    return files.map((f) => ({
      path: Array.isArray(f.path) ? f.path.map(String).join('/') : String(f.path),
      size: Number(f.length) || 0,
    }))
  }
  return [{ path: String(info.name ?? 'file'), size: Number(info.length) || 0 }]
}

/** Display name of a magnet link (`dn`), or its infohash. */
export function magnetName(uri: string): string | undefined {
  if (!/^magnet:\?/i.test(uri)) return undefined
  const params = new URLSearchParams(uri.slice(uri.indexOf('?') + 1))
  const dn = params.get('dn')
  if (dn) return dn
  const xt = params.getAll('xt').find((x) => /^urn:btih:/i.test(x))
  return xt?.slice('urn:btih:'.length)
}

/** Total number of connected peers and seeds, and of known ones, as "connected (known)". */
export function peersText(d: Download): string {
  const connected = (d.num_connected_peers || 0) + (d.num_connected_seeds || 0)
  const known = (d.num_peers || 0) + (d.num_seeds || 0)
  return known > connected ? `${connected} (${known})` : String(connected)
}
