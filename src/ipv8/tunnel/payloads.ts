import type { SocketAddress } from '../../net/index.js'
import {
  nested,
  nestedList,
  type PayloadOf,
  type PayloadSchema,
  PREFIX_LENGTH,
  payload,
  struct,
} from '../serialization/index.js'
import { TunnelError } from './errors.js'
import type { CircuitId } from './types.js'

// Field order is wire order; formats are py-ipv8's names (messaging/anonymization/payload.py). Every cell
// payload starts with `circuitId: 'I'`, which travels in the cell header instead (spec §7.1).

/** The flags piggybacked on every tunnel introduction request and response. */
export const ExtraIntroductionPayload = struct({ flags: 'flags' }, 'extra-introduction')
export type ExtraIntroductionPayload = PayloadOf<typeof ExtraIntroductionPayload>

/** msg 0: a cell, `I circuit_id || ? plaintext || ? relay_early || message`. */
export const CellPayload = payload(
  0,
  { circuitId: 'I', plaintext: '?', relayEarly: '?', message: 'raw' },
  'cell',
)
export type CellPayload = PayloadOf<typeof CellPayload>

/** msg 1: UDP data through a circuit; `origin` is 0.0.0.0:0 towards the exit, the replying address back. */
export const DataPayload = payload(
  1,
  { circuitId: 'I', destination: 'address', origin: 'address', data: 'raw' },
  'data',
)
export type DataPayload = PayloadOf<typeof DataPayload>

/** msg 2 (plaintext): start a circuit at a hop; `key` is the initiator's ephemeral X25519 key. */
export const CreatePayload = payload(
  2,
  { circuitId: 'I', identifier: 'H', nodePublicKey: 'varlenH', key: 'varlenH' },
  'create',
)
export type CreatePayload = PayloadOf<typeof CreatePayload>

/** msg 3 (plaintext): the hop's answer, with its candidates encrypted FORWARD. */
export const CreatedPayload = payload(
  3,
  { circuitId: 'I', identifier: 'H', key: 'varlenH', auth: '32s', candidatesEnc: 'raw' },
  'created',
)
export type CreatedPayload = PayloadOf<typeof CreatedPayload>

/** msg 4: ask the last hop to create the next one; `nodeAddress` is 0.0.0.0:0 for a listed candidate. */
export const ExtendPayload = payload(
  4,
  { circuitId: 'I', identifier: 'H', nodePublicKey: 'varlenH', key: 'varlenH', nodeAddress: 'ip_address' },
  'extend',
)
export type ExtendPayload = PayloadOf<typeof ExtendPayload>

/** msg 5: the next hop's created, passed back unchanged. */
export const ExtendedPayload = payload(
  5,
  { circuitId: 'I', identifier: 'H', key: 'varlenH', auth: '32s', candidatesEnc: 'raw' },
  'extended',
)
export type ExtendedPayload = PayloadOf<typeof ExtendedPayload>

/** msg 6: keep-alive down a circuit. */
export const PingPayload = payload(6, { circuitId: 'I', identifier: 'H' }, 'ping')
export type PingPayload = PayloadOf<typeof PingPayload>

/** msg 7: keep-alive answer. */
export const PongPayload = payload(7, { circuitId: 'I', identifier: 'H' }, 'pong')
export type PongPayload = PayloadOf<typeof PongPayload>

/** msg 8: not a cell but a signed message without global time, sent to the neighbour on the circuit. */
export const DestroyPayload = payload(8, { circuitId: 'I', reason: 'H' }, 'destroy')
export type DestroyPayload = PayloadOf<typeof DestroyPayload>

/** msg 9: make the exit of this circuit an introduction point for `infoHash`. */
export const EstablishIntroPayload = payload(
  9,
  { circuitId: 'I', identifier: 'H', infoHash: '20s', publicKey: 'varlenH' },
  'establish-intro',
)
export type EstablishIntroPayload = PayloadOf<typeof EstablishIntroPayload>

/** msg 10. */
export const IntroEstablishedPayload = payload(10, { circuitId: 'I', identifier: 'H' }, 'intro-established')
export type IntroEstablishedPayload = PayloadOf<typeof IntroEstablishedPayload>

/** msg 11: make the exit of this circuit a rendezvous point for `cookie`. */
export const EstablishRendezvousPayload = payload(
  11,
  { circuitId: 'I', identifier: 'H', cookie: '20s' },
  'establish-rendezvous',
)
export type EstablishRendezvousPayload = PayloadOf<typeof EstablishRendezvousPayload>

/** msg 12. */
export const RendezvousEstablishedPayload = payload(
  12,
  { circuitId: 'I', identifier: 'H', rendezvousPointAddress: 'ip_address' },
  'rendezvous-established',
)
export type RendezvousEstablishedPayload = PayloadOf<typeof RendezvousEstablishedPayload>

/** msg 13 (no circuit id; carried in data payloads). */
export const CreateE2EPayload = payload(
  13,
  { identifier: 'H', infoHash: '20s', nodePublicKey: 'varlenH', key: 'varlenH' },
  'create-e2e',
)
export type CreateE2EPayload = PayloadOf<typeof CreateE2EPayload>

/** msg 14 (no circuit id). */
export const CreatedE2EPayload = payload(
  14,
  { identifier: 'H', key: 'varlenH', auth: '32s', rpInfoEnc: 'raw' },
  'created-e2e',
)
export type CreatedE2EPayload = PayloadOf<typeof CreatedE2EPayload>

/** msg 15. */
export const LinkE2EPayload = payload(15, { circuitId: 'I', identifier: 'H', cookie: '20s' }, 'link-e2e')
export type LinkE2EPayload = PayloadOf<typeof LinkE2EPayload>

/** msg 16. */
export const LinkedE2EPayload = payload(16, { circuitId: 'I', identifier: 'H' }, 'linked-e2e')
export type LinkedE2EPayload = PayloadOf<typeof LinkedE2EPayload>

/** msg 17. */
export const PeersRequestPayload = payload(
  17,
  { circuitId: 'I', identifier: 'H', infoHash: '20s' },
  'peers-request',
)
export type PeersRequestPayload = PayloadOf<typeof PeersRequestPayload>

/** How an introduction point was learned: 0 unknown, 1 DHT, 2 PEX. */
export const IntroductionInfo = struct(
  { address: 'ip_address', key: 'varlenH', seederPk: 'varlenH', source: 'B' },
  'introduction-info',
)
export type IntroductionInfo = PayloadOf<typeof IntroductionInfo>

/** msg 18. */
export const PeersResponsePayload = payload(
  18,
  { circuitId: 'I', identifier: 'H', infoHash: '20s', peers: nestedList(IntroductionInfo) },
  'peers-response',
)
export type PeersResponsePayload = PayloadOf<typeof PeersResponsePayload>

/** The rendezvous point description a seeder encrypts into created-e2e (packed as a nested payload). */
export const RendezvousInfo = struct(
  { address: 'ip_address', key: 'varlenH', cookie: '20s' },
  'rendezvous-info',
)
export type RendezvousInfo = PayloadOf<typeof RendezvousInfo>
/** {@link RendezvousInfo} behind its uint16 length, as it is encrypted. */
export const RendezvousInfoBlob = struct({ info: nested(RendezvousInfo) }, 'rendezvous-info-blob')

/** msg 19: speed test; needs the SPEED_TEST flag. */
export const TestRequestPayload = payload(
  19,
  { circuitId: 'I', identifier: 'H', responseSize: 'H', data: 'raw' },
  'test-request',
)
export type TestRequestPayload = PayloadOf<typeof TestRequestPayload>

/** msg 20. */
export const TestResponsePayload = payload(
  20,
  { circuitId: 'I', identifier: 'H', data: 'raw' },
  'test-response',
)
export type TestResponsePayload = PayloadOf<typeof TestResponsePayload>

/** msg 28 (Tribler): declared at Tribler HEAD without a handler. */
export const HttpRequestPayload = payload(
  28,
  { circuitId: 'I', identifier: 'I', target: 'address', request: 'varlenH' },
  'http-request',
)
export type HttpRequestPayload = PayloadOf<typeof HttpRequestPayload>

/** msg 29 (Tribler). */
export const HttpResponsePayload = payload(
  29,
  { circuitId: 'I', identifier: 'I', part: 'H', total: 'H', response: 'varlenH' },
  'http-response',
)
export type HttpResponsePayload = PayloadOf<typeof HttpResponsePayload>

/** The candidates list inside created/extended, before encryption. */
export const CandidateList = struct({ keys: 'varlenH-list' }, 'candidates')

/** Inner message ids that travel in plaintext cells; any other id with the plaintext flag is dropped. */
export const PLAINTEXT_MESSAGE_IDS: ReadonlySet<number> = new Set([CreatePayload.msgId, CreatedPayload.msgId])

/** Offset of the cell's message (after prefix, id 0, circuit id and the two flags). */
export const CELL_MESSAGE_OFFSET = PREFIX_LENGTH + 1 + 4 + 2

/** A cell split into its header fields; `message` is `inner id || payload without circuit id`, maybe encrypted. */
export interface Cell {
  circuitId: CircuitId
  plaintext: boolean
  relayEarly: boolean
  message: Buffer
}

/** Builds the datagram of a cell. */
export function encodeCell(prefix: Buffer, cell: Cell): Buffer {
  const out = Buffer.allocUnsafe(CELL_MESSAGE_OFFSET + cell.message.length)
  prefix.copy(out, 0)
  out[PREFIX_LENGTH] = CellPayload.msgId
  out.writeUInt32BE(cell.circuitId >>> 0, PREFIX_LENGTH + 1)
  out[PREFIX_LENGTH + 5] = cell.plaintext ? 1 : 0
  out[PREFIX_LENGTH + 6] = cell.relayEarly ? 1 : 0
  cell.message.copy(out, CELL_MESSAGE_OFFSET)
  return out
}

/**
 * Writes a cell header into the first {@link CELL_MESSAGE_OFFSET} bytes of `out`, whose message already follows
 * them (the layer functions leave that room), and returns `out`.
 */
export function writeCellHeader(
  out: Buffer,
  prefix: Buffer,
  circuitId: CircuitId,
  relayEarly: boolean,
): Buffer {
  prefix.copy(out, 0)
  out[PREFIX_LENGTH] = CellPayload.msgId
  out.writeUInt32BE(circuitId >>> 0, PREFIX_LENGTH + 1)
  out[PREFIX_LENGTH + 5] = 0
  out[PREFIX_LENGTH + 6] = relayEarly ? 1 : 0
  return out
}

/** Splits a cell datagram (prefix already matched); throws `BAD_CELL` if it has no inner message id. */
export function decodeCell(data: Buffer): Cell {
  if (data.length <= CELL_MESSAGE_OFFSET)
    throw new TunnelError('BAD_CELL', { reason: 'short', length: data.length })
  return {
    circuitId: data.readUInt32BE(PREFIX_LENGTH + 1),
    plaintext: data[PREFIX_LENGTH + 5] !== 0,
    relayEarly: data[PREFIX_LENGTH + 6] !== 0,
    message: data.subarray(CELL_MESSAGE_OFFSET),
  }
}

/** A cell payload value: every cell payload has a circuit id. */
type Cellable = { circuitId: number }

/** `inner id || payload without its leading circuit id`: the message a cell carries (before encryption). */
export function cellMessage<T extends Cellable>(schema: PayloadSchema<T>, value: T): Buffer {
  const body = schema.encode(value)
  body[3] = schema.msgId
  return body.subarray(3)
}

const DataBody = struct({ destination: 'address', origin: 'address', data: 'raw' }, 'data-body')
const DATA_HEADERS = new Map<string, Buffer>()
let lastDataHeader: { destination: SocketAddress; origin: SocketAddress; header: Buffer } | undefined

/**
 * `1 || destination || origin`: what precedes the payload in a data cell message. Built once per pair of
 * addresses and kept (a bounded cache), since a flow sends every datagram between the same two.
 */
export function dataCellHeader(destination: SocketAddress, origin: SocketAddress): Buffer {
  const last = lastDataHeader
  if (
    last !== undefined &&
    last.destination.port === destination.port &&
    last.origin.port === origin.port &&
    last.destination.host === destination.host &&
    last.origin.host === origin.host
  )
    return last.header
  const key = `${destination.host}|${destination.port}|${origin.host}|${origin.port}`
  let header = DATA_HEADERS.get(key)
  if (header === undefined) {
    const body = DataBody.encode({ destination, origin, data: Buffer.alloc(0) })
    header = Buffer.concat([Buffer.from([DataPayload.msgId]), body])
    if (DATA_HEADERS.size >= 1024) DATA_HEADERS.clear()
    DATA_HEADERS.set(key, header)
  }
  lastDataHeader = { destination, origin, header }
  return header
}

/** The cell message of a data payload (`1 || destination || origin || data`), built with one copy of `data`. */
export function dataCellMessage(destination: SocketAddress, origin: SocketAddress, data: Buffer): Buffer {
  const header = dataCellHeader(destination, origin)
  const out = Buffer.allocUnsafe(header.length + data.length)
  out.set(header, 0)
  out.set(data, header.length)
  return out
}

let lastDecoded: { header: Buffer; destination: SocketAddress; origin: SocketAddress } | undefined

/**
 * Decodes a decrypted data cell message without copying its payload. A flow's cells start with the same
 * `1 || destination || origin` bytes, and bytes equal to the last header decode to the same addresses, so those
 * are reused rather than parsed (and their host strings built) again.
 */
export function decodeDataCellMessage(circuitId: CircuitId, message: Buffer): DataPayload {
  if (message[0] !== DataPayload.msgId) throw new TunnelError('BAD_CELL', { reason: 'not a data message' })
  const last = lastDecoded
  if (last !== undefined) {
    const length = last.header.length
    if (message.length >= length && message.compare(last.header, 0, length, 0, length) === 0)
      return { circuitId, destination: last.destination, origin: last.origin, data: message.subarray(length) }
  }
  const body = DataBody.decode(message, 1)
  const headerLength = message.length - body.data.length
  lastDecoded = {
    header: Buffer.from(message.subarray(0, headerLength)),
    destination: body.destination,
    origin: body.origin,
  }
  return { circuitId, ...body }
}

/** Decodes a decrypted cell message with the circuit id from the cell header. */
export function decodeCellMessage<T extends Cellable>(
  schema: PayloadSchema<T>,
  circuitId: CircuitId,
  message: Buffer,
): T {
  const body = Buffer.allocUnsafe(message.length + 3)
  body.writeUInt32BE(circuitId >>> 0, 0)
  message.copy(body, 4, 1)
  return schema.decode(body)
}

/**
 * The largest UDP payload a circuit of `hops` hops carries to an IPv4 destination without its cells growing past
 * `mtu` (IP and UDP headers included): every layer adds 24 bytes, the cell header 29 and the data header 15.
 *
 * @example
 * ```ts
 * maxCircuitPayload(3) // 1356: the uTP packet size to use over 3-hop circuits
 * ```
 */
export function maxCircuitPayload(hops: number, mtu = 1500): number {
  const ipUdp = 28
  const dataHeader = 1 + 7 + 7
  return mtu - ipUdp - CELL_MESSAGE_OFFSET - dataHeader - hops * 24
}

/** Whether `data` looks like an IPv8 datagram (spec §7.6 data checker). */
export function couldBeIpv8(data: Uint8Array): boolean {
  return data.length >= 23 && data[0] === 0 && (data[1] === 1 || data[1] === 2)
}

/** Whether `data` could be uTP (BEP 29): ≥ 20 bytes, type 0–4, version 1, extension 0–3. */
export function couldBeUtp(data: Uint8Array): boolean {
  if (data.length < 20) return false
  const first = data[0] as number
  return first >> 4 <= 4 && (first & 15) === 1 && (data[1] as number) <= 3
}

function u32(data: Uint8Array, offset: number): number {
  return (
    (((data[offset] as number) << 24) >>> 0) +
    ((data[offset + 1] as number) << 16) +
    ((data[offset + 2] as number) << 8) +
    (data[offset + 3] as number)
  )
}

/** Whether `data` could be a UDP tracker message: action 0–3 at offset 0 or 8. */
export function couldBeUdpTracker(data: Uint8Array): boolean {
  return (data.length >= 8 && u32(data, 0) <= 3) || (data.length >= 12 && u32(data, 8) <= 3)
}

/** Whether `data` could be a DHT message: a bencoded dictionary. */
export function couldBeDht(data: Uint8Array): boolean {
  return data.length > 1 && data[0] === 0x64 && data[data.length - 1] === 0x65
}

/** Whether `data` could be any BitTorrent UDP traffic. */
export function couldBeBitTorrent(data: Uint8Array): boolean {
  return couldBeUtp(data) || couldBeUdpTracker(data) || couldBeDht(data)
}
