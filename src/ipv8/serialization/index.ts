export { ipv4Number, NO_ADDRESS, writeIpv6 } from './address.js'
export { Reader, Writer } from './buffer.js'
export {
  type Bits,
  FORMATS,
  type Format,
  type FormatCode,
  type FormatTypes,
  isFormatCode,
} from './formats.js'
export {
  communityPrefix,
  type FrameOptions,
  MSG_ID_OFFSET,
  PREFIX_LENGTH,
  PROTOCOL_VERSION,
  readSigned,
  readUnsigned,
  signedPacket,
  type UnsignedFrame,
  unsignedPacket,
  type VerifiedFrame,
  verifySigned,
} from './framing.js'
export {
  asIpv8Error,
  type FieldSpec,
  type Fields,
  type FieldValue,
  listOf,
  nested,
  nestedList,
  type PayloadOf,
  type PayloadSchema,
  payload,
  type Schema,
  struct,
  type ValuesOf,
} from './payload.js'
