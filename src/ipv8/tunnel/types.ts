import type { SocketAddress } from '../../net/index.js'

/** A 32-bit circuit id, chosen per link (spec §7.1). */
export type CircuitId = number & { readonly __brand?: 'CircuitId' }

/** Towards the exit. */
export const FORWARD = 0
/** Towards the originator. */
export const BACKWARD = 1
/** Which key and salt pair a layer uses (not which peer owns them). */
export type Direction = typeof FORWARD | typeof BACKWARD

// Peer capability flags, advertised in the extra bytes of introductions (spec §7.3).
/** Relays other nodes' circuits. */
export const PEER_FLAG_RELAY = 1
/** Exits BitTorrent-like UDP traffic (uTP, UDP trackers, DHT). */
export const PEER_FLAG_EXIT_BT = 2
/** Exits IPv8 traffic. */
export const PEER_FLAG_EXIT_IPV8 = 4
/** Answers speed tests. */
export const PEER_FLAG_SPEED_TEST = 8
/** Tribler: a backup exit, avoided while other exits exist. */
export const PEER_FLAG_EXIT_BACKUP = 16384
/** Tribler: exits HTTP requests. */
export const PEER_FLAG_EXIT_HTTP = 32768

// Destroy reasons (spec §7.2).
/** Destroy reason: unknown. */
export const DESTROY_REASON_UNKNOWN = 1
/** Destroy reason: the node shuts down. */
export const DESTROY_REASON_SHUTDOWN = 2
/** Destroy reason: the circuit is no longer needed. */
export const DESTROY_REASON_UNNEEDED = 4

/** The pure py-ipv8 TunnelCommunity id. */
export const TUNNEL_COMMUNITY_ID = Buffer.from('81ded07332bdc775aa5a46f96de9f8f390bbc9f3', 'hex')
/** Tribler's TriblerTunnelCommunity id (spec §9); real Tribler exits are found here. */
export const TRIBLER_TUNNEL_COMMUNITY_ID = Buffer.from('a3591a6bd89bbaca0974062a1287afcfbc6fd6bc', 'hex')

/** Life of an originated circuit. */
export type CircuitState = 'extending' | 'ready' | 'closing'

/**
 * What an originated circuit is for: plain data, or a hidden service's introduction-point circuit (seeder),
 * rendezvous circuit of the seeder, or rendezvous circuit of the downloader.
 */
export type CircuitPurpose = 'data' | 'ip-seeder' | 'rp-seeder' | 'rp-downloader'

/** A circuit as the debug endpoints and tests see it. */
export interface CircuitInfo {
  readonly circuitId: CircuitId
  readonly goalHops: number
  readonly actualHops: number
  readonly state: CircuitState
  readonly type: CircuitPurpose
  readonly bytesUp: number
  readonly bytesDown: number
  readonly createdAtMs: number
  /** Address of the first hop (`host:port`), the only one the originator talks to. */
  readonly firstHop: string | undefined
  /** Exit flags of the last hop as it advertised them. */
  readonly exitFlags: readonly number[]
}

/** A relay route or an exit socket as the debug endpoints see it. */
export interface JoinedInfo {
  readonly circuitId: CircuitId
  readonly role: 'relay' | 'exit'
  readonly bytesUp: number
  readonly bytesDown: number
  readonly createdAtMs: number
  /** The neighbour on the other side of this route. */
  readonly peer: string
}

/** Why cells were dropped, counted per reason. */
export interface TunnelDropCounters {
  /** Too short, bad flags, undecodable inner payload. */
  malformed: number
  /** Encrypted cells for a circuit id we do not know. */
  unknownCircuit: number
  /** Cells whose layer did not authenticate (forged, damaged, replayed under other keys). */
  decryptFailed: number
  /** Cells whose counter was already accepted (replays). */
  replayed: number
  /** relay_early rule violations. */
  relayEarly: number
  /** Data the exit's checker refused, in either direction. */
  exitRefused: number
  /** Data to a domain destination the exit could not resolve. */
  exitUnresolved: number
  /**
   * Creates refused: no relay slot was free and the initiator's balance could not win one, or
   * `maxJoinedCircuits` were already joined.
   */
  noSlot: number
  /** Destroy messages from a peer that does not own the circuit id. */
  unauthorizedDestroy: number
  /** Created/extended/pong that matched no outstanding request. */
  unexpected: number
}

/** Settings of the tunnel community; defaults are py-ipv8's TunnelSettings (spec §7.6). */
export interface TunnelSettings {
  /** Circuits kept per requested hop count, at least. */
  minCircuits: number
  /** Circuits kept per requested hop count, at most. */
  maxCircuits: number
  /** Relay routes plus exit sockets this node carries for others. */
  maxJoinedCircuits: number
  maxTimeMs: number
  maxTimeInactiveMs: number
  maxTrafficBytes: number
  circuitTimeoutMs: number
  nextHopTimeoutMs: number
  unstableTimeoutMs: number
  removeTunnelDelayMs: number
  maxRelayEarly: number
  pingIntervalMs: number
  /** Whether this node exits traffic to the internet (adds EXIT_BT and EXIT_IPV8 to its flags). */
  exit: boolean
  /** Extra flags to advertise (e.g. EXIT_HTTP); RELAY and SPEED_TEST are always advertised. */
  extraFlags: readonly number[]
  /**
   * Tribler's relay slots (`tunnel_community.random_slots` and `competing_slots`): when set, a create is
   * answered only if the circuit gets a slot. Unset (py-ipv8's behaviour) admits every create up to
   * `maxJoinedCircuits`.
   */
  relaySlots: { readonly random: number; readonly competing: number } | undefined
}

/** py-ipv8's defaults. */
export const DEFAULT_TUNNEL_SETTINGS: TunnelSettings = {
  minCircuits: 1,
  maxCircuits: 8,
  maxJoinedCircuits: 100,
  maxTimeMs: 3_600_000,
  maxTimeInactiveMs: 20_000,
  maxTrafficBytes: 10 * 1024 ** 3,
  circuitTimeoutMs: 60_000,
  nextHopTimeoutMs: 10_000,
  unstableTimeoutMs: 60_000,
  removeTunnelDelayMs: 5_000,
  maxRelayEarly: 8,
  pingIntervalMs: 7_500,
  exit: false,
  extraFlags: [],
  relaySlots: undefined,
}

/** IntroductionInfo.source values (py-ipv8 `PEER_SOURCE_*`): where an introduction point was learned. */
export const PEER_SOURCE_UNKNOWN = 0
export const PEER_SOURCE_DHT = 1
export const PEER_SOURCE_PEX = 2

/** An introduction point as a directory holds it: who to ask, for which seeder key, and when it was last seen. */
export interface IntroPointRecord {
  readonly address: SocketAddress
  /** The introduction point's public key bin. */
  readonly key: Buffer
  /** The seeder key bin the introduction point forwards create-e2e for. */
  readonly seederPk: Buffer
  readonly source: number
  /** Unix seconds. */
  readonly lastSeen: number
}

/**
 * Where introduction points are announced and looked up besides PEX: the IPv8 DHT (spec §8). An introduction
 * point announces itself under the lookup info-hash; an exit asked for peers looks the info-hash up.
 */
export interface IntroPointDirectory {
  announce(infoHash: Buffer, intro: IntroPointRecord): Promise<void>
  lookup(infoHash: Buffer): Promise<IntroPointRecord[]>
}
