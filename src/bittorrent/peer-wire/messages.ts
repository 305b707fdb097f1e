import { PeerWireError } from './types.js'

/**
 * Field formats of a peer wire message, in wire order: big-endian unsigned integers, or `rest` for the bytes that
 * follow the fixed fields (a bitfield, a block, an extension payload). At most one `rest`, and only last.
 */
export type FieldFormat = 'u8' | 'u16' | 'u32' | 'rest'

type Fields = Record<string, FieldFormat>
type FieldValue<F extends FieldFormat> = F extends 'rest' ? Buffer : number

/** The decoded value of a message declared with `fields`. */
export type MessageValue<F extends Fields> = { [K in keyof F]: FieldValue<F[K]> }

const FORMAT_BYTES: Record<Exclude<FieldFormat, 'rest'>, number> = { u8: 1, u16: 2, u32: 4 }

/**
 * One peer wire message type, declared once: its id, name and fields give its encoder, its decoder and its type.
 */
export interface MessageSpec<N extends string = string, F extends Fields = Fields> {
  readonly id: number
  readonly name: N
  readonly fields: F
  /** Bytes of the fixed fields (after the id). */
  readonly fixedBytes: number
  readonly hasRest: boolean
  /** Encodes a whole message: length prefix, id, fields. */
  encode(value: MessageValue<F>): Buffer
  /**
   * Encodes the length prefix, id and fixed fields only, with the length counting `restBytes` more: write the rest
   * as a separate buffer so a block is never copied.
   */
  encodeHeader(value: MessageValue<F>, restBytes: number): Buffer
  /** Decodes the payload after the id; a `rest` field is a view of `payload`, not a copy. */
  decode(payload: Buffer): MessageValue<F>
}

/**
 * Declares a message type.
 *
 * @example
 * ```ts
 * export const Request = message(6, 'request', { index: 'u32', begin: 'u32', length: 'u32' })
 * Request.encode({ index: 1, begin: 0, length: 16384 })
 * ```
 */
export function message<const N extends string, const F extends Fields>(
  id: number,
  name: N,
  fields: F,
): MessageSpec<N, F> {
  const entries = Object.entries(fields) as Array<[keyof F & string, FieldFormat]>
  const restIndex = entries.findIndex(([, format]) => format === 'rest')
  if (restIndex !== -1 && restIndex !== entries.length - 1) throw new Error(`${name}: rest must be last`)
  const fixed = entries.filter(([, format]) => format !== 'rest') as Array<
    [keyof F & string, Exclude<FieldFormat, 'rest'>]
  >
  const restKey = restIndex === -1 ? undefined : entries[restIndex]![0]
  const fixedBytes = fixed.reduce((sum, [, format]) => sum + FORMAT_BYTES[format], 0)

  const writeFixed = (buf: Buffer, value: MessageValue<F>): void => {
    let offset = 5
    for (const [key, format] of fixed) {
      const v = value[key] as number
      if (format === 'u32') buf.writeUInt32BE(v, offset)
      else if (format === 'u16') buf.writeUInt16BE(v, offset)
      else buf.writeUInt8(v, offset)
      offset += FORMAT_BYTES[format]
    }
  }

  const encodeHeader = (value: MessageValue<F>, restBytes: number): Buffer => {
    const buf = Buffer.allocUnsafe(5 + fixedBytes)
    buf.writeUInt32BE(1 + fixedBytes + restBytes, 0)
    buf[4] = id
    writeFixed(buf, value)
    return buf
  }

  return {
    id,
    name,
    fields,
    fixedBytes,
    hasRest: restKey !== undefined,
    encodeHeader,
    encode(value) {
      const rest = restKey === undefined ? undefined : (value[restKey] as Uint8Array)
      const restBytes = rest?.length ?? 0
      const buf = Buffer.allocUnsafe(5 + fixedBytes + restBytes)
      buf.writeUInt32BE(1 + fixedBytes + restBytes, 0)
      buf[4] = id
      writeFixed(buf, value)
      if (rest !== undefined) buf.set(rest, 5 + fixedBytes)
      return buf
    },
    decode(payload) {
      if (restKey === undefined ? payload.length !== fixedBytes : payload.length < fixedBytes) {
        throw new PeerWireError('INVALID_MESSAGE', { message: name, length: payload.length + 1 })
      }
      const value: Record<string, number | Buffer> = {}
      let offset = 0
      for (const [key, format] of fixed) {
        value[key] =
          format === 'u32'
            ? payload.readUInt32BE(offset)
            : format === 'u16'
              ? payload.readUInt16BE(offset)
              : payload.readUInt8(offset)
        offset += FORMAT_BYTES[format]
      }
      if (restKey !== undefined) value[restKey] = payload.subarray(offset)
      return value as MessageValue<F>
    },
  }
}

// BEP 3
/** `choke`: the sender will not answer requests. */
export const Choke = message(0, 'choke', {})
/** `unchoke`: the sender answers requests. */
export const Unchoke = message(1, 'unchoke', {})
/** `interested`: the sender wants pieces of the receiver. */
export const Interested = message(2, 'interested', {})
/** `not interested` */
export const NotInterested = message(3, 'notInterested', {})
/** `have`: the sender completed and verified a piece. */
export const Have = message(4, 'have', { index: 'u32' })
/** `bitfield`: the pieces the sender has, high bit first; only as the first message after the handshake. */
export const Bitfield = message(5, 'bitfield', { bitfield: 'rest' })
/** `request`: asks for one block. */
export const Request = message(6, 'request', { index: 'u32', begin: 'u32', length: 'u32' })
/** `piece`: one block of data. */
export const Piece = message(7, 'piece', { index: 'u32', begin: 'u32', block: 'rest' })
/** `cancel`: withdraws a request. */
export const Cancel = message(8, 'cancel', { index: 'u32', begin: 'u32', length: 'u32' })
/** BEP 5 `port`: the sender's DHT port. */
export const Port = message(9, 'port', { port: 'u16' })
// BEP 6
/** `suggest piece`: a piece the sender would like to upload (it has it in cache). */
export const Suggest = message(0x0d, 'suggest', { index: 'u32' })
/** `have all`: replaces a full bitfield. */
export const HaveAll = message(0x0e, 'haveAll', {})
/** `have none`: replaces an empty bitfield. */
export const HaveNone = message(0x0f, 'haveNone', {})
/** `reject request`: the sender will not answer this request. */
export const Reject = message(0x10, 'reject', { index: 'u32', begin: 'u32', length: 'u32' })
/** `allowed fast`: the receiver may request this piece even while choked. */
export const AllowedFast = message(0x11, 'allowedFast', { index: 'u32' })
// BEP 10
/** `extended`: an extension message; id 0 is the extended handshake, other ids are the receiver's `m` ids. */
export const Extended = message(20, 'extended', { extId: 'u8', payload: 'rest' })

/** Every message type by id. */
export const MESSAGES = [
  Choke,
  Unchoke,
  Interested,
  NotInterested,
  Have,
  Bitfield,
  Request,
  Piece,
  Cancel,
  Port,
  Suggest,
  HaveAll,
  HaveNone,
  Reject,
  AllowedFast,
  Extended,
] as const

/** A decoded message of any type, tagged by name. */
export type AnyMessage = {
  [S in (typeof MESSAGES)[number] as S['name']]: { type: S['name'] } & ReturnType<S['decode']>
}[(typeof MESSAGES)[number]['name']]

/** The message types by id, for dispatch. */
export const MESSAGE_BY_ID: ReadonlyArray<MessageSpec | undefined> = (() => {
  const table: Array<MessageSpec | undefined> = []
  for (const spec of MESSAGES) table[spec.id] = spec as unknown as MessageSpec
  return table
})()

/** A keep-alive: a zero length prefix. */
export const KEEPALIVE = Buffer.alloc(4)

/** The protocol string of the handshake. */
export const PROTOCOL = Buffer.from('\x13BitTorrent protocol', 'latin1')
/** Bytes of a whole handshake. */
export const HANDSHAKE_BYTES = 68
