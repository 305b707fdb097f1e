import type { AbortOptions } from '../common/abort.js'

/** An IP address (v4 or v6, without brackets) and port. */
export interface SocketAddress {
  readonly host: string
  readonly port: number
}

/** Handler of one incoming datagram. */
export type DatagramHandler = (data: Buffer, from: SocketAddress) => void

/**
 * A bound datagram socket. Protocol code (IPv8, uTP, DHT, UDP trackers) takes one of these instead of owning a
 * socket, so the same code runs over real UDP, the in-memory network and tunnel circuits.
 */
export interface DatagramSocket {
  /** The address this socket is bound to. */
  readonly local: SocketAddress
  /** Sends one datagram; never throws for network errors (they are counted and logged). */
  send(data: Uint8Array, to: SocketAddress): void
  /** Adds a handler for incoming datagrams; returns the function that removes it. */
  onMessage(handler: DatagramHandler): () => void
  /** Byte and packet counters of this socket. */
  readonly stats: DatagramStats
  close(): Promise<void>
}

/** Counters kept by every datagram socket. */
export interface DatagramStats {
  bytesSent: number
  bytesReceived: number
  packetsSent: number
  packetsReceived: number
  /** Sends that failed locally (bad address, closed socket, unreachable in-memory peer). */
  sendErrors: number
}

/** Options to bind a datagram socket. */
export interface BindOptions extends AbortOptions {
  /** Local address; default `0.0.0.0` for UDP, `127.0.0.1` for the memory network. */
  host?: string
  /** Local port; 0 picks a free one. */
  port?: number
  /** Allow sending to broadcast addresses (SO_BROADCAST), for LAN discovery. Default false. */
  broadcast?: boolean
}

/** Something that binds datagram sockets. */
export interface DatagramTransport {
  bind(opts?: BindOptions): Promise<DatagramSocket>
}

/** Creates zeroed counters. */
export function emptyDatagramStats(): DatagramStats {
  return { bytesSent: 0, bytesReceived: 0, packetsSent: 0, packetsReceived: 0, sendErrors: 0 }
}

/** `host:port`, with brackets around IPv6 hosts. */
export function formatAddress(address: SocketAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}
