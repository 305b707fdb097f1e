import { afterEach, describe, expect, it } from 'vitest'
import type { SocketAddress } from '../../net/index.js'
import { RandomWalk } from '../discovery/index.js'
import { type PayloadSchema, signedPacket, unsignedPacket, verifySigned } from '../serialization/index.js'
import { OverlayTestNetwork, type TestNode } from '../testing/harness.js'
import {
  Community,
  type CommunityDeps,
  type CommunitySettings,
  IntroductionRequestPayload,
  IntroductionResponsePayload,
  NewIntroductionRequestPayload,
  NewIntroductionResponsePayload,
  NewPuncturePayload,
  NewPunctureRequestPayload,
  PuncturePayload,
  PunctureRequestPayload,
} from './index.js'

const ID = Buffer.from('0badc0de0badc0de0badc0de0badc0de0badc0de', 'hex')
const NO_BITS = [false, false, false, false, false, false, false, false]

const make =
  (settings: CommunitySettings = {}) =>
  (deps: CommunityDeps, _i: number, bootstrap: SocketAddress[]) =>
    new Community(deps, ID, { bootstrap: { publicNetwork: false, addresses: bootstrap }, ...settings })

let net: OverlayTestNetwork<Community> | undefined
afterEach(async () => {
  await net?.stopAll()
  net = undefined
})

/** Every datagram that reaches a node, by message id. */
function inbox(node: TestNode<Community>): Map<number, Buffer[]> {
  const got = new Map<number, Buffer[]>()
  node.socket.onMessage((data) => {
    const id = data[22] ?? -1
    got.set(id, [...(got.get(id) ?? []), data])
  })
  return got
}

function decodeSigned<T>(schema: PayloadSchema<T>, data: Buffer): T {
  const frame = verifySigned(data)
  return schema.decode(data, frame.payloadStart, frame.payloadEnd)
}

function oldRequest(from: TestNode<Community>, to: TestNode<Community>, identifier: number): Buffer {
  return signedPacket(
    to.community.prefix,
    IntroductionRequestPayload,
    {
      destinationAddress: to.socket.local,
      sourceLanAddress: from.socket.local,
      sourceWanAddress: from.socket.local,
      bits: [false, false, false, false, false, false, false, true],
      identifier,
      extraBytes: Buffer.alloc(0),
    },
    from.key,
    BigInt(identifier),
  )
}

describe('puncture-request and puncture', () => {
  it('punctures towards the WAN walker, or the LAN walker when the walker shares our WAN address', async () => {
    net = await OverlayTestNetwork.create(3, make({ strategies: () => [] }))
    await net.startAll()
    const [a, b, c] = [net.node(0), net.node(1), net.node(2)]
    const atC = inbox(c)
    const elsewhere = { host: '127.0.0.99', port: 9 }
    // b (an introducer) asks a to puncture towards c, whose WAN address is c's socket
    const request = unsignedPacket(
      a.community.prefix,
      PunctureRequestPayload,
      { lanWalkerAddress: elsewhere, wanWalkerAddress: c.socket.local, identifier: 7 },
      1n,
    )
    b.socket.send(request, a.socket.local)
    net.advance(50)
    const [first] = atC.get(PuncturePayload.msgId) ?? []
    expect(first).toBeDefined()
    expect(verifySigned(first as Buffer).publicKey.equals(a.key.publicKey)).toBe(true)
    expect(decodeSigned(PuncturePayload, first as Buffer)).toEqual({
      sourceLanAddress: a.socket.local,
      sourceWanAddress: c.socket.local,
      identifier: 7,
    })
    // a walker behind the same WAN address as a is reached on its LAN address
    const sameWan = { host: a.community.myWanAddress.host, port: 4321 }
    b.socket.send(
      unsignedPacket(
        a.community.prefix,
        PunctureRequestPayload,
        { lanWalkerAddress: c.socket.local, wanWalkerAddress: sameWan, identifier: 8 },
        2n,
      ),
      a.socket.local,
    )
    // new style: a new-style puncture
    b.socket.send(
      unsignedPacket(
        a.community.prefix,
        NewPunctureRequestPayload,
        { lanWalkerAddress: elsewhere, wanWalkerAddress: c.socket.local, identifier: 9 },
        3n,
      ),
      a.socket.local,
    )
    net.advance(50)
    const old = (atC.get(PuncturePayload.msgId) ?? []).map((p) => decodeSigned(PuncturePayload, p))
    expect(old.map((p) => p.identifier)).toEqual([7, 8])
    expect(old[1]?.sourceWanAddress).toEqual(sameWan)
    const fresh = (atC.get(NewPuncturePayload.msgId) ?? []).map((p) => decodeSigned(NewPuncturePayload, p))
    expect(fresh.map((p) => p.identifier)).toEqual([9])
    // a puncture refreshes a known peer and nothing else
    expect(c.community.statistics.dropped).toMatchObject({ malformed: 0, badSignature: 0 })
  })
})

describe('introductions', () => {
  it('answers old-style requests with IPv4 introductions only, new-style ones with any address', async () => {
    const hosts = ['127.0.0.1', '::1', '127.0.0.3']
    net = await OverlayTestNetwork.create(3, make({ strategies: () => [] }), {
      hostOf: (i) => hosts[i] as string,
    })
    await net.startAll()
    const [a, v6, r] = [net.node(0), net.node(1), net.node(2)]
    v6.community.walkTo(a.socket.local)
    net.advance(50)
    expect(a.community.network.getPeer(v6.key.mid)?.address).toEqual(v6.socket.local)
    const atR = inbox(r)
    const atV6 = inbox(v6)
    for (let i = 1; i <= 5; i++) r.socket.send(oldRequest(r, a, i), a.socket.local)
    net.advance(50)
    const responses = (atR.get(IntroductionResponsePayload.msgId) ?? []).map((p) =>
      decodeSigned(IntroductionResponsePayload, p),
    )
    expect(responses.map((p) => p.identifier)).toEqual([1, 2, 3, 4, 5])
    for (const response of responses) {
      expect(response.lanIntroductionAddress).toEqual({ host: '0.0.0.0', port: 0 })
      expect(response.wanIntroductionAddress).toEqual({ host: '0.0.0.0', port: 0 })
    }
    // nobody was introduced, so nobody was asked to puncture
    expect(atV6.get(PunctureRequestPayload.msgId)).toBeUndefined()
    expect(atV6.get(NewPunctureRequestPayload.msgId)).toBeUndefined()

    const newRequest = signedPacket(
      a.community.prefix,
      NewIntroductionRequestPayload,
      {
        destinationAddress: a.socket.local,
        sourceLanAddress: r.socket.local,
        sourceWanAddress: r.socket.local,
        identifier: 6,
        bits: NO_BITS,
        extraBytes: Buffer.alloc(0),
      },
      r.key,
      6n,
    )
    r.socket.send(newRequest, a.socket.local)
    net.advance(50)
    const [fresh] = (atR.get(NewIntroductionResponsePayload.msgId) ?? []).map((p) =>
      decodeSigned(NewIntroductionResponsePayload, p),
    )
    expect(fresh?.identifier).toBe(6)
    expect([fresh?.lanIntroductionAddress, fresh?.wanIntroductionAddress]).toContainEqual(v6.socket.local)
    // the introduced peer is asked to puncture towards r, in the style it speaks
    const punctureRequests = [
      ...(atV6.get(PunctureRequestPayload.msgId) ?? []),
      ...(atV6.get(NewPunctureRequestPayload.msgId) ?? []),
    ]
    expect(punctureRequests).toHaveLength(1)
  })

  it('never takes its own reflected request for a peer', async () => {
    net = await OverlayTestNetwork.create(2, make({ strategies: () => [] }))
    await net.startAll()
    const [a, b] = [net.node(0), net.node(1)]
    // a request signed by a itself arrives from b's address (a reflection, or a replay)
    b.socket.send(oldRequest(a, a, 1), a.socket.local)
    net.advance(50)
    expect(a.community.network.getPeer(a.key.mid)).toBeUndefined()
    expect(a.community.network.size).toBe(0)
  })
})

describe('RandomWalk', () => {
  it('keeps at most window-size requests unanswered and waits while the window is full', async () => {
    net = await OverlayTestNetwork.create(
      2,
      make({
        strategies: (c) => [new RandomWalk(c, { windowSize: 2, timeoutMs: 3_000, resetChance: 0 })],
        walkIntervalMs: 500,
      }),
    )
    await net.startAll()
    net.advance(1_000)
    const walker = net.node(1).community
    expect(walker.network.getPeer(net.node(0).key.mid)).toBeDefined()
    for (let i = 0; i < 10; i++)
      walker.network.discoverAddress(undefined, { host: '127.0.0.200', port: i + 1 }, false, 0)
    const requestsOut = (): number =>
      (walker.statistics.messages.get(IntroductionRequestPayload.msgId)?.packetsOut ?? 0) +
      (walker.statistics.messages.get(NewIntroductionRequestPayload.msgId)?.packetsOut ?? 0)
    const before = requestsOut()
    // five ticks: two walks fill the window, then it waits (no request to the known peer either)
    net.advance(2_500, 500)
    expect(requestsOut() - before).toBe(2)
    expect(walker.network.walkableAddresses).toHaveLength(10)
    // once they time out they are forgotten and the next two go out
    net.advance(3_000, 500)
    expect(walker.network.walkableAddresses).toHaveLength(8)
    expect(requestsOut() - before).toBe(4)
  })
})
