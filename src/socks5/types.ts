import { TriblerError } from '../common/index.js'
import type { DatagramSocket, DatagramTransport, SocketAddress } from '../net/index.js'

/** The SOCKS protocol version this server speaks (RFC 1928). */
export const SOCKS_VERSION = 0x05
/** The version of the username/password sub-negotiation (RFC 1929). */
export const AUTH_VERSION = 0x01

/** Authentication methods (RFC 1928 §3). */
export const Method = { NO_AUTH: 0x00, USERNAME_PASSWORD: 0x02, NO_ACCEPTABLE: 0xff } as const

/** Request commands (RFC 1928 §4). */
export const Command = { CONNECT: 0x01, BIND: 0x02, UDP_ASSOCIATE: 0x03 } as const

/** Address types (RFC 1928 §5). */
export const AddressType = { IPV4: 0x01, DOMAIN: 0x03, IPV6: 0x04 } as const

/** Reply codes (RFC 1928 §6). */
export const Reply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const

/** A SOCKS5 request (RFC 1928 §4): the command and its DST.ADDR/DST.PORT. */
export interface Socks5Request {
  readonly command: number
  readonly address: SocketAddress
}

/** One datagram of the UDP relay (RFC 1928 §7): its FRAG field, the address and the payload. */
export interface UdpDatagram {
  readonly frag: number
  readonly address: SocketAddress
  readonly payload: Buffer
}

/** Username and password a client must give (RFC 1929). */
export interface Socks5Credentials {
  readonly username: string
  readonly password: string
}

/** Codes of {@link Socks5Error}. */
export type Socks5ErrorCode =
  /** Bytes that are not a SOCKS5 message (wrong version, reserved bits, unknown address type, truncated). */
  | 'MALFORMED'
  /** An address that cannot be written in a SOCKS5 message (a domain longer than 255 bytes, a bad port). */
  | 'BAD_ADDRESS'
  /** The server cannot listen (port in use, already started). */
  | 'LISTEN_FAILED'

/**
 * The error of the SOCKS5 proxy.
 *
 * @example
 * ```ts
 * throw new Socks5Error('MALFORMED', { reason: 'fragment' })
 * ```
 */
export class Socks5Error extends TriblerError<Socks5ErrorCode> {}

/** Makes the socket an association's datagrams leave through; the server makes one and shares it. */
export type UpstreamFactory = () => DatagramSocket | Promise<DatagramSocket>

/** Options of a {@link Socks5Server}. */
export interface Socks5ServerOptions {
  /** TCP port; 0 picks a free one. */
  readonly port: number
  /** Where it listens; default `127.0.0.1`. */
  readonly host?: string
  /** Where relayed datagrams go: plain UDP, or the circuits of one hop count. Made on the first association. */
  readonly upstream: UpstreamFactory
  /** Where each association's client-side UDP socket comes from (default real UDP). */
  readonly relayTransport?: DatagramTransport
  /** Require these (RFC 1929); without them only "no authentication" is offered. */
  readonly credentials?: Socks5Credentials
  /** Associations open or being opened at once; more are refused with "general failure". Default 64. */
  readonly maxAssociations?: number
  /** Largest relayed payload in bytes; larger datagrams are dropped. Default 65507 - 262. */
  readonly maxPayloadBytes?: number
  /** A connection that has not finished its request by then is closed. Default 30 s. */
  readonly handshakeTimeoutMs?: number
  /** A name for logs and the slots view (e.g. `hops=2`). */
  readonly label?: string
}

/** Counters of a {@link Socks5Server}. */
export interface Socks5Stats {
  connections: number
  associationsOpened: number
  /** Requests refused, by reason. */
  refused: {
    command: number
    auth: number
    method: number
    limit: number
    malformed: number
    timeout: number
  }
  datagramsUp: number
  bytesUp: number
  datagramsDown: number
  bytesDown: number
  /** Datagrams dropped, by reason. */
  dropped: {
    malformed: number
    fragmented: number
    foreignSource: number
    oversize: number
    upstreamFailed: number
    /** Replies for an association whose client has not sent yet. */
    noClient: number
    /** Datagrams from an address no association sent to (recently). */
    unsolicited: number
  }
}

/** One live UDP association, as the slots view and tests see it. */
export interface AssociationInfo {
  /** The client's TCP control connection. */
  readonly control: SocketAddress
  /** The relay's UDP address the client sends to. */
  readonly relay: SocketAddress
  /** The client's UDP address, once known. */
  readonly client: SocketAddress | undefined
  /** Destinations this association has sent to. */
  readonly destinations: number
  readonly datagramsUp: number
  readonly datagramsDown: number
}
