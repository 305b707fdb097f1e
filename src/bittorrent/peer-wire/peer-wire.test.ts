import { createHash, randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { Duplex } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { encode } from '../../bencode/index.js'
import { ManualClock } from '../../common/index.js'
import { allowedFastSet } from './allowed-fast.js'
import { duplexPair } from './duplex-pair.js'
import { encodeMetadataMessage, encodePex } from './extensions.js'
import { encodeHandshake } from './handshake.js'
import * as m from './messages.js'
import { fullBitfield, PeerWire, type PeerWireOptions } from './peer-wire.js'
import { POOLED_READ_BYTES, pooledReads } from './read-pool.js'
import { PeerWireError, type PeerWireErrorCode } from './types.js'

const INFO_HASH = Buffer.alloc(20, 0xab)
const peerId = (n: number): Buffer => Buffer.from(`-TS0001-${String(n).padStart(12, '0')}`)
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Two wires over an in-process pair; `a` dials, `b` accepts. */
async function connectedPair(
  aOpts: Partial<PeerWireOptions> = {},
  bOpts: Partial<PeerWireOptions> = {},
): Promise<{ a: PeerWire; b: PeerWire }> {
  const [sa, sb] = duplexPair()
  const a = new PeerWire(sa, { peerId: peerId(1), infoHash: INFO_HASH, ...aOpts })
  const b = new PeerWire(sb, { peerId: peerId(2), ...bOpts })
  b.on('handshake', (h) => b.handshake(h.infoHash))
  const extended = [a, b].filter((w, i) => ((i === 0 ? aOpts : bOpts).extensions?.extended ?? true) && w)
  await Promise.all([
    new Promise((resolve) => a.once('handshake', resolve)),
    ...(extended.length === 2 ? extended.map((w) => w.waitForExtendedHandshake()) : []),
  ])
  return { a, b }
}

/** A wire fed by hand: `feed` pushes raw bytes as the remote peer; `sent` collects what the wire wrote. */
function rawWire(opts: Partial<PeerWireOptions> = {}): {
  wire: PeerWire
  feed: (bytes: Buffer) => void
  sent: Buffer[]
} {
  const sent: Buffer[] = []
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      sent.push(Buffer.from(chunk))
      cb()
    },
  })
  const wire = new PeerWire(stream, { peerId: peerId(1), infoHash: INFO_HASH, ...opts })
  return { wire, feed: (bytes) => stream.push(bytes), sent }
}

const remoteHandshake = (ext = { extended: true, fast: true, dht: true }): Buffer =>
  encodeHandshake(INFO_HASH, peerId(9), ext)

async function closedWith(wire: PeerWire): Promise<PeerWireErrorCode | undefined> {
  const err = await wire.closed
  return err?.code
}

describe('PeerWire handshake', () => {
  it('exchanges handshakes with reserved bits and extended handshakes', async () => {
    const metadata = randomBytes(1000)
    const { a, b } = await connectedPair(
      {
        extensions: { dht: true },
        clientName: 'A/1',
        listenPort: 6881,
        remoteAddress: { host: '127.0.0.9', port: 1 },
      },
      { metadata, reqq: 77 },
    )
    expect(a.remoteHandshake?.peerId).toEqual(peerId(2))
    expect(b.remoteHandshake?.peerId).toEqual(peerId(1))
    expect(b.remoteHandshake?.extensions).toEqual({ extended: true, fast: true, dht: true })
    expect(a.fastExtension && a.extensionProtocol).toBe(true)
    expect(b.remoteExtended).toMatchObject({ v: 'A/1', p: 6881, m: { ut_metadata: 1, ut_pex: 2 } })
    expect(b.remoteExtended?.yourip).toEqual(Buffer.from([127, 0, 0, 9]))
    expect(a.remoteExtended).toMatchObject({ reqq: 77, metadataSize: 1000 })
    a.destroy()
    expect(await closedWith(b)).toBeUndefined()
  })

  it('drops a peer that answers with another info hash', async () => {
    const { wire, feed } = rawWire()
    feed(encodeHandshake(Buffer.alloc(20, 1), peerId(9), { extended: true, fast: true, dht: false }))
    expect(await closedWith(wire)).toBe('INFO_HASH_MISMATCH')
  })

  it('rejects bytes that are not a handshake at the first byte', async () => {
    const { wire, feed } = rawWire()
    feed(Buffer.from('GET / HTTP/1.1\r\n'))
    expect(await closedWith(wire)).toBe('INVALID_HANDSHAKE')
  })

  it('drops an accepted connection for a torrent we do not have', async () => {
    const [sa, sb] = duplexPair()
    new PeerWire(sa, { peerId: peerId(1), infoHash: INFO_HASH })
    const b = new PeerWire(sb, { peerId: peerId(2) })
    expect(await closedWith(b)).toBe('INFO_HASH_MISMATCH')
  })

  it('answers with a bitfield sent from the handshake listener before the extended handshake', async () => {
    const { wire, feed, sent } = rawWire({ numPieces: 10 })
    wire.on('handshake', () => wire.bitfield(fullBitfield(10)))
    feed(remoteHandshake())
    await tick()
    const bytes = Buffer.concat(sent)
    expect(bytes.subarray(68, 68 + 7)).toEqual(m.Bitfield.encode({ bitfield: Buffer.from([0xff, 0xc0]) }))
    expect(bytes[68 + 7 + 4]).toBe(m.Extended.id)
    wire.destroy()
  })
})

describe('PeerWire messages', () => {
  it('round-trips every BEP 3 and BEP 6 message between two wires', async () => {
    const { a, b } = await connectedPair({ numPieces: 20 }, { numPieces: 20, extensions: { dht: true } })
    const seen: string[] = []
    for (const name of ['choke', 'unchoke', 'interested', 'notInterested', 'haveAll', 'haveNone'] as const) {
      b.on(name, () => seen.push(name))
    }
    b.on('have', (i) => seen.push(`have ${i}`))
    b.on('suggest', (i) => seen.push(`suggest ${i}`))
    b.on('allowedFast', (i) => seen.push(`allowedFast ${i}`))
    b.on('port', (p) => seen.push(`port ${p}`))
    a.haveNone()
    a.unchoke()
    a.interested()
    a.have(3)
    a.suggest(4)
    a.allowedFast(5)
    a.port(6881)
    a.notInterested()
    a.choke()
    await tick()
    expect(seen).toEqual([
      'haveNone',
      'unchoke',
      'interested',
      'have 3',
      'suggest 4',
      'allowedFast 5',
      'port 6881',
      'notInterested',
      'choke',
    ])
    expect(b.peerIsSeed || b.peerInterested || !b.peerChoking).toBe(false)
    expect(b.peerHas(3) && !b.peerHas(2)).toBe(true)
    expect(b.allowedFastFromPeer.has(5) && b.suggestedByPeer.has(4)).toBe(true)
    a.destroy()
  })

  it('lets a later bitfield replace a have-none, as aria2 sends them', async () => {
    const { a, b } = await connectedPair({ numPieces: 12 }, { numPieces: 12 })
    a.haveNone()
    a.bitfield(Uint8Array.from([0b1010_0000, 0]))
    await tick()
    expect(b.isClosed).toBe(false)
    expect([b.peerHas(0), b.peerHas(1), b.peerHas(2)]).toEqual([true, false, true])
    expect(b.peerPieceCount).toBe(2)
    a.haveAll()
    await tick()
    expect(b.peerIsSeed).toBe(true)
    a.destroy()
  })

  it('encodes and decodes each declared message type identically', () => {
    const samples: Record<string, Record<string, number | Buffer>> = {
      have: { index: 7 },
      bitfield: { bitfield: Buffer.from([0xf0, 0x01]) },
      request: { index: 1, begin: 16384, length: 16384 },
      piece: { index: 2, begin: 0, block: randomBytes(100) },
      cancel: { index: 1, begin: 0, length: 5 },
      port: { port: 51413 },
      suggest: { index: 9 },
      reject: { index: 3, begin: 32768, length: 16384 },
      allowedFast: { index: 4 },
      extended: { extId: 3, payload: Buffer.from('d1:ai1ee') },
    }
    for (const spec of m.MESSAGES) {
      const value = samples[spec.name] ?? {}
      const encoded = (spec as m.MessageSpec).encode(value)
      expect(encoded.readUInt32BE(0)).toBe(encoded.length - 4)
      expect(encoded[4]).toBe(spec.id)
      expect((spec as m.MessageSpec).decode(encoded.subarray(5))).toEqual(value)
    }
  })

  it('parses the same messages whatever the split points of the input', async () => {
    const numPieces = 40
    const stream = Buffer.concat([
      remoteHandshake(),
      m.Bitfield.encode({ bitfield: Buffer.from(fullBitfield(numPieces - 1)) }),
      m.Extended.encode({ extId: 0, payload: encode({ m: { ut_pex: 7 }, v: 'x', reqq: 9 }) }),
      m.KEEPALIVE,
      m.Unchoke.encode({}),
      m.Have.encode({ index: 39 }),
      m.Extended.encode({
        extId: 2,
        payload: encodePex({ added: [{ host: '10.0.0.1', port: 80, flags: 2 }], dropped: [] }),
      }),
      m.Port.encode({ port: 1234 }),
      m.Choke.encode({}),
    ])
    let seed = 42
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed / 2 ** 31
    }
    const runs: string[][] = []
    for (let run = 0; run < 60; run++) {
      const { wire, feed } = rawWire({ numPieces })
      const events: string[] = []
      for (const name of [
        'bitfield',
        'unchoke',
        'have',
        'pex',
        'port',
        'choke',
        'extendedHandshake',
      ] as const) {
        wire.on(name, (payload) => events.push(`${name}:${JSON.stringify(payload)}`))
      }
      // run 0 feeds everything at once; the others cut at random points, down to single bytes
      let offset = 0
      while (offset < stream.length) {
        const size = run === 0 ? stream.length : 1 + Math.floor(random() * (run % 3 === 0 ? 3 : 40))
        feed(stream.subarray(offset, offset + size))
        offset += size
      }
      await tick()
      expect(wire.isClosed).toBe(false)
      runs.push(events)
      wire.destroy()
    }
    expect(runs[0]).toHaveLength(7)
    for (const events of runs) expect(events).toEqual(runs[0])
  })

  it('round-trips ut_pex with IPv4 and IPv6 peers and flags', async () => {
    const { a, b } = await connectedPair()
    const received = new Promise((resolve) => b.once('pex', resolve))
    const msg = {
      added: [
        { host: '127.0.0.5', port: 6881, flags: 0x12 },
        { host: '2001:db8::1', port: 51413, flags: 0x04 },
      ],
      dropped: [
        { host: '10.1.2.3', port: 1 },
        { host: '::1', port: 2 },
      ],
    }
    expect(a.sendPex(msg)).toBe(true)
    expect(await received).toEqual(msg)
    a.destroy()
  })
})

describe('PeerWire hostile input', () => {
  const cases: Array<[string, Buffer, PeerWireErrorCode]> = [
    ['a length prefix above the maximum', Buffer.from([0x7f, 0xff, 0xff, 0xff]), 'MESSAGE_TOO_LONG'],
    ['a have of the wrong length', Buffer.from([0, 0, 0, 4, 4, 0, 0, 1]), 'INVALID_MESSAGE'],
    ['a request of the wrong length', Buffer.from([0, 0, 0, 2, 6, 0]), 'INVALID_MESSAGE'],
    ['a have past the last piece', m.Have.encode({ index: 10 }), 'INVALID_MESSAGE'],
    ['a bitfield of the wrong size', m.Bitfield.encode({ bitfield: Buffer.alloc(3) }), 'INVALID_BITFIELD'],
    [
      'a bitfield with spare bits set',
      m.Bitfield.encode({ bitfield: Buffer.from([0, 0x01]) }),
      'INVALID_BITFIELD',
    ],
    [
      'an extended message that is not bencode',
      m.Extended.encode({ extId: 0, payload: Buffer.from('x') }),
      'INVALID_EXTENSION_MESSAGE',
    ],
    [
      'a ut_metadata message without a piece',
      m.Extended.encode({ extId: 1, payload: encode({ msg_type: 0 }) }),
      'INVALID_EXTENSION_MESSAGE',
    ],
  ]
  for (const [what, bytes, code] of cases) {
    it(`drops a peer that sends ${what} with ${code}`, async () => {
      const { wire, feed } = rawWire({ numPieces: 10 })
      const errors: PeerWireError[] = []
      wire.on('error', (err) => errors.push(err))
      feed(Buffer.concat([remoteHandshake(), bytes]))
      expect(await closedWith(wire)).toBe(code)
      expect(errors[0]?.code).toBe(code)
    })
  }

  it('drops a peer that sends fast messages it did not negotiate', async () => {
    const { wire, feed } = rawWire()
    feed(Buffer.concat([remoteHandshake({ extended: true, fast: false, dht: false }), m.HaveAll.encode({})]))
    expect(await closedWith(wire)).toBe('NOT_NEGOTIATED')
  })

  it('ignores unknown message ids', async () => {
    const { wire, feed } = rawWire()
    const unchoked = new Promise((resolve) => wire.once('unchoke', resolve))
    feed(Buffer.concat([remoteHandshake(), Buffer.from([0, 0, 0, 3, 0x15, 1, 2]), m.Unchoke.encode({})]))
    await unchoked
    expect(wire.isClosed).toBe(false)
    wire.destroy()
  })

  it('never throws and always ends in a coded error or a live connection on random input', async () => {
    let seed = 7
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed / 2 ** 31
    }
    for (let i = 0; i < 300; i++) {
      const { wire, feed } = rawWire({ numPieces: 16 })
      const garbage = Buffer.alloc(1 + Math.floor(random() * 200))
      for (let j = 0; j < garbage.length; j++) {
        garbage[j] = random() < 0.5 ? Math.floor(random() * 22) : Math.floor(random() * 256)
      }
      // small lengths make plausible frames
      if (garbage.length > 4) garbage.writeUInt32BE(Math.floor(random() * 30), 0)
      feed(Buffer.concat([remoteHandshake(), garbage]))
      await tick()
      if (wire.isClosed) expect((await wire.closed)?.code).toMatch(/^[A-Z_]+$/)
      wire.destroy()
    }
  })
})

describe('PeerWire requests', () => {
  it('pipelines requests and delivers blocks; the peer sees each request once', async () => {
    const { a, b } = await connectedPair({ numPieces: 4 }, { numPieces: 4 })
    const data = randomBytes(4 * 32768)
    b.on('request', (req) =>
      b.piece(
        req.index,
        req.begin,
        data.subarray(req.index * 32768 + req.begin, req.index * 32768 + req.begin + req.length),
      ),
    )
    const unchoked = new Promise((resolve) => a.once('unchoke', resolve))
    b.unchoke()
    await unchoked
    const blocks = await Promise.all(
      [0, 1, 2, 3].flatMap((index) => [0, 16384].map((begin) => a.request(index, begin, 16384))),
    )
    expect(Buffer.concat(blocks)).toEqual(data)
    expect(a.stats.payloadBytesDown).toBe(data.length)
    expect(b.stats.payloadBytesUp).toBe(data.length)
    expect(a.stats.requestsOut).toBe(0)
    a.destroy()
  })

  it('tells apart blocks at aligned and unaligned offsets and of pieces past the first 2^17', async () => {
    const numPieces = 0x20000 + 4
    const { a, b } = await connectedPair({ numPieces }, { numPieces })
    const bytesOf = (index: number, begin: number, length: number): Buffer =>
      createHash('sha256').update(`${index}:${begin}`).digest().subarray(0, length)
    b.on('request', (req) => b.piece(req.index, req.begin, bytesOf(req.index, req.begin, req.length)))
    const unchoked = new Promise((resolve) => a.once('unchoke', resolve))
    b.unchoke()
    await unchoked
    // Offsets that an integer key of (index, begin / 16 KiB) would confuse, beside ones it takes.
    const asked: Array<[number, number]> = [
      [1, 0],
      [1, 16384],
      [1, 1],
      [1, 16385],
      [0x1ffff, 16384],
      [0x20000, 16384],
      [0x20001, 0],
      [0, 0x8000000],
      [0, 0],
    ]
    const blocks = await Promise.all(asked.map(([index, begin]) => a.request(index, begin, 20)))
    blocks.forEach((block, i) => {
      const [index, begin] = asked[i]!
      expect(block).toEqual(bytesOf(index, begin, 20))
    })
    expect(a.stats.requestsOut).toBe(0)
    expect(b.stats.requestsIn).toBe(0)
    a.destroy()
  })

  it('delivers blocks from pooled socket reads cut anywhere; promises keep copies later reads do not touch', async () => {
    const { wire, feed } = rawWire({ numPieces: 4 })
    const pushed: Buffer[] = []
    const reads = pooledReads(
      () => ({ push: (chunk: Buffer) => pushed.push(chunk) > 0 }) as unknown as Socket,
    )
    const nextBuffer = reads.buffer as () => Uint8Array
    const feedPooled = (bytes: Buffer): void => {
      const buf = nextBuffer()
      buf.set(bytes)
      reads.callback(bytes.length, buf)
      feed(pushed.pop()!)
    }
    feed(Buffer.concat([remoteHandshake(), m.HaveAll.encode({}), m.Unchoke.encode({})]))
    await new Promise((resolve) => wire.once('unchoke', resolve))
    const data = randomBytes(4 * 32768)
    const blockOf = (index: number, begin: number): Buffer =>
      data.subarray(index * 32768 + begin, index * 32768 + begin + 16384)
    // Pieces 0 and 1 by promise, 2 and 3 by event; the event listener copies, as the download does.
    const promised = [0, 1].flatMap((index) => [0, 16384].map((begin) => wire.request(index, begin, 16384)))
    const copies = new Map<string, Buffer>()
    wire.on('piece', ({ index, begin, block }) => {
      if (index >= 2) copies.set(`${index}:${begin}`, Buffer.from(block))
    })
    for (const index of [2, 3]) for (const begin of [0, 16384]) wire.requestBlock(index, begin, 16384)
    const stream = Buffer.concat(
      [0, 1, 2, 3].flatMap((index) =>
        [0, 16384].map((begin) => m.Piece.encode({ index, begin, block: blockOf(index, begin) })),
      ),
    )
    let seed = 7
    for (let offset = 0; offset < stream.length; ) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      const size = Math.min(POOLED_READ_BYTES, 1 + (seed % 40_000))
      feedPooled(stream.subarray(offset, offset + size))
      offset += size
    }
    const blocks = await Promise.all(promised)
    // Later reads fill the recycled buffers; what was delivered must not change.
    for (let i = 0; i < 8; i++) feedPooled(m.KEEPALIVE)
    for (let i = 0; i < 4; i++) feedPooled(m.Have.encode({ index: i }))
    expect(Buffer.concat(blocks)).toEqual(data.subarray(0, 2 * 32768))
    for (const index of [2, 3]) {
      for (const begin of [0, 16384]) expect(copies.get(`${index}:${begin}`)).toEqual(blockOf(index, begin))
    }
    expect(wire.isClosed).toBe(false)
    wire.destroy()
  })

  it('limits outstanding requests to the peer reqq', async () => {
    const { a, b } = await connectedPair({}, { reqq: 3 })
    const unchoked = new Promise((resolve) => a.once('unchoke', resolve))
    b.unchoke()
    await unchoked
    const pending = [0, 1, 2].map((i) => a.request(i, 0, 16384).catch((e: PeerWireError) => e.code))
    expect(a.requestSlots).toBe(0)
    await expect(a.request(9, 0, 16384)).rejects.toMatchObject({ code: 'REQUEST_QUEUE_FULL' })
    a.destroy()
    expect(await Promise.all(pending)).toEqual(['CLOSED', 'CLOSED', 'CLOSED'])
  })

  it('treats a choke without the fast extension as rejecting every request', async () => {
    const { a, b } = await connectedPair({ extensions: { fast: false } })
    const unchoked = new Promise((resolve) => a.once('unchoke', resolve))
    b.unchoke()
    await unchoked
    const pending = a.request(0, 0, 16384)
    await new Promise((resolve) => b.once('request', resolve))
    b.choke()
    await expect(pending).rejects.toMatchObject({ code: 'CHOKED' })
    a.destroy()
  })

  it('rejects queued requests explicitly on choke with the fast extension, except allowed-fast pieces', async () => {
    const { a, b } = await connectedPair({ numPieces: 8 }, { numPieces: 8 })
    b.allowedFast(2)
    const unchoked = new Promise((resolve) => a.once('unchoke', resolve))
    b.unchoke()
    await unchoked
    const first = a.request(0, 0, 16384)
    const fast = a.request(2, 0, 16384)
    let requests = 0
    await new Promise<void>((resolve) => b.on('request', () => ++requests === 2 && resolve()))
    b.choke()
    await expect(first).rejects.toMatchObject({ code: 'REQUEST_REJECTED' })
    expect(b.piece(2, 0, Buffer.alloc(16384, 7))).toBe(true)
    expect((await fast)[0]).toBe(7)
    a.destroy()
  })

  it('rejects requests while choking and accepts allowed-fast ones', async () => {
    const { a, b } = await connectedPair({ numPieces: 8 }, { numPieces: 8 })
    b.allowedFast(5)
    await new Promise((resolve) => a.once('allowedFast', resolve))
    const served = new Promise((resolve) => b.once('request', resolve))
    const allowed = a.request(5, 0, 100)
    expect(await served).toEqual({ index: 5, begin: 0, length: 100 })
    b.piece(5, 0, Buffer.alloc(100))
    expect((await allowed).length).toBe(100)
    await expect(a.request(1, 0, 100)).rejects.toMatchObject({ code: 'INVALID_STATE' })
    a.destroy()
  })

  it('cancels a request and drops the late block', async () => {
    const { a, b } = await connectedPair()
    const unchoked = new Promise((resolve) => a.once('unchoke', resolve))
    b.unchoke()
    await unchoked
    const pending = a.request(0, 0, 10)
    const cancelled = new Promise((resolve) => b.once('cancel', resolve))
    await new Promise((resolve) => b.once('request', resolve))
    a.cancel(0, 0, 10)
    await expect(pending).rejects.toMatchObject({ code: 'REQUEST_CANCELLED' })
    expect(await cancelled).toEqual({ index: 0, begin: 0, length: 10 })
    expect(b.piece(0, 0, Buffer.alloc(10))).toBe(false)
    a.destroy()
  })
})

describe('PeerWire ut_metadata', () => {
  const info = Buffer.concat([Buffer.from('d4:name'), randomBytes(40_000), Buffer.from('e')])
  const infoHash = createHash('sha1').update(info).digest()

  it('fetches metadata of several pieces and checks it against the info hash', async () => {
    const { a } = await connectedPair({ infoHash }, { metadata: info })
    expect(await a.fetchMetadata()).toEqual(info)
    a.destroy()
  })

  it('fails with METADATA_HASH_MISMATCH when a piece is corrupt', async () => {
    const bad = Buffer.from(info)
    bad[20_000] = bad[20_000]! ^ 0xff
    const { a } = await connectedPair({ infoHash }, { metadata: bad })
    await expect(a.fetchMetadata()).rejects.toMatchObject({ code: 'METADATA_HASH_MISMATCH' })
    expect(a.isClosed).toBe(false)
    a.destroy()
  })

  it('fails with METADATA_REJECTED when the peer rejects', async () => {
    const { wire, feed } = rawWire({ infoHash })
    feed(
      Buffer.concat([
        encodeHandshake(infoHash, peerId(9), { extended: true, fast: true, dht: false }),
        m.Extended.encode({ extId: 0, payload: encode({ m: { ut_metadata: 3 }, metadata_size: 100 }) }),
      ]),
    )
    const fetching = wire.fetchMetadata()
    await tick()
    feed(m.Extended.encode({ extId: 1, payload: encodeMetadataMessage({ type: 'reject', piece: 0 }) }))
    await expect(fetching).rejects.toMatchObject({ code: 'METADATA_REJECTED' })
    wire.destroy()
  })

  it('refuses metadata_size beyond the limit', async () => {
    const { a } = await connectedPair({ infoHash, maxMetadataBytes: 1000 }, { metadata: info })
    await expect(a.fetchMetadata()).rejects.toMatchObject({ code: 'METADATA_TOO_LARGE' })
    a.destroy()
  })
})

describe('PeerWire timers and flow control', () => {
  it('sends keep-alives, drops an idle peer and a silent handshake', async () => {
    const clock = new ManualClock()
    const { wire, feed, sent } = rawWire({ clock, keepaliveIntervalMs: 30_000, idleTimeoutMs: 90_000 })
    feed(remoteHandshake({ extended: false, fast: false, dht: false }))
    await tick()
    const before = sent.length
    clock.advance(31_000)
    await tick()
    expect(sent.slice(before).some((b) => b.equals(m.KEEPALIVE))).toBe(true)
    clock.advance(60_000)
    expect(await closedWith(wire)).toBe('IDLE_TIMEOUT')

    const silent = rawWire({ clock, handshakeTimeoutMs: 5000 })
    clock.advance(6000)
    expect(await closedWith(silent.wire)).toBe('HANDSHAKE_TIMEOUT')
  })

  it('sends a pipeline refill to the stream as one write, in order', async () => {
    const { wire, feed, sent } = rawWire({ numPieces: 8 })
    feed(Buffer.concat([remoteHandshake({ extended: false, fast: true, dht: false }), m.Unchoke.encode({})]))
    await new Promise((resolve) => wire.once('unchoke', resolve))
    await tick()
    const before = sent.length
    const expected: Buffer[] = []
    for (let i = 0; i < 50; i++) {
      expect(wire.requestBlock(i % 8, Math.floor(i / 8) * 16384, 16384)).toBe(true)
      expected.push(m.Request.encode({ index: i % 8, begin: Math.floor(i / 8) * 16384, length: 16384 }))
    }
    await tick()
    expect(sent.slice(before)).toEqual([Buffer.concat(expected)])
    wire.destroy()
  })

  it('times out a request that gets no answer and cancels it', async () => {
    const clock = new ManualClock()
    const { wire, feed, sent } = rawWire({ clock, requestTimeoutMs: 10_000 })
    feed(Buffer.concat([remoteHandshake({ extended: false, fast: true, dht: false }), m.Unchoke.encode({})]))
    await tick()
    const pending = wire.request(0, 0, 16384)
    clock.advance(11_000)
    await expect(pending).rejects.toMatchObject({ code: 'REQUEST_TIMEOUT' })
    await tick()
    expect(Buffer.concat(sent).includes(m.Cancel.encode({ index: 0, begin: 0, length: 16384 }))).toBe(true)
    wire.destroy()
  })

  it('reports a full send buffer and drains', async () => {
    const [sa, sb] = duplexPair({ highWaterMark: 1024 })
    const a = new PeerWire(sa, { peerId: peerId(1), infoHash: INFO_HASH })
    const b = new PeerWire(sb, { peerId: peerId(2) })
    b.on('handshake', (h) => b.handshake(h.infoHash))
    await new Promise((resolve) => a.once('handshake', resolve))
    b.pause()
    for (let i = 0; i < 5000 && a.writable; i++) a.have(i)
    expect(a.writable).toBe(false)
    const drained = new Promise((resolve) => a.once('drain', resolve))
    b.resume()
    await drained
    expect(a.writable).toBe(true)
    a.destroy()
  })
})

describe('allowedFastSet', () => {
  it('matches the BEP 6 example', () => {
    const hash = Buffer.alloc(20, 0xaa)
    expect(allowedFastSet('80.4.4.200', hash, 1313, 7)).toEqual([1059, 431, 808, 1217, 287, 376, 1188])
    expect(allowedFastSet('80.4.4.200', hash, 1313, 9)).toEqual([
      1059, 431, 808, 1217, 287, 376, 1188, 353, 508,
    ])
  })

  it('is sent by a wire for its peer address', async () => {
    const { a, b } = await connectedPair(
      { numPieces: 1313 },
      { numPieces: 1313, remoteAddress: { host: '80.4.4.1', port: 1 } },
    )
    const got: number[] = []
    a.on('allowedFast', (i) => got.push(i))
    const expected = b.sendAllowedFastSet(3)
    await tick()
    expect(got).toEqual(expected)
    expect(expected).toEqual(allowedFastSet('80.4.4.9', INFO_HASH, 1313, 3))
    a.destroy()
  })
})

it('a PeerWireError carries its code', () => {
  expect(new PeerWireError('CLOSED').code).toBe('CLOSED')
})
