import type { Clock } from '../../common/index.js'
import { TriblerError } from '../../common/index.js'
import type { DatagramSocket } from '../../net/index.js'

/** Why a uTP operation failed. */
export type UtpErrorCode =
  /** The remote did not answer our SYN in time. */
  | 'CONNECT_TIMEOUT'
  /** An established connection stopped acknowledging (retransmissions exhausted) or went idle too long. */
  | 'TIMED_OUT'
  /** The remote sent ST_RESET, or answered our SYN with one (nothing listening). */
  | 'CONNECTION_RESET'
  /** The connection limit of the socket is reached. */
  | 'TOO_MANY_CONNECTIONS'
  /** The socket was closed. */
  | 'SOCKET_CLOSED'

/** Error of the uTP subsystem; match `err.code`. */
export class UtpError extends TriblerError<UtpErrorCode> {}

/** What a {@link UtpSocket} needs. */
export interface UtpDeps {
  /** The datagram socket uTP runs over; shared with other protocols through the fallback handler. */
  socket: DatagramSocket
  clock?: Clock
}

/** Tunables of a uTP socket; every field has a default suited to BitTorrent. */
export interface UtpOptions {
  /** Most connections at a time, incoming and outgoing together (default 1000). */
  maxConnections?: number
  /** Bytes of a full datagram, header included (default 1400; lower it for small path MTUs). */
  packetBytes?: number
  /** Receive buffer per connection: the most unread bytes we advertise room for (default 1 MiB). */
  recvBufferBytes?: number
  /** Unsent bytes a connection queues before `write()` reports backpressure (default 1 MiB). */
  sendBufferBytes?: number
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number
  /** Close a connection that received nothing for this long (default 180 s: BitTorrent keepalives come every 120 s). */
  idleTimeoutMs?: number
  /** Send a keepalive after this long without sending (default 29 s, under common NAT timeouts). */
  keepaliveMs?: number
  /** Timeouts in a row before a connection fails (default 6). */
  maxTimeouts?: number
  /** Hold back a partial packet while data is in flight, to coalesce small writes (default true). */
  nagle?: boolean
  /** Keep the writable side open after the remote's FIN (default false, like `net.Socket`). */
  allowHalfOpen?: boolean
}

/** Counters of one connection. */
export interface UtpConnectionStats {
  /** Payload bytes, first transmissions only. */
  bytesSent: number
  bytesReceived: number
  packetsSent: number
  packetsReceived: number
  /** Packets sent again after a timeout, duplicate ACKs or selective ACK evidence. */
  retransmits: number
  /** Loss events that cut the window (at most one per round trip). */
  losses: number
  timeouts: number
  /** Smoothed round-trip time in ms. */
  rttMs: number
  /** Retransmission timeout in ms. */
  rtoMs: number
  /** Congestion window in bytes. */
  cwndBytes: number
  /** Bytes sent and not yet acknowledged. */
  bytesInFlight: number
  /** Receive window the remote last advertised. */
  peerWindowBytes: number
  /** Current queuing delay estimate in µs (LEDBAT). */
  queuingDelayUs: number
}

/** Counters of a whole socket (connections past and present). */
export interface UtpSocketStats {
  connections: number
  connectionsOpened: number
  bytesSent: number
  bytesReceived: number
  packetsSent: number
  packetsReceived: number
  retransmits: number
  /** Datagrams that looked like uTP but did not decode. */
  malformed: number
  /** Datagrams handed to the fallback handler (not uTP). */
  fallback: number
  /** Resets sent for packets of unknown connections or refused SYNs. */
  resetsSent: number
}
