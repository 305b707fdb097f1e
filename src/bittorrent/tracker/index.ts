export { encodeCompactPeer, parseCompactPeers, uniquePeers } from './compact.js'
export {
  announceUrlWithQuery,
  type FetchFunction,
  HttpTrackerClient,
  type HttpTrackerOptions,
  parseHttpAnnounce,
  parseHttpScrape,
  percentEncodeBytes,
  scrapeUrlOf,
} from './http.js'
export {
  type AnnounceStats,
  TrackerManager,
  type TrackerManagerDeps,
  type TrackerManagerEvents,
  type TrackerManagerOptions,
} from './tiers.js'
export {
  type AnnounceEvent,
  type AnnounceRequest,
  type AnnounceResponse,
  type PeerAddress,
  type ScrapeEntry,
  type ScrapeResponse,
  type TrackerClient,
  TrackerError,
  type TrackerErrorCode,
  type TrackerRequestOptions,
  type TrackerStatus,
} from './types.js'
export {
  type HostLookup,
  MAX_UDP_SCRAPE_HASHES,
  parseAnnounceReply,
  parseUdpUrl,
  UdpTrackerClient,
  type UdpTrackerDeps,
  type UdpTrackerOptions,
  type UdpTrackerStats,
  type UdpTrackerUrl,
} from './udp.js'
