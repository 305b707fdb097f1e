import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { MemoryNetwork, seededRandom } from '../../net/index.js'
import { PrivateKey } from '../keys/index.js'
import { communityPrefix, type PayloadSchema, signedPacket } from '../serialization/index.js'
import { manualTime, OverlayTestNetwork } from '../testing/harness.js'
import {
  ConnectPeerRequestPayload,
  ConnectPeerResponsePayload,
  calcNodeId,
  DHT_COMMUNITY_ID,
  DHTDiscoveryCommunity,
  DhtIntroPointValue,
  DhtNode,
  decodeIntroPoint,
  encodeIntroPoint,
  FindRequestPayload,
  FindResponsePayload,
  MAX_BUCKET_SIZE,
  MAX_STORED_KEYS,
  MAX_VALUES_PER_KEY,
  PingRequestPayload,
  PingResponsePayload,
  RoutingTable,
  StorePeerRequestPayload,
  StorePeerResponsePayload,
  StoreRequestPayload,
  StoreResponsePayload,
  ValueStore,
} from './index.js'

const MID = Buffer.from(Array.from({ length: 20 }, (_, i) => i))

describe('node ids and payloads', () => {
  it('computes node ids from the masked address and the mid as py-ipv8 does', () => {
    // calc_node_id(UDPv4Address('1.2.3.4', 5), bytes(range(20))) and the UDPv6Address('2001:db8::1') one
    expect(calcNodeId({ host: '1.2.3.4', port: 5 }, MID).toString('hex')).toBe(
      'b63cfb000102030405060708090a0b0c0d0e0f10',
    )
    expect(calcNodeId({ host: '2001:db8::1', port: 5 }, MID).toString('hex')).toBe(
      'a3e80e000102030405060708090a0b0c0d0e0f10',
    )
  })

  it('encodes find-request, find-response and intro-point values byte for byte as py-ipv8', () => {
    const key = Buffer.concat([
      Buffer.from('LibNaCLPK:'),
      Buffer.from(Array.from({ length: 64 }, (_, i) => i)),
    ])
    expect(
      FindResponsePayload.encode({
        identifier: 0x01020304,
        token: Buffer.alloc(20, 0xaa),
        values: [Buffer.from('\x00abc', 'latin1'), Buffer.from('\x00de', 'latin1')],
        nodes: [{ address: { host: '10.0.0.1', port: 8090 }, publicKey: key }],
      }).toString('hex'),
    ).toBe(`01020304${'aa'.repeat(20)}02000400616263000300646501010a0000011f9a004a${key.toString('hex')}`)
    expect(
      FindRequestPayload.encode({
        identifier: 7,
        lanAddress: { host: '192.168.1.2', port: 1000 },
        target: Buffer.alloc(20, 0xbb),
        offset: 3,
        forceNodes: true,
      }).toString('hex'),
    ).toBe(`0000000701c0a8010203e8${'bb'.repeat(20)}0000000301`)
    const intro = DhtIntroPointValue.encode({
      address: { host: '1.2.3.4', port: 8090 },
      lastSeen: 1_700_000_000,
      introPk: key.subarray(10),
      seederPk: Buffer.from(Array.from({ length: 64 }, (_, i) => i + 64)),
    })
    expect(intro.subarray(0, 15).toString('hex')).toBe('01010203041f9a6553f10000400001')
    expect(intro.length).toBe(143)
  })

  it('announces introduction points without the key prefix and reads them back', () => {
    const introKey = PrivateKey.generate().publicKey.toBin()
    const seederPk = PrivateKey.generate().publicKey.toBin()
    const value = encodeIntroPoint({
      address: { host: '127.0.0.9', port: 4000 },
      key: introKey,
      seederPk,
      source: 0,
      lastSeen: 42,
    })
    // ip_address (7) + I (4) + 2 × varlenH(64)
    expect(value.length).toBe(7 + 4 + 66 + 66)
    const back = decodeIntroPoint(value)
    expect(back?.key.equals(introKey)).toBe(true)
    expect(back?.seederPk.equals(seederPk)).toBe(true)
    expect(back?.source).toBe(1)
    expect(decodeIntroPoint(value.subarray(0, 50))).toBeUndefined()
  })
})

describe('routing table', () => {
  const nodeAt = (host: string): DhtNode => new DhtNode(PrivateKey.generate().publicKey, { host, port: 1 })

  it('keeps K nodes per bucket, splits only the bucket holding our id, and returns the closest first', () => {
    const me = nodeAt('10.0.0.1')
    const table = new RoutingTable(me.id)
    let added = 0
    for (let i = 0; i < 400; i++) if (table.add(nodeAt(`10.0.${i >> 8}.${i & 255}`), 0) !== undefined) added++
    expect(added).toBe(table.size)
    for (const bucket of table.buckets) expect(bucket.nodes.size).toBeLessThanOrEqual(MAX_BUCKET_SIZE)
    // the buckets are a partition of the id space: one prefix per depth besides ours
    expect(table.buckets.length).toBeGreaterThan(1)
    const depths = table.buckets.map((b) => b.prefix.length).sort((a, b) => a - b)
    expect(new Set(depths.slice(0, -2)).size).toBe(depths.length - 2)
    const target = nodeAt('10.9.9.9').id
    const closest = table.closestNodes(target, 0, 8)
    expect(closest).toHaveLength(8)
    const all = [...table.nodes()].sort((a, b) =>
      Buffer.compare(
        Buffer.from(a.id.map((x, i) => x ^ (target[i] ?? 0))),
        Buffer.from(b.id.map((x, i) => x ^ (target[i] ?? 0))),
      ),
    )
    expect(closest.map((n) => n.idHex)).toEqual(all.slice(0, 8).map((n) => n.idHex))
  })

  it('drops nodes that stopped answering and blocks nodes that ask too much', () => {
    const table = new RoutingTable(nodeAt('10.0.0.1').id)
    const node = table.add(nodeAt('10.0.0.2'), 0) as DhtNode
    node.failed = 2
    expect(table.removeBadNodes(0)).toEqual([node])
    expect(table.size).toBe(0)
    for (let i = 0; i < 9; i++) node.queried(1_000 + i)
    expect(node.blocked(1_010)).toBe(false)
    node.queried(1_010)
    expect(node.blocked(1_010)).toBe(true)
    expect(node.blocked(7_000)).toBe(false)
  })
})

describe('value store', () => {
  it('expires values, keeps the newest version of a signed value and caps keys and values per key', () => {
    const store = new ValueStore()
    const key = Buffer.alloc(20, 1)
    store.put(key, Buffer.from('a'), { nowMs: 0, maxAgeMs: 1_000 })
    expect(store.get(key, 500)).toHaveLength(1)
    expect(store.get(key, 1_001)).toHaveLength(0)
    store.clean(1_001)
    expect(store.size).toBe(0)

    const owner = Buffer.alloc(20, 9)
    expect(store.put(key, Buffer.from('v2'), { nowMs: 0, maxAgeMs: 10_000, id: owner, version: 2 })).toBe(
      'stored',
    )
    expect(store.put(key, Buffer.from('v1'), { nowMs: 0, maxAgeMs: 10_000, id: owner, version: 1 })).toBe(
      'stale',
    )
    expect(store.get(key, 0).map(String)).toEqual(['v2'])

    for (let i = 0; i < MAX_VALUES_PER_KEY + 5; i++)
      store.put(key, Buffer.from(`x${i}`), { nowMs: 0, maxAgeMs: 10_000 })
    expect(store.get(key, 0)).toHaveLength(MAX_VALUES_PER_KEY)
    expect(store.get(key, 0)[0]?.toString()).toBe(`x${MAX_VALUES_PER_KEY + 4}`)

    const full = new ValueStore()
    for (let i = 0; i < MAX_STORED_KEYS; i++) {
      const k = Buffer.alloc(20)
      k.writeUInt32BE(i)
      full.put(k, Buffer.from('v'), { nowMs: 0, maxAgeMs: 1_000 })
    }
    expect(full.put(Buffer.alloc(20, 0xff), Buffer.from('v'), { nowMs: 10, maxAgeMs: 1_000 })).toBe('full')
    // once the old ones expired there is room again
    expect(full.put(Buffer.alloc(20, 0xff), Buffer.from('v'), { nowMs: 2_000, maxAgeMs: 1_000 })).toBe(
      'stored',
    )
    expect(full.keys).toBe(1)
  })

  it('keeps a copy of a value, never the buffer a received value is a view into', () => {
    // a received datagram is a view into its receive batch (up to 32 x 64 KiB): a kept view would hold it all
    const batch = Buffer.alloc(2 * 1024 * 1024, 7)
    const value = batch.subarray(1_000, 1_010)
    const store = new ValueStore()
    const key = Buffer.alloc(20, 3)
    expect(store.put(key, value, { nowMs: 0, maxAgeMs: 1_000 })).toBe('stored')
    batch.fill(0)
    const [kept] = store.get(key, 0)
    expect(kept).toEqual(Buffer.alloc(10, 7))
    expect(kept?.buffer.byteLength).toBeLessThan(64 * 1024)
  })
})

interface DhtScenario {
  net: OverlayTestNetwork<DHTDiscoveryCommunity>
  clock: ManualClock
  run(ms: number, stepMs?: number): Promise<void>
  settle<T>(promise: Promise<T>, maxMs?: number): Promise<T>
}

let scenario: DhtScenario | undefined
afterEach(async () => {
  await scenario?.net.stopAll()
  scenario = undefined
})

async function dhtNetwork(count: number): Promise<DhtScenario> {
  const clock = new ManualClock()
  const memory = new MemoryNetwork({ clock, latencyMs: 5, seed: 3 })
  const net = await OverlayTestNetwork.create(
    count,
    (deps, _i, bootstrap) =>
      new DHTDiscoveryCommunity(deps, { bootstrap: { publicNetwork: false, addresses: bootstrap } }),
    { transport: memory, clock },
  )
  const { run, settle } = manualTime(clock)
  await net.startAll()
  scenario = { net, clock, run, settle }
  // walk until every routing table holds most of the network
  for (let i = 0; i < 60; i++) {
    await run(1_000)
    if (net.nodes.every((n) => (n.community.routingTables[0]?.size ?? 0) >= Math.min(count - 1, 10))) break
  }
  return scenario
}

describe('a DHT of 20 nodes on the in-memory network', () => {
  it('stores a value on the nodes closest to its key and finds it from anywhere', async () => {
    const s = await dhtNetwork(20)
    const key = Buffer.alloc(20, 0x42)
    const stored = await s.settle(s.net.node(5).community.storeValue(key, Buffer.from('hello dht')))
    expect(stored.length).toBeGreaterThan(0)
    for (const i of [0, 11, 19]) {
      const values = await s.settle(s.net.node(i).community.findValues(key))
      expect(values.map((v) => v.data.toString())).toContain('hello dht')
    }
    // the storers are among the nodes closest to the key
    const byDistance = s.net.nodes
      .map((n) => n.community)
      .sort((a, b) =>
        Buffer.compare(
          Buffer.from(a.myNodeId().map((x, i) => x ^ (key[i] ?? 0))),
          Buffer.from(b.myNodeId().map((x, i) => x ^ (key[i] ?? 0))),
        ),
      )
    const closest = new Set(byDistance.slice(0, 12).map((c) => c.myMid.toString('hex')))
    for (const node of stored) expect(closest.has(node.mid.toString('hex'))).toBe(true)
    // a signed value comes back with its signer's key
    const signer = s.net.node(7).community
    await s.settle(signer.storeValue(Buffer.alloc(20, 0x43), Buffer.from('signed'), { sign: true }))
    const signed = await s.settle(s.net.node(2).community.findValues(Buffer.alloc(20, 0x43)))
    expect(signed.map((v) => v.publicKey?.equals(signer.myKey.publicKey.toBin()))).toContain(true)
    // a key nobody stored finds nothing
    expect(await s.settle(s.net.node(3).community.findValues(Buffer.alloc(20, 0x77)))).toEqual([])
    for (const n of s.net.nodes) expect(n.community.statistics.dropped.handlerError).toBe(0)
  }, 120_000)

  it('forgets values once they expire', async () => {
    const s = await dhtNetwork(8)
    const key = Buffer.alloc(20, 0x51)
    await s.settle(s.net.node(1).community.storeValue(key, Buffer.from('short lived')))
    expect((await s.settle(s.net.node(6).community.findValues(key))).length).toBe(1)
    // an hour and a bit later (no one stores it again)
    await s.run(3_700_000, 10_000)
    expect(await s.settle(s.net.node(6).community.findValues(key))).toEqual([])
    const kept = s.net.nodes.reduce((n, node) => n + node.community.dhtStatistics().valuesInStore, 0)
    expect(kept).toBe(0)
  }, 180_000)

  it('stores peers under their mid and connects to them', async () => {
    const s = await dhtNetwork(12)
    const a = s.net.node(4).community
    const storing = await s.settle(a.storePeer())
    expect(storing.length).toBeGreaterThan(0)
    expect(a.storingUs.length).toBe(storing.length)
    const found = await s.settle(s.net.node(9).community.connectPeer(a.myMid))
    expect(found.some((n) => n.mid.equals(a.myMid))).toBe(true)
  }, 120_000)

  it('survives fuzzed messages of every DHT type, validly signed, and keeps working', async () => {
    const s = await dhtNetwork(3)
    const target = s.net.node(1)
    const source = s.net.node(2)
    const prefix = communityPrefix(DHT_COMMUNITY_ID)
    const random = seededRandom(99)
    const byte = (): number => Math.floor(random() * 256)
    const node = { address: { host: '127.0.0.9', port: 9 }, publicKey: source.key.publicKey.toBin() }
    const samples: Array<[PayloadSchema<never>, unknown]> = [
      [PingRequestPayload, { identifier: 1 }],
      [PingResponsePayload, { identifier: 2 }],
      [StoreRequestPayload, { identifier: 3, token: Buffer.alloc(20), target: Buffer.alloc(20), values: [] }],
      [StoreResponsePayload, { identifier: 4 }],
      [
        FindRequestPayload,
        { identifier: 5, lanAddress: node.address, target: Buffer.alloc(20), offset: 0, forceNodes: true },
      ],
      [
        FindResponsePayload,
        { identifier: 6, token: Buffer.alloc(20), values: [Buffer.from([0, 1])], nodes: [node] },
      ],
      [StorePeerRequestPayload, { identifier: 7, token: Buffer.alloc(20), target: Buffer.alloc(20) }],
      [StorePeerResponsePayload, { identifier: 8 }],
      [ConnectPeerRequestPayload, { identifier: 9, lanAddress: node.address, target: Buffer.alloc(20) }],
      [ConnectPeerResponsePayload, { identifier: 10, nodes: [node, node] }],
    ] as never
    const header = 23 + 2 + 74
    for (let i = 0; i < 600; i++) {
      const [schema, value] = samples[i % samples.length] as [PayloadSchema<never>, never]
      const body = Buffer.from(schema.encode(value))
      // flip, cut or extend the body, then sign what is left so only the payload is wrong
      const mutated = Buffer.from(body)
      for (let k = 0; k < 1 + (i % 4); k++) if (mutated.length > 0) mutated[byte() % mutated.length] = byte()
      const cut = i % 3 === 0 ? mutated.subarray(0, byte() % (mutated.length + 1)) : mutated
      const grown = i % 5 === 0 ? Buffer.concat([cut, Buffer.from([byte(), byte()])]) : cut
      const unsigned = Buffer.concat([
        prefix,
        Buffer.from([schema.msgId, 0, 74]),
        source.key.publicKey.toBin(),
        grown,
      ])
      expect(unsigned.length).toBe(header + grown.length)
      source.socket.send(Buffer.concat([unsigned, source.key.sign(unsigned)]), target.socket.local)
      if (i % 50 === 49) await s.run(200)
    }
    await s.run(2_000)
    expect(target.community.statistics.dropped.handlerError).toBe(0)
    expect(target.community.statistics.dropped.malformed).toBeGreaterThan(0)
    // still a working node
    const key = Buffer.alloc(20, 0x66)
    await s.settle(s.net.node(0).community.storeValue(key, Buffer.from('after the fuzz')))
    const values = await s.settle(target.community.findValues(key))
    expect(values.map((v) => v.data.toString())).toContain('after the fuzz')
  }, 120_000)

  it('drops and counts malformed, forged and token-less messages', async () => {
    const s = await dhtNetwork(3)
    const target = s.net.node(1)
    const source = s.net.node(2)
    const prefix = communityPrefix(DHT_COMMUNITY_ID)
    const before = target.community.statistics.dropped
    // truncated
    source.socket.send(Buffer.concat([prefix, Buffer.from([5, 0, 1])]), target.socket.local)
    // a find-request signed with a key other than the one it names
    const forged = signedPacket(
      prefix,
      FindRequestPayload,
      {
        identifier: 1,
        lanAddress: source.socket.local,
        target: Buffer.alloc(20),
        offset: 0,
        forceNodes: false,
      },
      source.key,
      undefined,
    )
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1
    source.socket.send(forged, target.socket.local)
    // a store-request with a made-up token
    source.socket.send(
      signedPacket(
        prefix,
        StoreRequestPayload,
        {
          identifier: 2,
          token: Buffer.alloc(20, 1),
          target: Buffer.alloc(20),
          values: [Buffer.from([0, 1])],
        },
        source.key,
        undefined,
      ),
      target.socket.local,
    )
    // a store-request with an oversized value
    source.socket.send(
      signedPacket(
        prefix,
        StoreRequestPayload,
        { identifier: 3, token: Buffer.alloc(20, 1), target: Buffer.alloc(20), values: [Buffer.alloc(171)] },
        source.key,
        undefined,
      ),
      target.socket.local,
    )
    await s.run(1_000)
    const after = target.community.statistics.dropped
    expect(after.malformed).toBe(before.malformed + 1)
    expect(after.badSignature).toBe(before.badSignature + 1)
    expect(target.community.dhtDrops.badToken).toBe(1)
    expect(target.community.dhtDrops.badValue).toBe(1)
    expect(target.community.dhtStatistics().valuesInStore).toBe(0)
    expect(after.handlerError).toBe(0)
  }, 60_000)
})
