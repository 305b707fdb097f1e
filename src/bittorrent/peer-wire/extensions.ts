import {
  type BencodeDict,
  type BencodeValue,
  decode,
  type Encodable,
  encode,
  locate,
} from '../../bencode/index.js'
import { decodeCompactPeers, encodeCompactPeers } from './compact.js'
import {
  type ExtendedHandshake,
  type PeerAddress,
  PeerWireError,
  type PexMessage,
  type PexPeer,
} from './types.js'

/** The message ids we assign to the extensions we speak, announced in our `m` dictionary (BEP 10). */
export const LOCAL_EXTENSION_IDS = { ut_metadata: 1, ut_pex: 2 } as const

/** Bytes of a ut_metadata piece (BEP 9); only the last piece is shorter. */
export const METADATA_PIECE_BYTES = 16_384

/** Most peers of one kind (added, dropped) decoded from one ut_pex message; BEP 11 asks senders for 50. */
export const MAX_PEX_PEERS = 200

const DECODE_LIMITS = { strict: false, maxDepth: 8, maxItems: 10_000 } as const

function invalid(reason: string, cause?: unknown): PeerWireError {
  return new PeerWireError('INVALID_EXTENSION_MESSAGE', cause === undefined ? { reason } : { reason, cause })
}

function decodeDict(payload: Uint8Array, allowTrailing = false): BencodeDict {
  let value: BencodeValue
  try {
    value = decode(payload, { ...DECODE_LIMITS, allowTrailing })
  } catch (err) {
    throw invalid('malformed bencode', err)
  }
  if (!isDict(value)) throw invalid('not a dictionary')
  return value
}

function isDict(value: BencodeValue | undefined): value is BencodeDict {
  return (
    typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && !Array.isArray(value)
  )
}

function int(value: BencodeValue | undefined): number | undefined {
  return typeof value === 'number' ? value : undefined
}

function bytes(value: BencodeValue | undefined): Buffer | undefined {
  return value instanceof Uint8Array
    ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    : undefined
}

/** Encodes an extended handshake's bencoded dictionary (the payload after the extended id 0). */
export function encodeExtendedHandshake(handshake: ExtendedHandshake): Buffer {
  const dict: Record<string, Encodable | undefined> = {
    m: handshake.m,
    v: handshake.v,
    p: handshake.p,
    reqq: handshake.reqq,
    yourip: handshake.yourip,
    metadata_size: handshake.metadataSize,
    upload_only: handshake.uploadOnly === undefined ? undefined : handshake.uploadOnly ? 1 : 0,
  }
  return encode(dict)
}

/**
 * Decodes an extended handshake. Only `m` must be well formed; fields of the wrong type or out of range are
 * ignored, as other clients send many variants.
 */
export function decodeExtendedHandshake(payload: Uint8Array): ExtendedHandshake {
  const dict = decodeDict(payload)
  const mValue = dict.m
  if (mValue !== undefined && !isDict(mValue)) throw invalid('m is not a dictionary')
  const m: Record<string, number> = {}
  for (const [name, id] of Object.entries(mValue ?? {})) {
    if (typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= 255) m[name] = id
  }
  const result: ExtendedHandshake = { m }
  const v = bytes(dict.v)
  if (v !== undefined) result.v = v.toString('utf8')
  const p = int(dict.p)
  if (p !== undefined && p > 0 && p < 65_536) result.p = p
  const reqq = int(dict.reqq)
  if (reqq !== undefined && reqq > 0) result.reqq = reqq
  const yourip = bytes(dict.yourip)
  if (yourip !== undefined && (yourip.length === 4 || yourip.length === 16))
    result.yourip = Buffer.from(yourip)
  const metadataSize = int(dict.metadata_size)
  if (metadataSize !== undefined && metadataSize > 0) result.metadataSize = metadataSize
  const uploadOnly = int(dict.upload_only)
  if (uploadOnly !== undefined) result.uploadOnly = uploadOnly !== 0
  return result
}

/** A ut_metadata message (BEP 9). */
export type MetadataMessage =
  | { type: 'request'; piece: number }
  | { type: 'data'; piece: number; totalSize: number; data: Buffer }
  | { type: 'reject'; piece: number }

const METADATA_TYPES = { request: 0, data: 1, reject: 2 } as const

/** Encodes a ut_metadata message payload; a data message carries its piece after the dictionary. */
export function encodeMetadataMessage(msg: MetadataMessage): Buffer {
  const dict = encode({
    msg_type: METADATA_TYPES[msg.type],
    piece: msg.piece,
    total_size: msg.type === 'data' ? msg.totalSize : undefined,
  })
  return msg.type === 'data' ? Buffer.concat([dict, msg.data]) : dict
}

/** Decodes a ut_metadata message payload. The data of a data message is a view of `payload`. */
export function decodeMetadataMessage(payload: Buffer): MetadataMessage {
  let end: number
  try {
    const span = locate(payload, [], { ...DECODE_LIMITS, allowTrailing: true })
    end = span?.end ?? payload.length
  } catch (err) {
    throw invalid('malformed bencode', err)
  }
  const dict = decodeDict(payload.subarray(0, end))
  const msgType = int(dict.msg_type)
  const piece = int(dict.piece)
  if (piece === undefined || piece < 0) throw invalid('ut_metadata without a piece')
  if (msgType === METADATA_TYPES.request) return { type: 'request', piece }
  if (msgType === METADATA_TYPES.reject) return { type: 'reject', piece }
  if (msgType === METADATA_TYPES.data) {
    const totalSize = int(dict.total_size)
    if (totalSize === undefined || totalSize <= 0) throw invalid('ut_metadata data without total_size')
    return { type: 'data', piece, totalSize, data: payload.subarray(end) }
  }
  throw invalid('unknown ut_metadata msg_type')
}

/** Encodes a ut_pex message (BEP 11), splitting peers by address family. */
export function encodePex(msg: PexMessage): Buffer {
  const v4 = (p: PeerAddress): boolean => !p.host.includes(':')
  const flags = (peers: PexPeer[]): Buffer => Buffer.from(peers.map((p) => p.flags & 0xff))
  const added4 = msg.added.filter(v4)
  const added6 = msg.added.filter((p) => !v4(p))
  return encode({
    added: encodeCompactPeers(added4, 4),
    'added.f': flags(added4),
    added6: encodeCompactPeers(added6, 6),
    'added6.f': flags(added6),
    dropped: encodeCompactPeers(msg.dropped.filter(v4), 4),
    dropped6: encodeCompactPeers(
      msg.dropped.filter((p) => !v4(p)),
      6,
    ),
  })
}

/** Decodes a ut_pex message; each list is capped at {@link MAX_PEX_PEERS}. */
export function decodePex(payload: Uint8Array): PexMessage {
  const dict = decodeDict(payload)
  const withFlags = (key: string, family: 4 | 6): PexPeer[] => {
    const compact = bytes(dict[key])
    if (compact === undefined) return []
    const f = bytes(dict[`${key}.f`])
    return decodeCompactPeers(compact, family)
      .slice(0, MAX_PEX_PEERS)
      .map((peer, i) => ({ ...peer, flags: f?.[i] ?? 0 }))
  }
  const plain = (key: string, family: 4 | 6): PeerAddress[] => {
    const compact = bytes(dict[key])
    return compact === undefined ? [] : decodeCompactPeers(compact, family).slice(0, MAX_PEX_PEERS)
  }
  return {
    added: [...withFlags('added', 4), ...withFlags('added6', 6)],
    dropped: [...plain('dropped', 4), ...plain('dropped6', 6)],
  }
}
