/**
 * BEP 29 packets: the 20-byte header (version 1), the extension chain and the selective ACK extension.
 * The header layout is declared once in {@link HEADER_LAYOUT}; encoding and decoding both walk it.
 */

/** Packet types (the high nibble of the first byte). */
export const PacketType = {
  DATA: 0,
  FIN: 1,
  STATE: 2,
  RESET: 3,
  SYN: 4,
} as const
export type PacketType = (typeof PacketType)[keyof typeof PacketType]

/** The only protocol version BEP 29 defines. */
export const UTP_VERSION = 1
/** Bytes of the fixed header. */
export const HEADER_BYTES = 20
/** Extension number of the selective ACK (BEP 29). */
export const EXTENSION_SACK = 1
/** Sequence and ack numbers are 16 bits and wrap. */
export const SEQ_MASK = 0xffff

/** A decoded header; the same object shape is filled by {@link decodePacket} and read by {@link encodeHeader}. */
export interface UtpHeader {
  type: PacketType
  version: number
  /** Type of the first extension (0: none). */
  extension: number
  connectionId: number
  /** Sender's clock in microseconds, modulo 2^32. */
  timestampUs: number
  /** Sender's view of our one-way delay: its receive time of our last packet minus our timestamp in it. */
  timestampDiffUs: number
  /** Bytes the sender can still receive. */
  wndSize: number
  seqNr: number
  ackNr: number
}

/** A decoded packet; `payload` and `sack` are views into the datagram (no copy). */
export interface UtpPacket extends UtpHeader {
  /** Selective ACK bitmask: bit i (LSB first in each byte) acknowledges `ackNr + 2 + i`. */
  sack: Buffer | undefined
  payload: Buffer
}

type FieldKind = 'u4hi' | 'u4lo' | 'u8' | 'u16' | 'u32'
type HeaderField = readonly [name: keyof UtpHeader, kind: FieldKind, offset: number]

/** Field order is wire order (BEP 29 "header format"); type and version share the first byte. */
export const HEADER_LAYOUT: readonly HeaderField[] = [
  ['type', 'u4hi', 0],
  ['version', 'u4lo', 0],
  ['extension', 'u8', 1],
  ['connectionId', 'u16', 2],
  ['timestampUs', 'u32', 4],
  ['timestampDiffUs', 'u32', 8],
  ['wndSize', 'u32', 12],
  ['seqNr', 'u16', 16],
  ['ackNr', 'u16', 18],
]

/** Writes `header` into the first {@link HEADER_BYTES} of `buf`. */
export function encodeHeader(buf: Buffer, header: UtpHeader): void {
  for (const [name, kind, offset] of HEADER_LAYOUT) {
    const value = header[name] >>> 0
    switch (kind) {
      case 'u4hi':
        buf[offset] = ((value & 0xf) << 4) | ((buf[offset] ?? 0) & 0xf)
        break
      case 'u4lo':
        buf[offset] = ((buf[offset] ?? 0) & 0xf0) | (value & 0xf)
        break
      case 'u8':
        buf[offset] = value & 0xff
        break
      case 'u16':
        buf.writeUInt16BE(value & 0xffff, offset)
        break
      case 'u32':
        buf.writeUInt32BE(value, offset)
        break
    }
  }
}

function readField(buf: Buffer, kind: FieldKind, offset: number): number {
  switch (kind) {
    case 'u4hi':
      return (buf[offset] ?? 0) >>> 4
    case 'u4lo':
      return (buf[offset] ?? 0) & 0xf
    case 'u8':
      return buf[offset] ?? 0
    case 'u16':
      return buf.readUInt16BE(offset)
    case 'u32':
      return buf.readUInt32BE(offset)
  }
}

/** Why a datagram was not accepted as a uTP packet. */
export type DecodeFailure = 'NOT_UTP' | 'MALFORMED'

/**
 * True when `data` starts like a uTP header (version 1, a known type). Datagrams that fail this test belong to
 * another protocol sharing the port (the DHT's bencoded messages start with `d`, UDP tracker replies with a
 * 32-bit action whose first byte is 0).
 */
export function looksLikeUtp(data: Uint8Array): boolean {
  if (data.length < HEADER_BYTES) return false
  const first = data[0] ?? 0
  return (first & 0xf) === UTP_VERSION && first >>> 4 <= PacketType.SYN
}

/**
 * Decodes one datagram into `out` (reused by the caller to keep the receive path allocation-light).
 * Returns undefined on success, otherwise why it failed; never throws.
 */
export function decodePacket(data: Buffer, out: UtpPacket): DecodeFailure | undefined {
  if (!looksLikeUtp(data)) return 'NOT_UTP'
  const header = out as unknown as Record<keyof UtpHeader, number>
  for (const [name, kind, offset] of HEADER_LAYOUT) header[name] = readField(data, kind, offset)
  out.sack = undefined
  let extension = out.extension
  let offset = HEADER_BYTES
  while (extension !== 0) {
    if (offset + 2 > data.length) return 'MALFORMED'
    const next = data[offset] ?? 0
    const length = data[offset + 1] ?? 0
    const end = offset + 2 + length
    if (end > data.length) return 'MALFORMED'
    // BEP 29 asks for a multiple of 4 bytes, but libtorrent sends as many bytes as its receive buffer spans.
    if (extension === EXTENSION_SACK && length > 0) out.sack = data.subarray(offset + 2, end)
    extension = next
    offset = end
  }
  out.payload = data.subarray(offset)
  return undefined
}

/** A zeroed version 1 header, to fill and pass to {@link encodeHeader}. */
export function emptyHeader(): UtpHeader {
  return {
    type: PacketType.DATA,
    version: UTP_VERSION,
    extension: 0,
    connectionId: 0,
    timestampUs: 0,
    timestampDiffUs: 0,
    wndSize: 0,
    seqNr: 0,
    ackNr: 0,
  }
}

/** A fresh packet object for {@link decodePacket} to fill. */
export function emptyPacket(): UtpPacket {
  return { ...emptyHeader(), sack: undefined, payload: Buffer.alloc(0) }
}

/** Fields of a packet to encode; `sack` and `payload` are optional. */
export interface EncodeInput extends Omit<UtpHeader, 'version' | 'extension'> {
  sack?: Uint8Array | undefined
  payload?: Uint8Array | undefined
}

/** Encodes a whole packet into a new buffer (header, optional SACK extension, payload). */
export function encodePacket(input: EncodeInput): Buffer {
  const sackBytes = input.sack === undefined ? 0 : 2 + input.sack.length
  const payloadBytes = input.payload?.length ?? 0
  const buf = Buffer.allocUnsafe(HEADER_BYTES + sackBytes + payloadBytes)
  buf[0] = 0
  encodeHeader(buf, {
    ...input,
    version: UTP_VERSION,
    extension: input.sack === undefined ? 0 : EXTENSION_SACK,
  })
  let offset = HEADER_BYTES
  if (input.sack !== undefined) {
    buf[offset] = 0
    buf[offset + 1] = input.sack.length
    buf.set(input.sack, offset + 2)
    offset += sackBytes
  }
  if (input.payload !== undefined) buf.set(input.payload, offset)
  return buf
}

/** `(a - b) mod 2^16` interpreted as signed: negative when `a` is before `b`. */
export function seqDistance(a: number, b: number): number {
  const d = (a - b) & SEQ_MASK
  return d >= 0x8000 ? d - 0x10000 : d
}

/** True when sequence number `a` comes strictly before `b`, across wraparound. */
export function seqLess(a: number, b: number): boolean {
  return seqDistance(a, b) < 0
}
