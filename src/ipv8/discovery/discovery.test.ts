import { afterEach, describe, expect, it } from 'vitest'
import type { SocketAddress } from '../../net/index.js'
import {
  type CommunityDeps,
  IntroductionRequestPayload,
  IntroductionResponsePayload,
} from '../community/index.js'
import { type PayloadSchema, signedPacket, verifySigned } from '../serialization/index.js'
import { OverlayTestNetwork } from '../testing/harness.js'
import { DISCOVERY_COMMUNITY_ID, DiscoveryCommunity, PeriodicSimilarity, RandomWalk } from './index.js'

const OTHER = Buffer.from('81ded07332bdc775aa5a46f96de9f8f390bbc9f3', 'hex')
const make = (deps: CommunityDeps, i: number, bootstrap: SocketAddress[]) =>
  new DiscoveryCommunity(deps, {
    bootstrap: { publicNetwork: false, addresses: bootstrap },
    services: () => (i % 2 === 0 ? [OTHER] : []),
  })

let net: OverlayTestNetwork<DiscoveryCommunity> | undefined
afterEach(async () => {
  await net?.stopAll()
  net = undefined
})

describe('DiscoveryCommunity', () => {
  it('exchanges community lists after an introduction', async () => {
    net = await OverlayTestNetwork.create(4, make)
    await net.startAll()
    net.advance(5_000)
    const a = net.node(1).community
    const zero = a.network.getPeer(net.node(0).key.mid)
    expect(zero).toBeDefined()
    if (zero === undefined) return
    expect(a.network.servicesOf(zero).sort()).toEqual(
      [DISCOVERY_COMMUNITY_ID.toString('hex'), OTHER.toString('hex')].sort(),
    )
    expect(a.network.peersForService(OTHER.toString('hex')).map((p) => p.midHex)).toContain(zero.midHex)
  })

  it('keeps answering peers alive with ping/pong and drops silent ones', async () => {
    net = await OverlayTestNetwork.create(
      3,
      (deps) => new DiscoveryCommunity(deps, { strategies: () => [], bootstrap: { publicNetwork: false } }),
    )
    await net.startAll()
    // one walk each to node 0, then nothing but pings keeps the peers alive
    net.node(1).community.walkTo(net.node(0).socket.local)
    net.node(2).community.walkTo(net.node(0).socket.local)
    net.advance(120_000, 250)
    const a = net.node(0).community
    expect(a.network.size).toBe(2)
    expect(a.statistics.messages.get(4)?.packetsIn ?? 0).toBeGreaterThan(0)
    net.memory?.partition(net.node(2).socket.local.host)
    net.advance(70_000, 250)
    expect(a.network.getPeer(net.node(2).key.mid)).toBeUndefined()
    expect(a.network.getPeer(net.node(1).key.mid)).toBeDefined()
  })

  it('introduces the member an old-style request names with "Y" || mid', async () => {
    net = await OverlayTestNetwork.create(
      4,
      (deps) => new DiscoveryCommunity(deps, { strategies: () => [], bootstrap: { publicNetwork: false } }),
    )
    await net.startAll()
    const [a, b, c, r] = [net.node(0), net.node(1), net.node(2), net.node(3)]
    b.community.walkTo(a.socket.local)
    c.community.walkTo(a.socket.local)
    net.advance(100)
    expect(a.community.network.size).toBe(2)
    const responses: Buffer[] = []
    r.socket.onMessage((data) => {
      if (data[22] === IntroductionResponsePayload.msgId) responses.push(data)
    })
    // the request body is preceded by "Y" and the mid of the member to be introduced to
    const introduceTo = (mid: Buffer): PayloadSchema<IntroductionRequestPayload> => ({
      ...IntroductionRequestPayload,
      write: (w, value) => {
        w.bytes(Buffer.concat([Buffer.from('Y'), mid]))
        IntroductionRequestPayload.write(w, value)
      },
    })
    for (let i = 1; i <= 6; i++) {
      const request = signedPacket(
        a.community.prefix,
        introduceTo(c.key.mid),
        {
          destinationAddress: a.socket.local,
          sourceLanAddress: r.socket.local,
          sourceWanAddress: r.socket.local,
          bits: [false, false, false, false, false, false, false, true],
          identifier: i,
          extraBytes: Buffer.alloc(0),
        },
        r.key,
        BigInt(i),
      )
      r.socket.send(request, a.socket.local)
    }
    net.advance(100)
    expect(responses).toHaveLength(6)
    for (const data of responses) {
      const frame = verifySigned(data)
      const response = IntroductionResponsePayload.decode(data, frame.payloadStart, frame.payloadEnd)
      expect(response.lanIntroductionAddress).toEqual(c.socket.local)
    }
    expect(a.community.network.getPeer(r.key.mid)?.address).toEqual(r.socket.local)
  })

  it('asks a random peer for its communities every second (PeriodicSimilarity), by default', async () => {
    const single = await OverlayTestNetwork.create(
      1,
      (deps) => new DiscoveryCommunity(deps, { bootstrap: { publicNetwork: false } }),
    )
    await single.startAll()
    expect(single.node(0).community.strategies.map((s) => s.constructor)).toEqual([
      RandomWalk,
      PeriodicSimilarity,
    ])
    await single.stopAll()

    const services: Buffer[] = []
    net = await OverlayTestNetwork.create(
      2,
      (deps, i) =>
        new DiscoveryCommunity(deps, {
          bootstrap: { publicNetwork: false },
          strategies: (c) => (i === 0 ? [new PeriodicSimilarity(c as DiscoveryCommunity)] : []),
          services: () => (i === 1 ? services : []),
        }),
    )
    await net.startAll()
    const [a, b] = [net.node(0), net.node(1)]
    const requestsOut = () => a.community.statistics.messages.get(1)?.packetsOut ?? 0
    // no peers: nothing to ask
    net.advance(3_000)
    expect(requestsOut()).toBe(0)
    b.community.walkTo(a.socket.local)
    net.advance(100)
    const peer = a.community.network.getPeer(b.key.mid)
    expect(peer).toBeDefined()
    if (peer === undefined) return
    // b starts an overlay later: a learns it without any new introduction
    services.push(OTHER)
    const before = requestsOut()
    net.advance(5_000, 100)
    const sent = requestsOut() - before
    expect(sent).toBeGreaterThanOrEqual(4)
    expect(sent).toBeLessThanOrEqual(6)
    expect(a.community.network.servicesOf(peer)).toContain(OTHER.toString('hex'))
  })
})
