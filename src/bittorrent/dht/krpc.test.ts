import { describe, expect, it } from 'vitest'
import { encode } from '../../bencode/index.js'
import { MemoryNetwork, seededRandom } from '../../net/index.js'
import { decodeKrpc, Krpc } from './krpc.js'
import { DhtError } from './types.js'

const ID = Buffer.alloc(20, 1)

describe('KRPC', () => {
  it('decodes queries, responses and errors', () => {
    expect(decodeKrpc(encode({ t: 'aa', y: 'q', q: 'ping', a: { id: ID } }))).toMatchObject({
      kind: 'query',
      method: 'ping',
      senderId: ID,
      readOnly: false,
    })
    expect(decodeKrpc(encode({ t: 'aa', y: 'r', r: { id: ID } }))).toMatchObject({
      kind: 'response',
      senderId: ID,
    })
    expect(decodeKrpc(encode({ t: 'aa', y: 'e', e: [201, 'A Generic Error Ocurred'] }))).toMatchObject({
      kind: 'error',
      errorCode: 201,
      reason: 'A Generic Error Ocurred',
    })
  })

  it('rejects messages without a 20-byte id or transaction id', () => {
    const bad = [
      encode({ t: 'aa', y: 'q', q: 'ping', a: { id: Buffer.alloc(19) } }),
      encode({ y: 'r', r: { id: ID } }),
      encode({ t: 'aa', y: 'x' }),
      encode([1, 2]),
      Buffer.from('d1:t'),
    ]
    for (const packet of bad)
      expect(() => decodeKrpc(packet)).toThrow(expect.objectContaining({ code: 'INVALID_MESSAGE' }))
  })

  it('matches responses to queries and times out unanswered ones', async () => {
    const net = new MemoryNetwork()
    // answered queries get a timeout a loaded machine cannot reach; the unanswered one a short one of its own
    const a = new Krpc({ socket: await net.bind({ host: '10.0.0.1' }) }, { queryTimeoutMs: 10_000 })
    const quick = new Krpc({ socket: await net.bind({ host: '10.0.0.3' }) }, { queryTimeoutMs: 50 })
    const bSocket = await net.bind({ host: '10.0.0.2' })
    const b = new Krpc({ socket: bSocket })
    b.onQuery = (query) =>
      query.method === 'ping' ? { values: { id: Buffer.alloc(20, 2) } } : { error: 204, reason: 'no' }
    const { response } = await a.query(bSocket.local, 'ping', { id: ID })
    expect(response.senderId).toEqual(Buffer.alloc(20, 2))
    await expect(a.query(bSocket.local, 'vote', { id: ID })).rejects.toMatchObject({
      code: 'ERROR_REPLY',
      details: { errorCode: 204 },
    })
    await expect(quick.query({ host: '10.0.0.9', port: 1 }, 'ping', { id: ID })).rejects.toMatchObject({
      code: 'TIMEOUT',
    })
    quick.close()
    a.close()
    b.close()
  })

  it('drops and counts garbage and floods, without answering', async () => {
    const net = new MemoryNetwork()
    const socket = await net.bind({ host: '10.0.0.1' })
    const krpc = new Krpc({ socket }, { maxQueriesPerSecPerAddress: 5 })
    let answered = 0
    krpc.onQuery = () => {
      answered += 1
      return { values: { id: ID } }
    }
    const from = { host: '10.0.0.66', port: 1 }
    expect(krpc.handleDatagram(Buffer.from('d1:xi1ee'), from)).toBe(true)
    expect(krpc.handleDatagram(Buffer.from([0x41, 0x00]), from)).toBe(false)
    for (let i = 0; i < 20; i++)
      krpc.handleDatagram(encode({ t: 'ab', y: 'q', q: 'ping', a: { id: ID } }), from)
    expect(answered).toBe(5)
    expect(krpc.stats.rateLimited).toBe(15)
    expect(krpc.stats.invalidPackets).toBe(1)
    krpc.handleDatagram(encode({ t: 'zz', y: 'r', r: { id: ID } }), from)
    expect(krpc.stats.invalidPackets).toBe(2)
    krpc.close()
  })

  it('fails only with DhtError on mutated packets', () => {
    const random = seededRandom(5)
    const seeds = [
      encode({ t: 'aa', y: 'q', q: 'get_peers', a: { id: ID, info_hash: ID } }),
      encode({
        t: 'aa',
        y: 'r',
        r: { id: ID, nodes: Buffer.alloc(52, 3), token: 'tok', values: [Buffer.alloc(6)] },
      }),
      encode({ t: 'aa', y: 'e', e: [203, 'bad'] }),
    ]
    for (let i = 0; i < 5000; i++) {
      const packet = Buffer.from(seeds[i % seeds.length]!)
      const edits = 1 + Math.floor(random() * 3)
      for (let e = 0; e < edits; e++)
        packet[Math.floor(random() * packet.length)] = Math.floor(random() * 256)
      const cut = random() < 0.3 ? packet.subarray(0, Math.floor(random() * packet.length)) : packet
      try {
        decodeKrpc(cut)
      } catch (err) {
        expect(err).toBeInstanceOf(DhtError)
      }
    }
  })
})
