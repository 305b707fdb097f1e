export {
  BASE_HISTORY_MINUTES,
  DelayHistory,
  GAIN_BYTES,
  Ledbat,
  type LedbatOptions,
  MIN_RTO_MS,
  RttEstimator,
  TARGET_DELAY_US,
} from './congestion.js'
export { UtpConnection } from './connection.js'
export {
  decodePacket,
  EXTENSION_SACK,
  emptyPacket,
  encodePacket,
  HEADER_BYTES,
  looksLikeUtp,
  PacketType,
  type UtpPacket,
} from './packet.js'
export { UtpSocket, type UtpSocketEvents } from './socket.js'
export {
  type UtpConnectionStats,
  type UtpDeps,
  UtpError,
  type UtpErrorCode,
  type UtpOptions,
  type UtpSocketStats,
} from './types.js'
