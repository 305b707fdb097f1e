export { bytesToIp, canonicalHost, formatIpv6, ipFamily, ipToBytes, ipv4Bytes, ipv6Bytes } from './ip.js'
export { type LinkConditions, MemoryNetwork, type MemoryNetworkOptions, seededRandom } from './memory.js'
export {
  BatchedUdpSocket,
  type BatchedUdpStats,
  batchedUdpTransport,
  loadNativeUdp,
  type NativeUdpStatus,
  nativeUdpStatus,
} from './native-udp.js'
export {
  type BindOptions,
  type DatagramHandler,
  type DatagramSocket,
  type DatagramStats,
  type DatagramTransport,
  emptyDatagramStats,
  formatAddress,
  type SocketAddress,
} from './types.js'
export { udpTransport } from './udp.js'
