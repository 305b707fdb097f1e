import { TriblerError } from '../../common/index.js'
import type { SocketAddress } from '../../net/index.js'

/** Why a tracker request failed. */
export type TrackerErrorCode =
  /** The announce URL cannot be used (bad syntax, unsupported scheme, bad BEP 41 data). */
  | 'INVALID_URL'
  /** The request arguments are invalid (info_hash or peer_id not 20 bytes, bad port). */
  | 'INVALID_REQUEST'
  /** The tracker answered with a `failure reason` (HTTP) or an error action (UDP). */
  | 'TRACKER_FAILURE'
  /** The response is not a valid tracker response. */
  | 'MALFORMED_RESPONSE'
  /** The HTTP response is larger than the configured limit. */
  | 'RESPONSE_TOO_LARGE'
  /** The HTTP status is not 200. */
  | 'HTTP_STATUS'
  /** More redirects than allowed. */
  | 'TOO_MANY_REDIRECTS'
  /** No answer in time (after all UDP retransmissions). */
  | 'TIMEOUT'
  /** The host name could not be resolved, or the connection failed. */
  | 'NETWORK'
  /** The caller aborted, or the client was closed. */
  | 'ABORTED'
  /** The tracker does not support this (scrape on a tracker without a scrape URL). */
  | 'NOT_SUPPORTED'

/**
 * An error of a tracker client. Network and protocol problems never throw anything else.
 *
 * @example
 * ```ts
 * try { await client.announce(url, request) } catch (err) {
 *   if (err instanceof TrackerError && err.code === 'TRACKER_FAILURE') console.log(err.details.reason)
 * }
 * ```
 */
export class TrackerError extends TriblerError<TrackerErrorCode> {}

/** The announce event (BEP 3); `none` is a regular re-announce. */
export type AnnounceEvent = 'none' | 'started' | 'completed' | 'stopped'

/** A peer address from a tracker, DHT or LSD. `peerId` is given only by non-compact HTTP responses. */
export interface PeerAddress extends SocketAddress {
  readonly peerId?: Uint8Array
}

/** What an announce says about us. */
export interface AnnounceRequest {
  /** 20-byte info hash. */
  readonly infoHash: Uint8Array
  /** 20-byte peer id. */
  readonly peerId: Uint8Array
  /** Our listen port. */
  readonly port: number
  readonly uploaded: number
  readonly downloaded: number
  readonly left: number
  readonly event: AnnounceEvent
  /** Number of peers wanted; omitted means the tracker's default. */
  readonly numWant?: number
  /** A random value that identifies us across IP changes (BEP 3 `key`, BEP 15 `key`). */
  readonly key?: number
  /** The tracker id returned by an earlier announce to the same tracker (HTTP only). */
  readonly trackerId?: string
}

/** A successful announce. */
export interface AnnounceResponse {
  /** Seconds until the next regular announce. */
  readonly intervalSec: number
  /** Seconds the tracker wants at least between announces, when it says so. */
  readonly minIntervalSec?: number
  /** Number of seeders, when the tracker says so. */
  readonly complete?: number
  /** Number of leechers, when the tracker says so. */
  readonly incomplete?: number
  /** IPv4 and IPv6 peers, without duplicates. */
  readonly peers: PeerAddress[]
  /** The tracker's `warning message`, when it gave one. */
  readonly warning?: string
  /** The tracker's `tracker id`, to send back in the next announce. */
  readonly trackerId?: string
}

/** Scrape figures for one torrent. */
export interface ScrapeEntry {
  /** Seeders. */
  readonly complete: number
  /** Completed downloads. */
  readonly downloaded: number
  /** Leechers. */
  readonly incomplete: number
}

/** A scrape answer: entries by lowercase hex info hash (torrents the tracker does not know are absent). */
export type ScrapeResponse = Map<string, ScrapeEntry>

/** Options of one tracker request. */
export interface TrackerRequestOptions {
  signal?: AbortSignal | undefined
}

/** Something that announces to and scrapes a tracker URL; one per scheme. */
export interface TrackerClient {
  announce(url: string, request: AnnounceRequest, opts?: TrackerRequestOptions): Promise<AnnounceResponse>
  scrape(
    url: string,
    infoHashes: readonly Uint8Array[],
    opts?: TrackerRequestOptions,
  ): Promise<ScrapeResponse>
}

/** The state of one tracker of a torrent, as the REST download's `trackers` field shows it. */
export interface TrackerStatus {
  readonly url: string
  /** Index of its tier (BEP 12). */
  readonly tier: number
  /** Peers the last successful announce returned. */
  readonly peers: number
  /**
   * As Tribler shows it: `Not contacted yet`, `Working`, `Error: <reason>`, `HTTP status code <n>`, `Timeout`,
   * `Not working`.
   */
  readonly status: string
  /** The tracker's last `warning message`, if any. */
  readonly warning?: string
  /** Seeders and leechers from the last announce or scrape, when known. */
  readonly seeders?: number
  readonly leechers?: number
  /** Unix time (ms) of the last announce attempt, or 0. */
  readonly lastAnnounceMs: number
  /** Unix time (ms) when the next announce is due, or 0 when none is scheduled. */
  readonly nextAnnounceMs: number
}
