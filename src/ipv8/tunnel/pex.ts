import { Community, type CommunityDeps, type CommunitySettings, type Peer } from '../community/index.js'
import { RandomWalk } from '../discovery/index.js'
import { FORMATS, Reader, Writer } from '../serialization/index.js'
import { type IntroPointRecord, PEER_SOURCE_PEX } from './types.js'

/** Added to the info-hash to make the PEX community id. */
export const PEX_VERSION = 1
/** Seeder keys one introduction message carries at most. */
const MAX_KEYS_PER_MESSAGE = 10
/** Introduction points of other peers remembered, newest first. */
const MAX_INTRO_POINTS = 20
/** An introduction point heard of longer ago than this is forgotten. */
const INTRO_POINT_TTL_SEC = 300
/** A LibNaCL public key bin is 74 bytes; anything much longer is not a key. */
const MAX_KEY_LENGTH = 128

/** The PEX community id of an info-hash: the info-hash plus {@link PEX_VERSION}, as a 20-byte big-endian number. */
export function pexCommunityId(infoHash: Uint8Array): Buffer {
  const value =
    (BigInt(`0x${Buffer.from(infoHash).toString('hex') || '0'}`) + BigInt(PEX_VERSION)) % 2n ** 160n
  return Buffer.from(value.toString(16).padStart(40, '0'), 'hex')
}

/** Counters of a {@link PexCommunity}. */
export interface PexCounters {
  /** Introductions whose extra bytes were not a list of keys. */
  malformed: number
}

/**
 * py-ipv8's PexCommunity (spec §8.4): a small overlay per info-hash that the introduction points of a hidden swarm
 * join. Each piggybacks up to 10 of the seeder keys it is an introduction point for on its introduction requests
 * and responses, so every introduction point of the swarm learns the others, and can name them all to a
 * downloader that asks it for peers.
 *
 * @example
 * ```ts
 * const pex = new PexCommunity(deps, infoHash)
 * await pex.start()
 * pex.startAnnounce(seederPublicKeyBin)
 * ```
 */
export class PexCommunity extends Community {
  readonly infoHash: Buffer
  readonly counters: PexCounters = { malformed: 0 }
  #introPoints: IntroPointRecord[] = []
  readonly #announcing: Buffer[] = []

  constructor(deps: CommunityDeps, infoHash: Uint8Array, settings: CommunitySettings = {}) {
    super(deps, pexCommunityId(infoHash), {
      // few peers ever join one swarm's overlay: walk slowly (py-ipv8 walks it every 5 s, up to 10 peers)
      walkIntervalMs: 5_000,
      strategies: (c) => [new RandomWalk(c, { targetPeers: 10 })],
      ...settings,
      // the trackers and explicit addresses only, as py-ipv8's: no LAN broadcast socket per swarm
      bootstrap: { lanBroadcast: false, ...settings.bootstrap },
    })
    this.infoHash = Buffer.from(infoHash)
  }

  /** Introduction points of the swarm heard of in the last 5 minutes, and our own, as PEX results. */
  introPoints(): IntroPointRecord[] {
    const nowSec = Math.floor(this.clock.now() / 1000)
    this.#introPoints = this.#introPoints.filter((ip) => ip.lastSeen + INTRO_POINT_TTL_SEC >= nowSec)
    const own = this.#announcing.map((seederPk) => ({
      address: this.myWanAddress,
      key: this.key.publicKey.toBin(),
      seederPk,
      source: PEER_SOURCE_PEX,
      lastSeen: nowSec,
    }))
    return [...this.#introPoints, ...own]
  }

  /** Starts naming us as an introduction point of this seeder key. */
  startAnnounce(seederPk: Buffer): void {
    if (!this.#announcing.some((k) => k.equals(seederPk))) this.#announcing.push(Buffer.from(seederPk))
  }

  /** Stops naming us for this seeder key. */
  stopAnnounce(seederPk: Buffer): void {
    const at = this.#announcing.findIndex((k) => k.equals(seederPk))
    if (at >= 0) this.#announcing.splice(at, 1)
  }

  /** Whether we are an introduction point of no seeder any more (the overlay can go). */
  get done(): boolean {
    return this.#announcing.length === 0
  }

  protected override introductionRequestExtraBytes(): Buffer {
    return this.#seederKeys()
  }

  protected override introductionResponseExtraBytes(): Buffer {
    return this.#seederKeys()
  }

  protected override onIntroductionExtraBytes(peer: Peer, extraBytes: Buffer): void {
    if (extraBytes.length === 0) return
    let keys: Buffer[]
    try {
      const r = new Reader(extraBytes)
      keys = FORMATS['varlenH-list'].read(r)
    } catch {
      this.counters.malformed += 1
      return
    }
    const nowSec = Math.floor(this.clock.now() / 1000)
    for (const seederPk of keys.slice(0, MAX_KEYS_PER_MESSAGE)) {
      if (seederPk.length === 0 || seederPk.length > MAX_KEY_LENGTH) continue
      // the newest sighting goes first
      this.#introPoints = this.#introPoints.filter(
        (ip) => !(ip.key.equals(peer.publicKey.toBin()) && ip.seederPk.equals(seederPk)),
      )
      this.#introPoints.unshift({
        address: peer.address,
        key: peer.publicKey.toBin(),
        seederPk: Buffer.from(seederPk),
        source: PEER_SOURCE_PEX,
        lastSeen: nowSec,
      })
    }
    this.#introPoints.length = Math.min(this.#introPoints.length, MAX_INTRO_POINTS)
  }

  #seederKeys(): Buffer {
    const keys = [...this.#announcing]
    // a random sample of at most 10
    for (let i = keys.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1))
      ;[keys[i], keys[j]] = [keys[j] as Buffer, keys[i] as Buffer]
    }
    const w = new Writer(64)
    FORMATS['varlenH-list'].write(w, keys.slice(0, MAX_KEYS_PER_MESSAGE))
    return w.toBuffer()
  }
}
