/**
 * One torrent's download: peers, request pipelines, piece verification, uploads under a choker, metadata from
 * peers, resume data and the seeding policy, over any transport the injected connector provides.
 *
 * @example
 * ```ts
 * import { Download } from '../download/index.js'
 * const dl = new Download({ connect, peerId }, { infoHash, torrent, downloadDir })
 * await dl.start()
 * dl.addPeers([{ host: '127.0.0.2', port: 6881 }], 'tracker')
 * ```
 */
export { type ChokeDecision, type ChokeRound, type ChokerPeer, decideUnchokes } from './choker.js'
export {
  CLIENT_NAME,
  Download,
  type DownloadEvents,
  type DownloadOptions,
  prioritiesFor,
} from './download.js'
export {
  type DownloadDeps,
  DownloadError,
  type DownloadErrorCode,
  type DownloadTuning,
  type PeerConnection,
  type PeerConnector,
  type PeerEncryption,
  type PeerSource,
  type SeedingPolicy,
} from './types.js'
