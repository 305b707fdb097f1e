import { TriblerError } from '../../common/index.js'
import type { SocketAddress } from '../../net/index.js'

/** Why an LSD message or operation was rejected. */
export type LsdErrorCode =
  /** Not a BT-SEARCH message, or a bad header. */
  | 'INVALID_MESSAGE'
  /** A bad argument (info hash not 20 bytes, bad port). */
  | 'INVALID_ARGUMENT'
  /** The multicast socket could not be set up. */
  | 'SOCKET'

/** An error of local service discovery. */
export class LsdError extends TriblerError<LsdErrorCode> {}

/** The BEP 14 IPv4 multicast group. */
export const LSD_GROUP_V4: SocketAddress = { host: '239.192.152.143', port: 6771 }
/** The BEP 14 IPv6 multicast group. */
export const LSD_GROUP_V6: SocketAddress = { host: 'ff15::efc0:988f', port: 6771 }

/** A parsed BT-SEARCH announce. */
export interface LsdAnnounce {
  readonly port: number
  /** Info hashes, lowercase hex. */
  readonly infoHashes: string[]
  readonly cookie?: string
}

/** A peer found on the local network. */
export interface LsdPeer {
  /** Lowercase hex info hash. */
  readonly infoHash: string
  readonly host: string
  readonly port: number
}
