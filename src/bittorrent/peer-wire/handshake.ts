import { HANDSHAKE_BYTES, PROTOCOL } from './messages.js'
import { type Handshake, type HandshakeExtensions, type Id20, PeerWireError } from './types.js'

/** Encodes a BitTorrent handshake (BEP 3) with the reserved bits of the given extensions. */
export function encodeHandshake(infoHash: Id20, peerId: Id20, extensions: HandshakeExtensions): Buffer {
  if (infoHash.length !== 20 || peerId.length !== 20) {
    throw new PeerWireError('INVALID_STATE', { reason: 'info hash and peer id must be 20 bytes' })
  }
  const buf = Buffer.alloc(HANDSHAKE_BYTES)
  PROTOCOL.copy(buf, 0)
  if (extensions.extended) buf[20 + 5] = 0x10
  if (extensions.fast) buf[20 + 7]! |= 0x04
  if (extensions.dht) buf[20 + 7]! |= 0x01
  buf.set(infoHash, 28)
  buf.set(peerId, 48)
  return buf
}

/** Decodes the 68 bytes of a handshake; throws `INVALID_HANDSHAKE` if they are not one. */
export function decodeHandshake(buf: Buffer): Handshake {
  if (buf.length !== HANDSHAKE_BYTES || !buf.subarray(0, 20).equals(PROTOCOL)) {
    throw new PeerWireError('INVALID_HANDSHAKE')
  }
  const reserved = Buffer.from(buf.subarray(20, 28))
  return {
    reserved,
    infoHash: Buffer.from(buf.subarray(28, 48)),
    peerId: Buffer.from(buf.subarray(48, 68)),
    extensions: {
      extended: (reserved[5]! & 0x10) !== 0,
      fast: (reserved[7]! & 0x04) !== 0,
      dht: (reserved[7]! & 0x01) !== 0,
    },
  }
}
