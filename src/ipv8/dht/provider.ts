import { logger } from '../../common/index.js'
import { PublicKey } from '../keys/index.js'
import { type IntroPointDirectory, type IntroPointRecord, PEER_SOURCE_DHT } from '../tunnel/index.js'
import type { DHTCommunity } from './community.js'
import { DhtIntroPointValue } from './payloads.js'

const log = logger('ipv8:dht:provider')
/** The prefix of a LibNaCL public key bin, left out of DHT values to stay under the size limit. */
const KEY_PREFIX = Buffer.from('LibNaCLPK:')

function stripPrefix(key: Buffer): Buffer {
  return key.subarray(0, KEY_PREFIX.length).equals(KEY_PREFIX) ? key.subarray(KEY_PREFIX.length) : key
}

/** Encodes a DHT value announcing an introduction point (spec §6): keys without their `LibNaCLPK:` prefix. */
export function encodeIntroPoint(intro: IntroPointRecord): Buffer {
  return DhtIntroPointValue.encode({
    address: intro.address,
    lastSeen: intro.lastSeen >>> 0,
    introPk: stripPrefix(intro.key),
    seederPk: stripPrefix(intro.seederPk),
  })
}

/** Decodes such a value; undefined when it is malformed or a key does not parse. */
export function decodeIntroPoint(data: Buffer): IntroPointRecord | undefined {
  try {
    const value = DhtIntroPointValue.decode(data)
    const key = Buffer.concat([KEY_PREFIX, value.introPk])
    const seederPk = Buffer.concat([KEY_PREFIX, value.seederPk])
    PublicKey.fromBin(key)
    PublicKey.fromBin(seederPk)
    return { address: value.address, key, seederPk, source: PEER_SOURCE_DHT, lastSeen: value.lastSeen }
  } catch {
    return undefined
  }
}

/**
 * py-ipv8's DHTCommunityProvider: introduction points of hidden services in the DHT. An introduction point
 * stores itself under the lookup info-hash as a plain value; an exit asked for peers finds them there.
 *
 * @example
 * ```ts
 * tunnels.introPointDirectory = new DhtIntroPointProvider(dht)
 * ```
 */
export class DhtIntroPointProvider implements IntroPointDirectory {
  readonly #dht: DHTCommunity

  constructor(dht: DHTCommunity) {
    this.#dht = dht
  }

  async announce(infoHash: Buffer, intro: IntroPointRecord): Promise<void> {
    await this.#dht.storeValue(infoHash, encodeIntroPoint(intro))
    log.debug('introduction point announced', { infoHash: infoHash.toString('hex') })
  }

  async lookup(infoHash: Buffer): Promise<IntroPointRecord[]> {
    const values = await this.#dht.findValues(infoHash)
    const out: IntroPointRecord[] = []
    for (const value of values) {
      const intro = decodeIntroPoint(value.data)
      if (intro !== undefined) out.push(intro)
    }
    log.debug('introduction points looked up', { infoHash: infoHash.toString('hex'), found: out.length })
    return out
  }
}
