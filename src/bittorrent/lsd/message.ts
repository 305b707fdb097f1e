import type { SocketAddress } from '../../net/index.js'
import { type LsdAnnounce, LsdError } from './types.js'

/** Longest BT-SEARCH message accepted. */
const MAX_MESSAGE_BYTES = 1400
/** Info hashes accepted in one message. */
const MAX_INFO_HASHES = 16

/** Encodes a BT-SEARCH message (BEP 14) for some info hashes (lowercase hex). */
export function encodeLsdAnnounce(group: SocketAddress, announce: LsdAnnounce): Buffer {
  const host = group.host.includes(':') ? `[${group.host}]:${group.port}` : `${group.host}:${group.port}`
  const lines = ['BT-SEARCH * HTTP/1.1', `Host: ${host}`, `Port: ${announce.port}`]
  for (const hash of announce.infoHashes) lines.push(`Infohash: ${hash}`)
  if (announce.cookie !== undefined) lines.push(`cookie: ${announce.cookie}`)
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n\r\n`, 'latin1')
}

/**
 * Parses a BT-SEARCH message. Header names are case-insensitive; several `Infohash` headers are allowed.
 *
 * @throws {LsdError} `INVALID_MESSAGE` for anything else.
 */
export function decodeLsdAnnounce(data: Uint8Array): LsdAnnounce {
  if (data.length > MAX_MESSAGE_BYTES) throw new LsdError('INVALID_MESSAGE', { reason: 'too large' })
  const text = Buffer.from(data).toString('latin1')
  const lines = text.split(/\r?\n/)
  if (lines[0] !== 'BT-SEARCH * HTTP/1.1') throw new LsdError('INVALID_MESSAGE', { reason: 'request line' })
  let port: number | undefined
  let cookie: string | undefined
  const infoHashes: string[] = []
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    if (name === 'port') {
      if (!/^\d{1,5}$/.test(value)) throw new LsdError('INVALID_MESSAGE', { field: 'port' })
      port = Number(value)
    } else if (name === 'infohash') {
      if (!/^[0-9a-fA-F]{40}$/.test(value)) throw new LsdError('INVALID_MESSAGE', { field: 'infohash' })
      if (infoHashes.length < MAX_INFO_HASHES) infoHashes.push(value.toLowerCase())
    } else if (name === 'cookie') {
      cookie = value.slice(0, 64)
    }
  }
  if (port === undefined || port <= 0 || port > 0xffff)
    throw new LsdError('INVALID_MESSAGE', { field: 'port' })
  if (infoHashes.length === 0) throw new LsdError('INVALID_MESSAGE', { field: 'infohash' })
  return cookie === undefined ? { port, infoHashes } : { port, infoHashes, cookie }
}
