export { LocalServiceDiscovery, type LsdDeps, type LsdEvents, type LsdOptions } from './lsd.js'
export { decodeLsdAnnounce, encodeLsdAnnounce } from './message.js'
export { bindLsdSocket, type LsdSocket, type LsdSocketOptions, lsdGroup } from './multicast-socket.js'
export {
  LSD_GROUP_V4,
  LSD_GROUP_V6,
  type LsdAnnounce,
  LsdError,
  type LsdErrorCode,
  type LsdPeer,
} from './types.js'
