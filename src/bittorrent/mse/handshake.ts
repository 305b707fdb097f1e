import { randomBytes, randomInt } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { logger } from '../../common/index.js'
import { DH_BYTES, DhKeys, sha1 } from './dh.js'
import { MseStream } from './mse-stream.js'
import { createRc4, type StreamCipher } from './rc4.js'
import { HandshakeReader } from './reader.js'
import {
  type CryptoMethod,
  type EncryptionPolicy,
  type InfoHashLookup,
  MseError,
  type MseInitiatorOptions,
  type MseMethodOptions,
  type MseResponderOptions,
  type MseResult,
} from './types.js'

/** Bound on a whole MSE handshake. */
export const DEFAULT_MSE_TIMEOUT_MS = 20_000
/** The largest padding the spec allows (PadA, PadB, PadC, PadD), and so the longest sync search. */
export const MAX_PAD_BYTES = 512
/** Keystream bytes RC4 drops before use (the spec: the first 1024). */
export const RC4_DISCARD_BYTES = 1024
/** The first 20 bytes of a plain BitTorrent handshake. */
export const BITTORRENT_PROTOCOL_HEADER = Buffer.from('\x13BitTorrent protocol', 'latin1')

const CRYPTO_PLAINTEXT = 0x01
const CRYPTO_RC4 = 0x02
const VC = Buffer.alloc(8)
const MAX_IA_BYTES = 0xffff

const log = logger('bittorrent:mse')

/** HASH('req2', SKEY) for an info hash: what an initiator sends (XORed with HASH('req3', S)) to name it. */
export function req2Hash(infoHash: Uint8Array): Buffer {
  return sha1('req2', infoHash)
}

/**
 * An {@link InfoHashLookup} over a fixed set of torrents. For a changing set, keep a map of `req2Hash(infoHash)`
 * (hex) to info hash and look it up the same way.
 */
export function infoHashLookup(infoHashes: Iterable<Uint8Array>): InfoHashLookup {
  const byHash = new Map<string, Uint8Array>()
  for (const infoHash of infoHashes) byHash.set(req2Hash(infoHash).toString('hex'), infoHash)
  return (hash) => byHash.get(hash.toString('hex'))
}

function methodBits(methods: readonly CryptoMethod[] | undefined): number {
  const list = methods ?? ['plaintext', 'rc4']
  let bits = 0
  if (list.includes('plaintext')) bits |= CRYPTO_PLAINTEXT
  if (list.includes('rc4')) bits |= CRYPTO_RC4
  if (bits === 0) throw new MseError('INVALID_ARGUMENT', { allowedMethods: list })
  return bits
}

function randomPad(): Buffer {
  return randomBytes(randomInt(0, MAX_PAD_BYTES + 1))
}

function xor20(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(20)
  for (let i = 0; i < 20; i++) out[i] = (a[i] as number) ^ (b[i] as number)
  return out
}

function uint16(n: number): Buffer {
  const out = Buffer.allocUnsafe(2)
  out.writeUInt16BE(n)
  return out
}

function uint32(n: number): Buffer {
  const out = Buffer.allocUnsafe(4)
  out.writeUInt32BE(n)
  return out
}

/**
 * Runs `body` with a reader on `raw`, under the timeout and the caller's signal. On any failure the connection is
 * destroyed and an {@link MseError} thrown.
 */
async function guarded<T>(
  raw: Duplex,
  opts: MseMethodOptions,
  prefix: Buffer | undefined,
  body: (reader: HandshakeReader) => Promise<T>,
): Promise<T> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_MSE_TIMEOUT_MS)
  const signal = opts.signal === undefined ? timeout : AbortSignal.any([timeout, opts.signal])
  const reader = new HandshakeReader(
    raw,
    signal,
    () => new MseError(opts.signal?.aborted === true ? 'ABORTED' : 'TIMEOUT'),
    prefix,
  )
  try {
    return await body(reader)
  } catch (err) {
    const failure = err instanceof MseError ? err : new MseError('CLOSED', { cause: err })
    reader.fail(failure)
    reader.detach()
    // A late socket error after we gave up must not become an unhandled 'error' event.
    raw.on('error', () => {})
    raw.destroy()
    log.debug('handshake failed', { code: failure.code })
    throw failure
  }
}

function write(raw: Duplex, data: Buffer): void {
  if (!raw.destroyed) raw.write(data)
}

function keys(secret: Buffer, skey: Uint8Array, native: boolean | 'auto' | undefined) {
  const rc4 = (name: string): StreamCipher =>
    createRc4(sha1(name, secret, skey), { discardBytes: RC4_DISCARD_BYTES, native: native ?? 'auto' })
  return { a: rc4('keyA'), b: rc4('keyB') }
}

/**
 * The initiator side of message stream encryption: we dialled and know the torrent. Resolves with a Duplex that
 * reads and writes plaintext BitTorrent once the handshake is done (RC4 or plaintext payload as negotiated).
 *
 * @example
 * ```ts
 * const { stream, method } = await mseInitiate(socket, { infoHash, allowedMethods: ['rc4'] })
 * const wire = new PeerWire(stream, { peerId, infoHash })
 * ```
 */
export async function mseInitiate(raw: Duplex, opts: MseInitiatorOptions): Promise<MseResult> {
  const provide = methodBits(opts.allowedMethods)
  const ia = Buffer.from(opts.initialPayload ?? new Uint8Array(0))
  if (opts.infoHash.length !== 20 || ia.length > MAX_IA_BYTES) {
    raw.destroy()
    throw new MseError('INVALID_ARGUMENT', {
      infoHashBytes: opts.infoHash.length,
      initialPayloadBytes: ia.length,
    })
  }
  return guarded(raw, opts, undefined, async (reader) => {
    const dh = new DhKeys()
    write(raw, Buffer.concat([dh.publicKey, randomPad()]))
    const secret = dh.secret(await reader.read(DH_BYTES))
    const { a: encrypt, b: decrypt } = keys(secret, opts.infoHash, opts.nativeRc4)
    const padC = randomPad()
    write(
      raw,
      Buffer.concat([
        sha1('req1', secret),
        xor20(sha1('req2', opts.infoHash), sha1('req3', secret)),
        encrypt.update(Buffer.concat([VC, uint32(provide), uint16(padC.length), padC, uint16(ia.length)])),
        encrypt.update(ia),
      ]),
    )
    // PadB is at most 512 bytes, then comes VC encrypted with keyB: find it to know where the stream starts.
    await reader.syncTo(decrypt.update(VC), MAX_PAD_BYTES)
    const head = decrypt.update(await reader.read(6))
    const select = head.readUInt32BE(0)
    const padDLength = head.readUInt16BE(4)
    if (select !== CRYPTO_PLAINTEXT && select !== CRYPTO_RC4) throw new MseError('INVALID_SELECT', { select })
    if ((select & provide) === 0) throw new MseError('INVALID_SELECT', { select, provide })
    if (padDLength > MAX_PAD_BYTES) throw new MseError('PAD_TOO_LONG', { padLength: padDLength })
    decrypt.update(await reader.read(padDLength))
    const rest = reader.detach()
    const method: CryptoMethod = select === CRYPTO_RC4 ? 'rc4' : 'plaintext'
    const stream =
      method === 'rc4'
        ? new MseStream(raw, { encrypt, decrypt }, decrypt.update(rest))
        : new MseStream(raw, {}, rest)
    return { stream, encrypted: true, method, initialPayload: Buffer.alloc(0) }
  })
}

/**
 * The responder side of message stream encryption: we were dialled and learn the torrent from the handshake.
 * `prefix` are bytes already read from `raw` (for example by {@link acceptConnection}'s detection).
 */
export async function mseRespond(
  raw: Duplex,
  opts: MseResponderOptions,
  prefix?: Buffer,
): Promise<MseResult> {
  const allowed = methodBits(opts.allowedMethods)
  return guarded(raw, opts, prefix, async (reader) => {
    const dh = new DhKeys()
    const theirs = await reader.read(DH_BYTES)
    write(raw, Buffer.concat([dh.publicKey, randomPad()]))
    const secret = dh.secret(theirs)
    // PadA is at most 512 bytes, then HASH('req1', S) marks where the rest begins.
    await reader.syncTo(sha1('req1', secret), MAX_PAD_BYTES)
    const req2 = xor20(await reader.read(20), sha1('req3', secret))
    const found = opts.lookup(req2)
    if (found === undefined) throw new MseError('UNKNOWN_INFO_HASH')
    const infoHash = Buffer.from(found)
    const { a: decrypt, b: encrypt } = keys(secret, infoHash, opts.nativeRc4)
    const head = decrypt.update(await reader.read(14))
    if (!head.subarray(0, 8).equals(VC)) throw new MseError('INVALID_VC')
    const provide = head.readUInt32BE(8)
    const padCLength = head.readUInt16BE(12)
    if (padCLength > MAX_PAD_BYTES) throw new MseError('PAD_TOO_LONG', { padLength: padCLength })
    decrypt.update(await reader.read(padCLength))
    const iaLength = decrypt.update(await reader.read(2)).readUInt16BE(0)
    const ia = decrypt.update(await reader.read(iaLength))
    const common = provide & allowed
    if ((common & (CRYPTO_PLAINTEXT | CRYPTO_RC4)) === 0) throw new MseError('NO_COMMON_METHOD', { provide })
    const preferRc4 = opts.preferRc4 ?? true
    const select =
      common & CRYPTO_RC4 && (preferRc4 || (common & CRYPTO_PLAINTEXT) === 0) ? CRYPTO_RC4 : CRYPTO_PLAINTEXT
    const padD = Buffer.alloc(0)
    write(raw, encrypt.update(Buffer.concat([VC, uint32(select), uint16(padD.length), padD])))
    const rest = reader.detach()
    const method: CryptoMethod = select === CRYPTO_RC4 ? 'rc4' : 'plaintext'
    const stream =
      method === 'rc4'
        ? new MseStream(raw, { encrypt, decrypt }, Buffer.concat([ia, decrypt.update(rest)]))
        : new MseStream(raw, {}, Buffer.concat([ia, rest]))
    return { stream, encrypted: true, method, infoHash, initialPayload: ia }
  })
}

/**
 * Takes an incoming connection: a plain BitTorrent handshake (first bytes `\x13BitTorrent protocol`) passes
 * through unless the policy is `forced`; anything else is answered as an MSE handshake unless the policy is
 * `disabled` (then the connection is handed over untouched and the peer wire rejects what it is not).
 *
 * @example
 * ```ts
 * server.on('connection', async (socket) => {
 *   const conn = await acceptConnection(socket, { policy: 'enabled', lookup }).catch(() => undefined)
 *   if (conn === undefined) return // socket already destroyed
 *   const wire = new PeerWire(conn.stream, { peerId })
 * })
 * ```
 */
export async function acceptConnection(
  raw: Duplex,
  opts: MseResponderOptions & { policy: EncryptionPolicy },
): Promise<MseResult> {
  if (opts.policy === 'disabled') {
    return { stream: raw, encrypted: false, method: 'plaintext', initialPayload: Buffer.alloc(0) }
  }
  const first = await guarded(raw, opts, undefined, async (reader) => {
    const head = await reader.peek(BITTORRENT_PROTOCOL_HEADER.length)
    if (head.equals(BITTORRENT_PROTOCOL_HEADER) && opts.policy === 'forced') {
      throw new MseError('ENCRYPTION_REQUIRED')
    }
    return { plain: head.equals(BITTORRENT_PROTOCOL_HEADER), rest: reader.detach() }
  })
  if (first.plain) {
    return {
      stream: new MseStream(raw, {}, first.rest),
      encrypted: false,
      method: 'plaintext',
      initialPayload: Buffer.alloc(0),
    }
  }
  return mseRespond(raw, opts, first.rest)
}

/**
 * Opens the BitTorrent stream of an outgoing connection by policy: `disabled` hands `raw` back untouched;
 * `enabled` and `forced` run {@link mseInitiate}. (libtorrent retries an `enabled` connection in plain BitTorrent
 * when the handshake fails; that needs a new connection, so it is the caller's choice.)
 */
export async function openOutgoing(
  raw: Duplex,
  opts: MseInitiatorOptions & { policy: EncryptionPolicy },
): Promise<MseResult> {
  if (opts.policy === 'disabled') {
    return { stream: raw, encrypted: false, method: 'plaintext', initialPayload: Buffer.alloc(0) }
  }
  return mseInitiate(raw, opts)
}
