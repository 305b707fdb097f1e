/**
 * A search result's extra field: how well it matched the query.
 */
export interface Relevance {
  relevance_score: number
}

/**
 * Every notification the core sends (Tribler's `Notification`, REST contract §2). The `GET /events` stream,
 * the CLI and tests subscribe to these. An event whose payload type is `undefined` is sent without an `event`
 * key. Object payloads use the wire field names of the contract.
 */
export interface SessionEvents {
  /** Sent only to a newly connected events listener, first. */
  events_start: { tribler_started: boolean; version: string }
  tribler_started: undefined
  search_result_channel: { query: string; result: Record<string, unknown> & Relevance }
  search_result_torrent: { query: string; result: Record<string, unknown> & Relevance }
  upgrader_started: undefined
  upgrader_tick: { text: string }
  upgrader_finished: undefined
  watch_folder_corrupt_torrent: { name: string }
  new_version_available: { version: string }
  channel_discovered: { name: string; description: string; dispersy_cid: string }
  torrent_discovered: {
    infohash: string
    timestamp: number
    name: string
    files: Array<[string, number]>
    trackers: string[]
    dispersy_cid: string
  }
  torrent_removed_from_channel: Record<string, unknown>
  torrent_finished: { infohash: string; name: string }
  torrent_error: { infohash: string; error: string }
  tribler_exception: { text: string }
  market_ask: Record<string, unknown>
  market_bid: Record<string, unknown>
  market_ask_timeout: Record<string, unknown>
  market_bid_timeout: Record<string, unknown>
  market_transaction_complete: { tx: Record<string, unknown>; mine: boolean }
  market_payment_received: Record<string, unknown>
  market_payment_sent: Record<string, unknown>
  market_iom_input_required: Record<string, unknown>
  signal_low_space: { time: number; total: number; used: number; free: number; percent: number }
  credit_mining_error: { message: string }
  /** A shutdown step, e.g. `Saving configuration...`. */
  shutdown: string
}

/** A notification's name. */
export type SessionEventName = keyof SessionEvents

/** The 26 notification names of the REST contract, in its order. */
export const SESSION_EVENT_NAMES = [
  'events_start',
  'tribler_started',
  'search_result_channel',
  'search_result_torrent',
  'upgrader_started',
  'upgrader_tick',
  'upgrader_finished',
  'watch_folder_corrupt_torrent',
  'new_version_available',
  'channel_discovered',
  'torrent_discovered',
  'torrent_removed_from_channel',
  'torrent_finished',
  'torrent_error',
  'tribler_exception',
  'market_ask',
  'market_bid',
  'market_ask_timeout',
  'market_bid_timeout',
  'market_transaction_complete',
  'market_payment_received',
  'market_payment_sent',
  'market_iom_input_required',
  'signal_low_space',
  'credit_mining_error',
  'shutdown',
] as const satisfies readonly SessionEventName[]
