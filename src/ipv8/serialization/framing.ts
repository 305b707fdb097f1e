import { Ipv8Error } from '../errors.js'
import { type PrivateKey, PublicKey } from '../keys/index.js'
import { Reader, Writer } from './buffer.js'
import { asIpv8Error, type PayloadSchema } from './payload.js'

/** Length of the community prefix: `0x00 || version || community id (20)`. */
export const PREFIX_LENGTH = 22
/** Offset of the message id in every datagram. */
export const MSG_ID_OFFSET = 22
/** Version byte of every current community. */
export const PROTOCOL_VERSION = 2

/** The 22-byte prefix of a community: `0x00 || version || community id`. */
export function communityPrefix(communityId: Uint8Array, version = PROTOCOL_VERSION): Buffer {
  if (communityId.length !== 20)
    throw new Ipv8Error('BAD_PREFIX', { reason: 'community id must be 20 bytes' })
  return Buffer.concat([Buffer.from([0, version]), communityId])
}

/** Framing options of a message type. */
export interface FrameOptions {
  /** Whether the message carries the 8-byte global time after the auth field (default true). */
  globalTime?: boolean
}

/** A signed message whose signature was verified. */
export interface VerifiedFrame {
  readonly msgId: number
  readonly publicKey: PublicKey
  /** The sender's global time; `undefined` for message types without one. */
  readonly globalTime: bigint | undefined
  /** Where the payload starts and ends in the datagram. */
  readonly payloadStart: number
  readonly payloadEnd: number
}

/** An unsigned message. */
export interface UnsignedFrame {
  readonly msgId: number
  readonly globalTime: bigint | undefined
  readonly payloadStart: number
  readonly payloadEnd: number
}

function header(w: Writer, prefix: Uint8Array, msgId: number): void {
  if (prefix.length !== PREFIX_LENGTH) throw new Ipv8Error('BAD_PREFIX', { length: prefix.length })
  w.bytes(prefix)
  w.u8(msgId)
}

/**
 * Builds a signed datagram: `prefix || msgId || varlenH(public key bin) || Q global time || payload ||
 * Ed25519 signature over everything before it`. Pass `globalTime: undefined` for message types without one.
 *
 * @example
 * ```ts
 * const packet = signedPacket(prefix, IntroductionRequestPayload, request, key, 42n)
 * ```
 */
export function signedPacket<T>(
  prefix: Uint8Array,
  schema: PayloadSchema<T>,
  value: T,
  key: PrivateKey,
  globalTime: bigint | number | undefined,
): Buffer {
  return withScratch((w) => {
    header(w, prefix, schema.msgId)
    const keyBin = key.publicKey.binView
    w.u16(keyBin.length)
    w.bytes(keyBin)
    if (globalTime !== undefined) w.u64(globalTime)
    schema.write(w, value)
    const signature = key.sign(w.buffer.subarray(0, w.length))
    w.bytes(signature)
    return w.toBuffer()
  })
}

const SCRATCH_SIZE = 2048
/** A scratch buffer that grew past this (a large message) is let go rather than kept for good. */
const SCRATCH_KEEP = 64 * 1024
let scratch = new Writer(SCRATCH_SIZE)
let scratchBusy = false

/**
 * Builds a message in the one scratch buffer: building is synchronous and `build` copies its result out. A
 * message built while another one is (a field encoder that builds a packet) gets a buffer of its own.
 */
function withScratch(build: (w: Writer) => Buffer): Buffer {
  const nested = scratchBusy
  const w = nested ? new Writer(512) : scratch
  w.reset()
  scratchBusy = true
  try {
    return build(w)
  } finally {
    if (!nested) {
      scratchBusy = false
      if (w.buffer.length > SCRATCH_KEEP) scratch = new Writer(SCRATCH_SIZE)
    }
  }
}

/** Builds an unsigned datagram: `prefix || msgId || [Q global time] || payload`. */
export function unsignedPacket<T>(
  prefix: Uint8Array,
  schema: PayloadSchema<T>,
  value: T,
  globalTime: bigint | number | undefined,
): Buffer {
  return withScratch((w) => {
    header(w, prefix, schema.msgId)
    if (globalTime !== undefined) w.u64(globalTime)
    schema.write(w, value)
    return w.toBuffer()
  })
}

/**
 * Reads the auth field of a signed datagram, checks the signature over every byte before it and returns where the
 * payload lies. Throws `BAD_KEY`/`UNSUPPORTED_KEY` for an unusable key, `BAD_SIGNATURE` for a forged or damaged
 * packet, `TRUNCATED` for a short one.
 */
export function verifySigned(data: Buffer, opts: FrameOptions = {}): VerifiedFrame {
  const frame = readSigned(data, opts)
  if (!frame.publicKey.verify(data.subarray(0, frame.payloadEnd), data.subarray(frame.payloadEnd))) {
    throw new Ipv8Error('BAD_SIGNATURE', { msgId: frame.msgId })
  }
  return frame
}

/**
 * Reads the auth field of a signed datagram without checking the signature, which lies at `payloadEnd` and signs
 * every byte before it (for callers that verify many datagrams together). Throws as {@link verifySigned} does,
 * except for `BAD_SIGNATURE`.
 */
export function readSigned(data: Buffer, opts: FrameOptions = {}): VerifiedFrame {
  const r = new Reader(data, MSG_ID_OFFSET)
  try {
    const msgId = r.u8()
    const keyLength = r.u16()
    const publicKey = PublicKey.fromBin(r.bytes(keyLength))
    const globalTime = opts.globalTime === false ? undefined : r.u64()
    const payloadStart = r.offset
    const payloadEnd = data.length - publicKey.signatureLength
    if (payloadEnd < payloadStart) throw new Ipv8Error('TRUNCATED', { reason: 'no room for the signature' })
    return { msgId, publicKey, globalTime, payloadStart, payloadEnd }
  } catch (err) {
    throw asIpv8Error(err, r.offset)
  }
}

/** Reads the header of an unsigned datagram. */
export function readUnsigned(data: Buffer, opts: FrameOptions = {}): UnsignedFrame {
  const r = new Reader(data, MSG_ID_OFFSET)
  const msgId = r.u8()
  const globalTime = opts.globalTime === false ? undefined : r.u64()
  return { msgId, globalTime, payloadStart: r.offset, payloadEnd: data.length }
}
