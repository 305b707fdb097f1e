import { describe, expect, it } from 'vitest'
import { PrivateKey, PublicKey } from '../keys/index.js'
import { communityPrefix } from '../serialization/index.js'
import { loadVectors } from '../testing/vectors.js'
import {
  boxBeforeNm,
  completeKeyExchange,
  decryptLayer,
  deriveSessionKeys,
  encryptLayer,
  onionDecrypt,
  onionEncrypt,
  onionOpen,
  openLayer,
  respondToKeyExchange,
  type SessionKeys,
  sealLayer,
  withReplayProtection,
} from './crypto.js'
import {
  CandidateList,
  CELL_MESSAGE_OFFSET,
  CreatedPayload,
  CreatePayload,
  cellMessage,
  DataPayload,
  dataCellMessage,
  decodeCell,
  decodeCellMessage,
  decodeDataCellMessage,
  encodeCell,
  writeCellHeader,
} from './payloads.js'
import { BACKWARD, FORWARD, TUNNEL_COMMUNITY_ID } from './types.js'

interface HopVector {
  hop: number
  hop_static_private_key_bin: string
  hop_static_public_key_bin: string
  hop_static_curve25519_pk: string
  initiator_ephemeral_private_key_bin: string
  create_key_field_X: string
  responder_ephemeral_private_key_bin: string
  created_key_field_Y: string
  created_auth_field: string
  shared_secret_64: string
  session_keys: {
    key_forward: string
    key_backward: string
    salt_forward: string
    salt_backward: string
    salt_explicit_forward_initial: number
    salt_explicit_backward_initial: number
  }
}

interface TunnelVectors {
  tunnel_prefix: string
  initiator_static_public_key_bin: string
  hops: HopVector[]
  per_hop_single_message: {
    hop: number
    plaintext: string
    forward_ciphertext: string
    backward_ciphertext: string
    explicit_counter_used: number
  }[]
  onion_forward: {
    circuit_id: number
    inner_plaintext_message: string
    encryption_layers: { after_encrypting_for_hop: number; message: string }[]
    relay_peeling: { hop: number; after_decrypt: string }[]
    cell_packet: string
    cell_flags: { plaintext: boolean; relay_early: boolean }
  }
  onion_backward: {
    circuit_id: number
    inner_plaintext_message: string
    encryption_layers: { after_hop_encrypts: number; message: string }[]
    cell_packet: string
    initiator_decrypts_hop_order: number[]
  }
  create_cell: {
    identifier: number
    packet: string
    cell_flags: { plaintext: boolean; relay_early: boolean }
  }
  created_cell: {
    identifier: number
    candidates_plain_varlenH_list: string
    candidates_enc: string
    packet: string
    cell_flags: { plaintext: boolean; relay_early: boolean }
  }
}

const v = loadVectors<TunnelVectors>('tunnel_crypto')
const hex = (s: string): Buffer => Buffer.from(s, 'hex')
const prefix = communityPrefix(TUNNEL_COMMUNITY_ID)
/** Fresh session keys of hop i (1-based), counters at their initial value. */
const keysOf = (hop: number): SessionKeys =>
  deriveSessionKeys(hex((v.hops[hop - 1] as HopVector).shared_secret_64))
const allKeys = (): SessionKeys[] => [keysOf(1), keysOf(2), keysOf(3)]

describe('tunnel key exchange (tunnel_crypto.json)', () => {
  it('uses the tunnel community prefix of the vectors', () => {
    expect(prefix.toString('hex')).toBe(v.tunnel_prefix)
  })

  for (const hop of v.hops) {
    it(`hop ${hop.hop}: the responder computes Y, auth and the shared secret`, () => {
      const hopKey = PrivateKey.fromBin(hex(hop.hop_static_private_key_bin))
      expect(hopKey.publicKey.toBin().toString('hex')).toBe(hop.hop_static_public_key_bin)
      const x = PrivateKey.fromBin(hex(hop.initiator_ephemeral_private_key_bin))
      expect(x.publicKey.curvePublicKey.toString('hex')).toBe(hop.create_key_field_X)
      const y = PrivateKey.fromBin(hex(hop.responder_ephemeral_private_key_bin))
      const answer = respondToKeyExchange(hex(hop.create_key_field_X), hopKey.curveSecretKey, {
        secretKey: y.curveSecretKey,
        publicKey: y.publicKey.curvePublicKey,
      })
      expect(answer.key.toString('hex')).toBe(hop.created_key_field_Y)
      expect(answer.auth.toString('hex')).toBe(hop.created_auth_field)
      expect(answer.shared.toString('hex')).toBe(hop.shared_secret_64)
    })

    it(`hop ${hop.hop}: the initiator verifies auth and derives the same secret and session keys`, () => {
      const x = PrivateKey.fromBin(hex(hop.initiator_ephemeral_private_key_bin))
      const hopPk = PublicKey.fromBin(hex(hop.hop_static_public_key_bin)).curvePublicKey
      expect(hopPk.toString('hex')).toBe(hop.hop_static_curve25519_pk)
      const shared = completeKeyExchange(
        x.curveSecretKey,
        hex(hop.created_key_field_Y),
        hex(hop.created_auth_field),
        hopPk,
      )
      expect(shared.toString('hex')).toBe(hop.shared_secret_64)
      const keys = deriveSessionKeys(shared)
      expect(keys.keyForward.toString('hex')).toBe(hop.session_keys.key_forward)
      expect(keys.keyBackward.toString('hex')).toBe(hop.session_keys.key_backward)
      expect(keys.saltForward.toString('hex')).toBe(hop.session_keys.salt_forward)
      expect(keys.saltBackward.toString('hex')).toBe(hop.session_keys.salt_backward)
      expect(keys.counterForward).toBe(hop.session_keys.salt_explicit_forward_initial)
      expect(keys.counterBackward).toBe(hop.session_keys.salt_explicit_backward_initial)
    })

    it(`hop ${hop.hop}: rejects an auth made with other keys`, () => {
      const x = PrivateKey.fromBin(hex(hop.initiator_ephemeral_private_key_bin))
      const auth = hex(hop.created_auth_field)
      auth[0] = (auth[0] as number) ^ 1
      const hopPk = hex(hop.hop_static_curve25519_pk)
      expect(() => completeKeyExchange(x.curveSecretKey, hex(hop.created_key_field_Y), auth, hopPk)).toThrow(
        expect.objectContaining({ code: 'KEY_EXCHANGE' }),
      )
    })
  }

  it('is libsodium crypto_box_beforenm, not the raw X25519 output', () => {
    const hop = v.hops[0] as HopVector
    const x = PrivateKey.fromBin(hex(hop.initiator_ephemeral_private_key_bin))
    const y = hex(hop.created_key_field_Y)
    const raw = x.diffieHellman(new PublicKey(y, Buffer.alloc(32, 1)))
    const shared = hex(hop.shared_secret_64)
    expect(boxBeforeNm(x.curveSecretKey, y)).toEqual(shared.subarray(0, 32))
    expect(raw.equals(shared.subarray(0, 32))).toBe(false)
  })

  it('rejects a low-order X25519 point', () => {
    expect(() => boxBeforeNm(Buffer.alloc(32, 7), Buffer.alloc(32))).toThrow(
      expect.objectContaining({ code: 'KEY_EXCHANGE' }),
    )
  })
})

describe('per-hop layers', () => {
  for (const one of v.per_hop_single_message) {
    it(`hop ${one.hop}: encrypts forward and backward byte for byte, with counter ${one.explicit_counter_used}`, () => {
      const forward = encryptLayer(hex(one.plaintext), keysOf(one.hop), FORWARD)
      expect(forward.toString('hex')).toBe(one.forward_ciphertext)
      expect(forward.readBigUInt64BE(0)).toBe(BigInt(one.explicit_counter_used))
      const backward = encryptLayer(hex(one.plaintext), keysOf(one.hop), BACKWARD)
      expect(backward.toString('hex')).toBe(one.backward_ciphertext)
      expect(decryptLayer(forward, keysOf(one.hop), FORWARD).toString('hex')).toBe(one.plaintext)
      expect(decryptLayer(backward, keysOf(one.hop), BACKWARD).toString('hex')).toBe(one.plaintext)
    })
  }

  it('never reuses a counter: the second cell carries 3', () => {
    const keys = keysOf(1)
    encryptLayer(Buffer.from('a'), keys, FORWARD)
    expect(encryptLayer(Buffer.from('a'), keys, FORWARD).readBigUInt64BE(0)).toBe(3n)
    expect(keys.counterBackward).toBe(1)
  })

  it('rejects damaged, truncated, wrong-direction and wrong-hop layers', () => {
    const one = v.per_hop_single_message[0] as TunnelVectors['per_hop_single_message'][number]
    const good = hex(one.forward_ciphertext)
    const damaged = Buffer.from(good)
    damaged[12] = (damaged[12] as number) ^ 0x80
    const wrongCounter = Buffer.from(good)
    wrongCounter[7] = 3
    for (const [layer, keys, dir] of [
      [damaged, keysOf(1), FORWARD],
      [wrongCounter, keysOf(1), FORWARD],
      [good.subarray(0, 23), keysOf(1), FORWARD],
      [good, keysOf(1), BACKWARD],
      [good, keysOf(2), FORWARD],
    ] as const) {
      expect(() => decryptLayer(layer, keys, dir)).toThrow(expect.objectContaining({ code: 'DECRYPT' }))
      expect(() => openLayer(Buffer.from(layer), keys, dir)).toThrow(
        expect.objectContaining({ code: 'DECRYPT' }),
      )
    }
  })

  it('opens a layer in place: the plaintext is a view where the ciphertext was, and a replay is refused', () => {
    for (const one of v.per_hop_single_message) {
      const datagram = Buffer.concat([Buffer.alloc(5), hex(one.forward_ciphertext)])
      const layer = datagram.subarray(5)
      const plain = openLayer(layer, withReplayProtection(keysOf(one.hop)), FORWARD)
      expect(plain.toString('hex')).toBe(one.plaintext)
      expect(plain.buffer).toBe(datagram.buffer)
      expect(plain.byteOffset).toBe(datagram.byteOffset + 5 + 8)
      const protectedKeys = withReplayProtection(keysOf(one.hop))
      openLayer(hex(one.forward_ciphertext), protectedKeys, FORWARD)
      expect(() => openLayer(hex(one.forward_ciphertext), protectedKeys, FORWARD)).toThrow(
        expect.objectContaining({ code: 'REPLAY' }),
      )
    }
  })
})

describe('onions', () => {
  it('builds the forward onion layer by layer and each relay peels one', () => {
    const f = v.onion_forward
    const keys = allKeys()
    const layers: string[] = []
    let message = hex(f.inner_plaintext_message)
    for (const layer of f.encryption_layers) {
      message = encryptLayer(message, keys[layer.after_encrypting_for_hop - 1] as SessionKeys, FORWARD)
      layers.push(message.toString('hex'))
    }
    expect(layers).toEqual(f.encryption_layers.map((l) => l.message))
    expect(onionEncrypt(hex(f.inner_plaintext_message), allKeys()).toString('hex')).toBe(layers.at(-1))

    const relayKeys = allKeys()
    for (const peel of f.relay_peeling) {
      message = decryptLayer(message, relayKeys[peel.hop - 1] as SessionKeys, FORWARD)
      expect(message.toString('hex')).toBe(peel.after_decrypt)
    }
  })

  it('frames the forward onion as the cell datagram of the vectors', () => {
    const f = v.onion_forward
    const cell = {
      circuitId: f.circuit_id,
      plaintext: f.cell_flags.plaintext,
      relayEarly: f.cell_flags.relay_early,
      message: onionEncrypt(hex(f.inner_plaintext_message), allKeys()),
    }
    expect(encodeCell(prefix, cell).toString('hex')).toBe(f.cell_packet)
    const parsed = decodeCell(hex(f.cell_packet))
    expect(parsed).toEqual(cell)
    const inner = onionDecryptForward(parsed.message)
    const data = decodeCellMessage(DataPayload, parsed.circuitId, inner)
    expect(data).toEqual({
      circuitId: 287454020,
      destination: { host: '127.0.0.1', port: 9999 },
      origin: { host: '0.0.0.0', port: 0 },
      data: hex('0000000068656c6c6f2065786974'),
    })
    expect(cellMessage(DataPayload, data).toString('hex')).toBe(f.inner_plaintext_message)
  })

  it('seals a layer in place with the bytes encryptLayer gives, in both directions', () => {
    const f = v.onion_forward
    const message = hex(f.inner_plaintext_message)
    for (const direction of [FORWARD, BACKWARD] as const) {
      const expected = encryptLayer(message, keysOf(2), direction)
      const out = Buffer.alloc(5 + 8 + message.length + 16 + 3, 0xee)
      message.copy(out, 13)
      sealLayer(out, 13, 13 + message.length, keysOf(2), direction)
      expect(out.subarray(5, 5 + expected.length).toString('hex')).toBe(expected.toString('hex'))
      // the bytes around the layer are left alone
      expect([...out.subarray(0, 5), ...out.subarray(5 + expected.length)]).toEqual(Array(8).fill(0xee))
      expect(decryptLayer(out.subarray(5, 5 + expected.length), keysOf(2), direction)).toEqual(message)
    }
    expect(() => sealLayer(Buffer.alloc(40), 4, 20, keysOf(2), FORWARD)).toThrow(RangeError)
    expect(() => sealLayer(Buffer.alloc(40), 8, 30, keysOf(2), FORWARD)).toThrow(RangeError)
  })

  it('builds the same datagram in place: layers leave room for the cell header', () => {
    const f = v.onion_forward
    const sealed = onionEncrypt(hex(f.inner_plaintext_message), allKeys(), CELL_MESSAGE_OFFSET)
    expect(writeCellHeader(sealed, prefix, f.circuit_id, true).toString('hex')).toBe(f.cell_packet)
    const data = dataCellMessage(
      { host: '127.0.0.1', port: 9999 },
      { host: '0.0.0.0', port: 0 },
      hex('0000000068656c6c6f2065786974'),
    )
    expect(data.toString('hex')).toBe(f.inner_plaintext_message)
    // a relay peels its layer
    const relay = decryptLayer(decodeCell(hex(f.cell_packet)).message, keysOf(1), FORWARD)
    expect(relay.toString('hex')).toBe(f.relay_peeling[0]?.after_decrypt)
    expect(decodeDataCellMessage(7, hex(f.inner_plaintext_message)).data.toString('hex')).toBe(
      '0000000068656c6c6f2065786974',
    )
  })

  it('builds the backward onion hop by hop and the initiator removes every layer', () => {
    const b = v.onion_backward
    const keys = allKeys()
    let message = hex(b.inner_plaintext_message)
    for (const layer of b.encryption_layers) {
      message = encryptLayer(message, keys[layer.after_hop_encrypts - 1] as SessionKeys, BACKWARD)
      expect(message.toString('hex')).toBe(layer.message)
    }
    const cell = encodeCell(prefix, { circuitId: b.circuit_id, plaintext: false, relayEarly: false, message })
    expect(cell.toString('hex')).toBe(b.cell_packet)
    expect(b.initiator_decrypts_hop_order).toEqual([1, 2, 3])
    const plain = onionDecrypt(decodeCell(cell).message, allKeys())
    expect(plain.toString('hex')).toBe(b.inner_plaintext_message)
    // in place, every layer peeled inside the datagram it arrived in
    const opened = onionOpen(decodeCell(Buffer.from(cell)).message, allKeys())
    expect(opened.toString('hex')).toBe(b.inner_plaintext_message)
    const data = decodeCellMessage(DataPayload, b.circuit_id, plain)
    expect(data.origin).toEqual({ host: '127.0.0.1', port: 9999 })
    expect(data.data.toString('latin1')).toBe('\0\0\0\0hello back')
  })
})

describe('create and created cells', () => {
  it('encodes the create cell of the vectors (plaintext, relay_early)', () => {
    const c = v.create_cell
    const hop = v.hops[0] as HopVector
    const message = cellMessage(CreatePayload, {
      circuitId: v.onion_forward.circuit_id,
      identifier: c.identifier,
      nodePublicKey: hex(v.initiator_static_public_key_bin),
      key: hex(hop.create_key_field_X),
    })
    const packet = encodeCell(prefix, {
      circuitId: v.onion_forward.circuit_id,
      plaintext: c.cell_flags.plaintext,
      relayEarly: c.cell_flags.relay_early,
      message,
    })
    expect(packet.toString('hex')).toBe(c.packet)
    const cell = decodeCell(packet)
    expect(decodeCellMessage(CreatePayload, cell.circuitId, cell.message).identifier).toBe(c.identifier)
  })

  it('encodes the created cell with the candidates encrypted FORWARD under hop 1 keys', () => {
    const c = v.created_cell
    const hop = v.hops[0] as HopVector
    const plain = CandidateList.encode({
      keys: [
        hex((v.hops[1] as HopVector).hop_static_public_key_bin),
        hex((v.hops[2] as HopVector).hop_static_public_key_bin),
      ],
    })
    expect(plain.toString('hex')).toBe(c.candidates_plain_varlenH_list)
    const enc = encryptLayer(plain, keysOf(1), FORWARD)
    expect(enc.toString('hex')).toBe(c.candidates_enc)
    const packet = encodeCell(prefix, {
      circuitId: v.onion_forward.circuit_id,
      plaintext: true,
      relayEarly: false,
      message: cellMessage(CreatedPayload, {
        circuitId: v.onion_forward.circuit_id,
        identifier: c.identifier,
        key: hex(hop.created_key_field_Y),
        auth: hex(hop.created_auth_field),
        candidatesEnc: enc,
      }),
    })
    expect(packet.toString('hex')).toBe(c.packet)
    const cell = decodeCell(packet)
    const created = decodeCellMessage(CreatedPayload, cell.circuitId, cell.message)
    expect(CandidateList.decode(decryptLayer(created.candidatesEnc, keysOf(1), FORWARD)).keys).toHaveLength(2)
  })
})

function onionDecryptForward(message: Buffer): Buffer {
  const keys = allKeys()
  let out = message
  for (const k of keys) out = decryptLayer(out, k, FORWARD)
  return out
}
