import { Ipv8Error } from '../errors.js'
import { Reader, Writer } from './buffer.js'
import { FORMATS, type Format, type FormatCode, type FormatTypes, isFormatCode } from './formats.js'

/** A field declaration: a py-ipv8 format code, or a format object such as {@link nested}. */
export type FieldSpec = FormatCode | Format<unknown>

/** Field name to declaration; the declaration order is the wire order. */
export type Fields = Readonly<Record<string, FieldSpec>>

/** The value type of one field declaration. */
export type FieldValue<F> = F extends FormatCode ? FormatTypes[F] : F extends Format<infer T> ? T : never

/** The value type of a list of field declarations. */
export type ValuesOf<F extends Fields> = { -readonly [K in keyof F]: FieldValue<F[K]> }

/** A declared list of fields: encodes and decodes values of type `T`. */
export interface Schema<T> extends Format<T> {
  readonly fields: Fields
  /** Encodes a value into a new buffer. */
  encode(value: T): Buffer
  /**
   * Decodes a whole buffer (or `data[start, end)`); bytes left over are a `TRAILING_BYTES` error, missing ones
   * `TRUNCATED`. Only {@link Ipv8Error} is thrown.
   */
  decode(data: Buffer, start?: number, end?: number): T
}

/** A schema with a message id: one message type of a community. */
export interface PayloadSchema<T> extends Schema<T> {
  readonly msgId: number
}

/** The value type of a schema: `type CreatePayload = PayloadOf<typeof CreatePayload>`. */
export type PayloadOf<S> = S extends Format<infer T> ? T : never

function resolve(name: string, spec: FieldSpec): Format<unknown> {
  if (typeof spec !== 'string') return spec
  if (!isFormatCode(spec)) throw new Ipv8Error('UNKNOWN_FORMAT', { field: name, format: spec })
  return FORMATS[spec] as Format<unknown>
}

/** Turns anything a decoder throws (RangeError from a Buffer read, ...) into an {@link Ipv8Error}. */
export function asIpv8Error(err: unknown, offset?: number): Ipv8Error {
  if (err instanceof Ipv8Error) return err
  return new Ipv8Error('TRUNCATED', { offset, cause: err })
}

/**
 * Declares a schema without a message id (a nested payload, or the body shared by several messages).
 *
 * @example
 * ```ts
 * const IntroductionInfo = struct({ address: 'ip_address', key: 'varlenH', seederPk: 'varlenH', source: 'B' })
 * ```
 */
export function struct<const F extends Fields>(fields: F, name = 'struct'): Schema<ValuesOf<F>> {
  const entries = Object.entries(fields).map(([key, spec]) => [key, resolve(key, spec)] as const)
  entries.forEach(([key, format], i) => {
    if (format.greedy === true && i !== entries.length - 1) {
      throw new Ipv8Error('UNKNOWN_FORMAT', { field: key, reason: 'a greedy field must be last' })
    }
  })
  type T = ValuesOf<F>
  const write = (w: Writer, value: T): void => {
    if (typeof value !== 'object' || value === null) throw new Ipv8Error('BAD_VALUE', { schema: name })
    for (const [key, format] of entries) {
      const field = (value as Record<string, unknown>)[key]
      if (field === undefined)
        throw new Ipv8Error('BAD_VALUE', { schema: name, field: key, reason: 'missing' })
      format.write(w, field)
    }
  }
  const read = (r: Reader): T => {
    const out: Record<string, unknown> = {}
    for (const [key, format] of entries) out[key] = format.read(r)
    return out as T
  }
  return {
    name,
    fields,
    greedy: entries.at(-1)?.[1].greedy === true,
    write,
    read,
    encode(value) {
      const w = new Writer()
      write(w, value)
      return w.toBuffer()
    },
    decode(data, start = 0, end = data.length) {
      const r = new Reader(data, start, end)
      try {
        const value = read(r)
        if (r.remaining !== 0) throw new Ipv8Error('TRAILING_BYTES', { schema: name, extra: r.remaining })
        return value
      } catch (err) {
        throw asIpv8Error(err, r.offset)
      }
    },
  }
}

/**
 * Declares a message: its id and its fields, in wire order, with py-ipv8's format names. One declaration gives
 * the encoder, the decoder and (via {@link PayloadOf}) the TypeScript type.
 *
 * @example
 * ```ts
 * export const CreatePayload = payload(2, {
 *   circuitId: 'I', identifier: 'H', nodePublicKey: 'varlenH', key: 'varlenH',
 * })
 * export type CreatePayload = PayloadOf<typeof CreatePayload>
 * ```
 */
export function payload<const F extends Fields>(
  msgId: number,
  fields: F,
  name = `payload-${msgId}`,
): PayloadSchema<ValuesOf<F>> {
  if (!Number.isInteger(msgId) || msgId < 0 || msgId > 255) throw new Ipv8Error('BAD_VALUE', { msgId })
  return { ...struct(fields, name), msgId }
}

/** The `payload` format: a nested schema behind a uint16 length. */
export function nested<T>(schema: Schema<T>): Format<T> {
  return {
    name: `payload(${schema.name})`,
    write(w, value) {
      const lengthAt = w.reserve(2)
      const start = w.length
      schema.write(w, value)
      const length = w.length - start
      if (length > 0xffff) throw new Ipv8Error('BAD_VARLEN', { format: 'payload', length })
      w.buffer.writeUInt16BE(length, lengthAt)
    },
    read(r) {
      const length = r.u16()
      const start = r.take(length)
      return schema.decode(r.data, start, start + length)
    },
  }
}

/** The `payload-list` format: a uint8 count of nested schemas, each behind a uint16 length. */
export function nestedList<T>(schema: Schema<T>): Format<T[]> {
  const item = nested(schema)
  return {
    name: `payload-list(${schema.name})`,
    write(w, values) {
      if (!Array.isArray(values) || values.length > 0xff)
        throw new Ipv8Error('BAD_VARLEN', { format: 'payload-list' })
      w.u8(values.length)
      for (const value of values) item.write(w, value)
    },
    read(r) {
      const count = r.u8()
      const out: T[] = []
      for (let i = 0; i < count; i++) out.push(item.read(r))
      return out
    },
  }
}

/**
 * py-ipv8's `ListOf(packer)`: a uint8 count, then the items back to back with no length of their own (the DHT's
 * `node-list`).
 */
export function listOf<T>(schema: Format<T>, name = `list(${schema.name})`): Format<T[]> {
  return {
    name,
    write(w, values) {
      if (!Array.isArray(values) || values.length > 0xff) throw new Ipv8Error('BAD_VARLEN', { format: name })
      w.u8(values.length)
      for (const value of values) schema.write(w, value)
    },
    read(r) {
      const count = r.u8()
      const out: T[] = []
      for (let i = 0; i < count; i++) out.push(schema.read(r))
      return out
    },
  }
}
