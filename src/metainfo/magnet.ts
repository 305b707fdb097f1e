import { isIP } from 'node:net'
import { toHex } from '../common/index.js'
import type { FileIndexRange, MagnetLink, MagnetPeer, TorrentInfo } from './types.js'
import { MagnetError } from './types.js'

const MAX_MAGNET_LENGTH = 64 * 1024
const MAX_FILE_INDEX = 10_000_000
const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i
// BEP 52 magnets carry `urn:btmh:1220<sha-256>`: multihash code 0x12 (SHA-256), length 0x20.
const BTMH_SHA256 = /^1220[0-9a-f]{64}$/i

/**
 * Parses a magnet link (BEP 9): `xt=urn:btih:` (40 hex or 32 base32 characters), `dn`, `tr`, `ws`, `x.pe`, `so`
 * (BEP 53) and `xl`. Parameters may carry an index suffix (`tr.1`). A v2-only magnet (`urn:btmh:` without
 * `urn:btih:`) is rejected with `V2_NOT_SUPPORTED`; with both, the v2 hash is noted and the v1 hash used.
 *
 * @throws {MagnetError}
 * @example
 * ```ts
 * const magnet = parseMagnet('magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056&dn=Cosmos')
 * magnet.infoHashHex // 'c9e15763f722f23e98a29decdfae341b98d53056'
 * ```
 */
export function parseMagnet(uri: string): MagnetLink {
  if (uri.length > MAX_MAGNET_LENGTH) throw new MagnetError('TOO_LONG', { length: uri.length })
  const trimmed = uri.trim()
  if (!/^magnet:\?/i.test(trimmed)) throw new MagnetError('NOT_A_MAGNET')
  const params = new URLSearchParams(trimmed.slice('magnet:?'.length))

  let infoHash: Uint8Array | undefined
  let infoHashV2Hex: string | undefined
  let name: string | undefined
  let exactLength: number | undefined
  let selectOnly: FileIndexRange[] | undefined
  const trackers: string[] = []
  const webSeeds: string[] = []
  const peers: MagnetPeer[] = []
  for (const [rawKey, value] of params) {
    // BEP 9 allows numbered parameters, `xt.1`, `tr.2`.
    const key = rawKey.replace(/\.\d+$/, '').toLowerCase()
    if (key === 'xt') {
      const lower = value.toLowerCase()
      if (lower.startsWith('urn:btih:')) {
        const hash = decodeInfoHash(value.slice('urn:btih:'.length))
        if (infoHash !== undefined && toHex(infoHash) !== toHex(hash)) {
          throw new MagnetError('CONFLICTING_INFO_HASH', { first: toHex(infoHash), second: toHex(hash) })
        }
        infoHash = hash
      } else if (lower.startsWith('urn:btmh:')) {
        const multihash = lower.slice('urn:btmh:'.length)
        if (!BTMH_SHA256.test(multihash)) throw new MagnetError('INVALID_INFO_HASH', { value })
        infoHashV2Hex = multihash.slice(4)
      }
    } else if (key === 'dn') {
      name ??= value
    } else if (key === 'tr') {
      addUrl(trackers, value, ['http:', 'https:', 'udp:', 'ws:', 'wss:'])
    } else if (key === 'ws') {
      addUrl(webSeeds, value, ['http:', 'https:'])
    } else if (key === 'x.pe') {
      peers.push(parsePeer(value))
    } else if (key === 'so') {
      selectOnly = [...(selectOnly ?? []), ...parseSelectOnly(value)]
    } else if (key === 'xl') {
      if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new MagnetError('INVALID_LENGTH', { value })
      }
      exactLength = Number(value)
    }
  }
  if (infoHash === undefined) {
    if (infoHashV2Hex !== undefined) throw new MagnetError('V2_NOT_SUPPORTED', { infoHashV2: infoHashV2Hex })
    throw new MagnetError('MISSING_INFO_HASH')
  }
  return {
    infoHash,
    infoHashHex: toHex(infoHash),
    trackers,
    webSeeds,
    peers,
    ...(infoHashV2Hex !== undefined && { infoHashV2Hex }),
    ...(name !== undefined && { name }),
    ...(selectOnly !== undefined && { selectOnly: mergeRanges(selectOnly) }),
    ...(exactLength !== undefined && { exactLength }),
  }
}

/** Whether file `index` is wanted by a magnet's `so` ranges (all files are when there are none). */
export function isFileSelected(selectOnly: readonly FileIndexRange[] | undefined, index: number): boolean {
  if (selectOnly === undefined) return true
  return selectOnly.some((range) => index >= range.first && index <= range.last)
}

/**
 * Writes a magnet link with the 40-hex infohash, then `dn`, `tr`, `ws`, `x.pe`, `so` and `xl` when present.
 *
 * @example
 * ```ts
 * formatMagnet({ infoHash, trackers: ['udp://tracker.example:6969'], webSeeds: [], peers: [] })
 * ```
 */
export function formatMagnet(link: Omit<MagnetLink, 'infoHashHex'>): string {
  const parts = [`xt=urn:btih:${toHex(link.infoHash)}`]
  if (link.name !== undefined) parts.push(`dn=${encodeURIComponent(link.name)}`)
  for (const tracker of link.trackers) parts.push(`tr=${encodeURIComponent(tracker)}`)
  for (const seed of link.webSeeds) parts.push(`ws=${encodeURIComponent(seed)}`)
  for (const peer of link.peers) {
    const host = isIP(peer.host) === 6 ? `[${peer.host}]` : peer.host
    parts.push(`x.pe=${encodeURIComponent(`${host}:${peer.port}`)}`)
  }
  if (link.selectOnly !== undefined && link.selectOnly.length > 0) {
    const ranges = link.selectOnly.map((r) => (r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`))
    parts.push(`so=${ranges.join(',')}`)
  }
  if (link.exactLength !== undefined) parts.push(`xl=${link.exactLength}`)
  return `magnet:?${parts.join('&')}`
}

/** The magnet link of a torrent: infohash, name, every tracker, web seeds and the exact length. */
export function magnetFromTorrent(torrent: TorrentInfo): string {
  return formatMagnet({
    infoHash: torrent.infoHash,
    name: torrent.displayName,
    trackers: torrent.trackers.flat(),
    webSeeds: torrent.webSeeds,
    peers: [],
    exactLength: torrent.totalLength,
  })
}

function decodeInfoHash(text: string): Uint8Array {
  if (/^[0-9a-f]{40}$/i.test(text)) return Buffer.from(text, 'hex')
  if (/^[a-z2-7]{32}$/i.test(text)) return base32Decode(text.toUpperCase())
  throw new MagnetError('INVALID_INFO_HASH', { value: text })
}

function base32Decode(text: string): Uint8Array {
  const out = new Uint8Array((text.length * 5) / 8)
  let bits = 0
  let buffer = 0
  let at = 0
  for (const char of text) {
    buffer = (buffer << 5) | BASE32_ALPHABET.indexOf(char)
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[at++] = (buffer >>> bits) & 0xff
    }
  }
  return out
}

function addUrl(list: string[], value: string, protocols: readonly string[]): void {
  const url = value.trim()
  if (list.includes(url) || !URL.canParse(url) || !protocols.includes(new URL(url).protocol)) return
  list.push(url)
}

function parsePeer(value: string): MagnetPeer {
  const match = /^\[([0-9a-f:.]+)\]:(\d{1,5})$/i.exec(value) ?? /^([^:[\]]+):(\d{1,5})$/.exec(value)
  const host = match?.[1]
  const port = Number(match?.[2])
  const bracketed = value.startsWith('[')
  const validHost =
    host !== undefined &&
    (bracketed ? isIP(host) === 6 : isIP(host) === 4 || (isIP(host) === 0 && HOSTNAME.test(host)))
  if (!validHost || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new MagnetError('INVALID_PEER', { value })
  return { host, port }
}

function parseSelectOnly(value: string): FileIndexRange[] {
  return value.split(',').map((part) => {
    const match = /^(\d{1,8})(?:-(\d{1,8}))?$/.exec(part.trim())
    if (match === null) throw new MagnetError('INVALID_SELECT_ONLY', { value })
    const first = Number(match[1])
    const last = match[2] === undefined ? first : Number(match[2])
    if (last < first || last > MAX_FILE_INDEX) throw new MagnetError('INVALID_SELECT_ONLY', { value })
    return { first, last }
  })
}

/** Sorted, non-overlapping ranges with adjacent ones joined. */
function mergeRanges(ranges: readonly FileIndexRange[]): FileIndexRange[] {
  const sorted = [...ranges].sort((a, b) => a.first - b.first)
  const out: { first: number; last: number }[] = []
  for (const range of sorted) {
    const previous = out[out.length - 1]
    if (previous !== undefined && range.first <= previous.last + 1)
      previous.last = Math.max(previous.last, range.last)
    else out.push({ ...range })
  }
  return out
}
