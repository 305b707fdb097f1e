/**
 * Rate limiting for BitTorrent transfers, as libtorrent does it: token-bucket channels in a hierarchy (one per
 * direction for the whole session, one per download), shared fairly by every peer on them, changeable while
 * transfers run, 0 = unlimited at no cost. Use {@link BandwidthManager.acquire} (or the callback form
 * {@link BandwidthManager.request}) before sending or requesting blocks, or wrap a connection with
 * {@link throttle} to pace a whole stream.
 *
 * @example
 * ```ts
 * import { BandwidthManager, throttle } from '../bandwidth/index.js'
 * const bandwidth = new BandwidthManager({ clock })
 * const globalDown = bandwidth.channel(settings.maxDownloadRate)
 * const globalUp = bandwidth.channel(settings.maxUploadRate)
 * const torrentDown = bandwidth.channel(0)
 * const torrentUp = bandwidth.channel(0)
 * const wire = new PeerWire(
 *   throttle(socket, { manager: bandwidth, read: [torrentDown, globalDown], write: [torrentUp, globalUp] }),
 *   { peerId, infoHash },
 * )
 * globalDown.setRate(2 * 1024 * 1024) // takes effect at once
 * ```
 */
export {
  BandwidthChannel,
  BandwidthManager,
  DEFAULT_BURST_MS,
  DEFAULT_TICK_MS,
} from './manager.js'
export {
  DEFAULT_QUANTUM_BYTES,
  isThrottled,
  type ThrottledDuplex,
  type ThrottleOptions,
  throttle,
} from './throttle.js'
export { BandwidthError, type BandwidthErrorCode, type CancelRequest, type GrantCallback } from './types.js'
