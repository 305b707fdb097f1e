import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type DatagramSocket, MemoryNetwork, type SocketAddress } from '../../net/index.js'
import { PrivateKey } from '../keys/index.js'
import { deriveSessionKeys } from './crypto.js'
import { ExitSocket, exitAllows } from './exit-socket.js'
import {
  PEER_FLAG_EXIT_BT,
  PEER_FLAG_EXIT_IPV8,
  PEER_FLAG_RELAY,
  PEER_FLAG_SPEED_TEST,
  TUNNEL_COMMUNITY_ID,
} from './types.js'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s/g, ''), 'hex')
/** A 22-byte community prefix: 0x00, version, community id. */
const prefixOf = (version: number, id: Buffer): Buffer => Buffer.concat([Buffer.from([0, version]), id])
const OWN_PREFIX = prefixOf(2, TUNNEL_COMMUNITY_ID)
const OTHER_ID = Buffer.from('5ad767b05ae592a02488272ca2a86b847d4562e1', 'hex')

/** A uTP header (BEP 29): type and version, extension, then 18 bytes with a non-zero timestamp difference. */
const utp = (type: number, extension = 0, version = 1): Buffer =>
  Buffer.concat([
    Buffer.from([(type << 4) | version, extension]),
    hex('3039 5f5e1000 00ffff00 00100000 0001 0000'),
  ])

const EXIT_FLAGS = [PEER_FLAG_RELAY, PEER_FLAG_EXIT_BT, PEER_FLAG_EXIT_IPV8, PEER_FLAG_SPEED_TEST]
const RELAY_FLAGS = [PEER_FLAG_RELAY, PEER_FLAG_SPEED_TEST]
const BT_EXIT_FLAGS = [PEER_FLAG_RELAY, PEER_FLAG_EXIT_BT]

/** Datagrams an exit forwards, by kind (spec §7.6). */
const BITTORRENT: [string, Buffer][] = [
  ['uTP ST_DATA', utp(0)],
  ['uTP ST_FIN', utp(1)],
  ['uTP ST_STATE with selective ack', utp(2, 1)],
  ['uTP ST_RESET', utp(3)],
  ['uTP ST_SYN', utp(4)],
  ['uTP with the close-reason extension', utp(0, 3)],
  ['UDP tracker connect request', hex('0000041727101980 00000000 c0ffee01')],
  ['UDP tracker connect response', hex('00000000 c0ffee01 0123456789abcdef')],
  [
    'UDP tracker announce request',
    Buffer.concat([hex('0123456789abcdef 00000001 c0ffee02'), Buffer.alloc(82, 0x5a)]),
  ],
  ['UDP tracker announce response', hex('00000001 c0ffee02 00000708 00000001 00000002 7f000001 1ae1')],
  ['UDP tracker scrape request', Buffer.concat([hex('0123456789abcdef 00000002 c0ffee03'), randomBytes(20)])],
  ['UDP tracker error', Buffer.concat([hex('00000003 c0ffee04'), Buffer.from('unknown torrent')])],
  ['DHT ping query', Buffer.from('d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe')],
  ['DHT response', Buffer.from('d1:rd2:id20:bbbbbbbbbbbbbbbbbbbbe1:t2:aa1:y1:re')],
]

/** IPv8 packets of some other community, of both wire versions. */
const IPV8: [string, Buffer][] = [
  ['IPv8 (version 2) of another community', Buffer.concat([prefixOf(2, OTHER_ID), Buffer.from([246, 1, 2])])],
  ['IPv8 (version 1) of another community', Buffer.concat([prefixOf(1, OTHER_ID), Buffer.from([246])])],
]

const OWN: Buffer = Buffer.concat([OWN_PREFIX, Buffer.from([13, 0, 1, 2, 3])])

/** Datagrams no exit forwards. */
const REFUSED: [string, Buffer][] = [
  ['an empty datagram', Buffer.alloc(0)],
  ['a lone "d"', Buffer.from('d')],
  ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: example.org\r\n\r\n')],
  ['a TLS record', Buffer.concat([hex('160301 00c8 01 0000c4 0303'), Buffer.alloc(40, 0xee)])],
  ['a QUIC long header', Buffer.concat([hex('c3 00000001 08'), Buffer.alloc(40, 0xee)])],
  ['uTP version 2', Buffer.concat([Buffer.from([0x42, 0]), Buffer.alloc(18, 0xff)])],
  ['uTP type 5', Buffer.concat([Buffer.from([0x51, 0]), Buffer.alloc(18, 0xff)])],
  ['uTP extension 4', Buffer.concat([Buffer.from([0x41, 4]), Buffer.alloc(18, 0xff)])],
  ['uTP of 19 bytes', Buffer.concat([Buffer.from([0x41, 0]), Buffer.alloc(17, 0xff)])],
  ['a UDP tracker action 4', hex('00000004 c0ffee05')],
  ['a UDP tracker header of 7 bytes', hex('00000000 c0ffee')],
  ['a bencoded list', Buffer.from('l4:spame')],
  ['IPv8 of an unknown version', Buffer.concat([prefixOf(3, OTHER_ID), Buffer.from([246])])],
  ['IPv8 of 22 bytes', prefixOf(2, OTHER_ID)],
]

describe('exitAllows (the exit policy)', () => {
  for (const [kind, data] of [...BITTORRENT, ...IPV8, ['IPv8 of the tunnel community', OWN] as const]) {
    it(`lets an exit forward ${kind}`, () => {
      expect(exitAllows(data, EXIT_FLAGS, OWN_PREFIX)).toBe(true)
    })
  }

  for (const [kind, data] of REFUSED) {
    it(`refuses ${kind} on an exit`, () => {
      expect(exitAllows(data, EXIT_FLAGS, OWN_PREFIX)).toBe(false)
    })
  }

  for (const [kind, data] of [...BITTORRENT, ...IPV8]) {
    it(`refuses ${kind} on a node that is no exit`, () => {
      expect(exitAllows(data, RELAY_FLAGS, OWN_PREFIX)).toBe(false)
    })
  }

  it("lets a node that is no exit carry the tunnel community's own packets (hidden services use them)", () => {
    expect(exitAllows(OWN, RELAY_FLAGS, OWN_PREFIX)).toBe(true)
  })

  it('refuses other IPv8 traffic on an exit for BitTorrent only, and BitTorrent on one for IPv8 only', () => {
    for (const [, data] of IPV8) expect(exitAllows(data, BT_EXIT_FLAGS, OWN_PREFIX)).toBe(false)
    for (const [, data] of BITTORRENT) expect(exitAllows(data, BT_EXIT_FLAGS, OWN_PREFIX)).toBe(true)
    const ipv8Only = [PEER_FLAG_RELAY, PEER_FLAG_EXIT_IPV8]
    for (const [, data] of BITTORRENT) expect(exitAllows(data, ipv8Only, OWN_PREFIX)).toBe(false)
    for (const [, data] of IPV8) expect(exitAllows(data, ipv8Only, OWN_PREFIX)).toBe(true)
  })

  it('checks only a few header bytes, as py-ipv8 does: a DNS query passes as a UDP tracker message', () => {
    // bytes 8–11 of a DNS header are its authority and additional record counts, usually 0 and 0 or 1
    const dnsQuery = Buffer.concat([
      hex('abcd 0100 0001 0000 0000 0001'),
      Buffer.from('\x07example\x03org\x00'),
    ])
    expect(exitAllows(dnsQuery, EXIT_FLAGS, OWN_PREFIX)).toBe(true)
  })
})

describe('ExitSocket', () => {
  const open: { close(): Promise<void> }[] = []
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close()
  })

  async function scenario() {
    const network = new MemoryNetwork()
    const tunnelled: { data: Buffer; origin: SocketAddress }[] = []
    let refused = 0
    let unresolved = 0
    const lookups: string[] = []
    const exit = new ExitSocket(
      7,
      { host: '127.0.0.2', port: 9000 },
      PrivateKey.generate().publicKey,
      deriveSessionKeys(randomBytes(64)),
      {
        transport: network,
        bindHost: '127.0.0.3',
        lookup: async (host) => {
          lookups.push(host)
          if (host === 'peer.example') return ['::9', '127.0.0.9']
          throw new Error(`ENOTFOUND ${host}`)
        },
        isAllowed: (data) => exitAllows(data, EXIT_FLAGS, OWN_PREFIX),
        tunnel: (_exit, data, origin) => tunnelled.push({ data, origin }),
        refused: () => {
          refused += 1
        },
        unresolved: () => {
          unresolved += 1
        },
        now: () => Date.now(),
      },
    )
    open.push(exit)
    const peer: DatagramSocket = await network.bind({ host: '127.0.0.9', port: 6881 })
    open.push(peer)
    const received: { data: Buffer; from: SocketAddress }[] = []
    peer.onMessage((data, from) => received.push({ data, from }))
    return {
      exit,
      peer,
      received,
      tunnelled,
      lookups,
      memory: network,
      refused: () => refused,
      unresolved: () => unresolved,
    }
  }

  it('sends nothing before the first data from the previous hop enables it', async () => {
    const s = await scenario()
    s.exit.sendTo(utp(4), s.peer.local)
    expect(s.exit.bytesUp).toBe(0)
    expect(s.refused()).toBe(0)
  })

  it('forwards every allowed kind from its own address and counts the bytes sent', async () => {
    const s = await scenario()
    s.exit.enable()
    const allowed = [...BITTORRENT, ...IPV8].map(([, data]) => data)
    // up to ten datagrams wait while the socket opens
    const [first, ...rest] = allowed
    s.exit.sendTo(first as Buffer, s.peer.local)
    await vi.waitFor(() => expect(s.received).toHaveLength(1), { timeout: 5_000 })
    for (const data of rest) s.exit.sendTo(data, s.peer.local)
    await vi.waitFor(() => expect(s.received).toHaveLength(allowed.length), { timeout: 5_000 })
    expect(s.received.map((r) => r.data.toString('hex')).sort()).toEqual(
      allowed.map((d) => d.toString('hex')).sort(),
    )
    expect(new Set(s.received.map((r) => r.from.host))).toEqual(new Set(['127.0.0.3']))
    expect(s.exit.bytesUp).toBe(allowed.reduce((n, d) => n + d.length, 0))
    expect(s.refused()).toBe(0)
  })

  it('drops and counts every refused kind, leaving the byte counter alone', async () => {
    const s = await scenario()
    s.exit.enable()
    s.exit.sendTo(utp(4), s.peer.local)
    await vi.waitFor(() => expect(s.received).toHaveLength(1), { timeout: 5_000 })
    const before = s.exit.bytesUp
    for (const [, data] of REFUSED) s.exit.sendTo(data, s.peer.local)
    s.exit.sendTo(utp(0), s.peer.local)
    await vi.waitFor(() => expect(s.received).toHaveLength(2), { timeout: 5_000 })
    expect(s.refused()).toBe(REFUSED.length)
    expect(s.exit.bytesUp).toBe(before + utp(0).length)
  })

  it('tunnels allowed replies back with their origin and drops refused ones, counting all bytes received', async () => {
    const s = await scenario()
    s.exit.enable()
    s.exit.sendTo(utp(4), s.peer.local)
    await vi.waitFor(() => expect(s.received).toHaveLength(1), { timeout: 5_000 })
    const exitAddress = s.received[0]?.from as SocketAddress
    const replies = [utp(2, 1), hex('00000001 c0ffee02 00000708 00000000 00000001')]
    const junk = [Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), Buffer.alloc(30, 0xff)]
    for (const data of [...junk, ...replies]) s.peer.send(data, exitAddress)
    await vi.waitFor(() => expect(s.tunnelled).toHaveLength(replies.length), { timeout: 5_000 })
    await vi.waitFor(() => expect(s.refused()).toBe(junk.length), { timeout: 5_000 })
    expect(s.tunnelled.map((t) => t.data)).toEqual(replies)
    expect(s.tunnelled.every((t) => t.origin.host === '127.0.0.9' && t.origin.port === 6881)).toBe(true)
    // py-ipv8 counts what arrives before checking it
    expect(s.exit.bytesDown).toBe([...junk, ...replies].reduce((n, d) => n + d.length, 0))
  })

  it('takes IPv4 only on its IPv4 socket: a mapped IPv4 source on the IPv6 socket is refused', async () => {
    const s = await scenario()
    s.exit.enable()
    const v6peer = await s.memory.bind({ host: '::1', port: 6881 })
    open.push(v6peer)
    const got: SocketAddress[] = []
    v6peer.onMessage((_data, from) => got.push(from))
    s.exit.sendTo(utp(4), v6peer.local)
    await vi.waitFor(() => expect(got).toHaveLength(1), { timeout: 5_000 })
    const mapped = await s.memory.bind({ host: '::ffff:127.0.0.9', port: 6881 })
    open.push(mapped)
    mapped.send(utp(2), got[0] as SocketAddress)
    v6peer.send(utp(2), got[0] as SocketAddress)
    await vi.waitFor(() => expect(s.tunnelled).toHaveLength(1), { timeout: 5_000 })
    await vi.waitFor(() => expect(s.refused()).toBe(1), { timeout: 5_000 })
    expect(s.tunnelled[0]?.origin.host).toBe('::1')
  })

  it('sends nothing after it is closed', async () => {
    const s = await scenario()
    s.exit.enable()
    s.exit.sendTo(utp(4), s.peer.local)
    await vi.waitFor(() => expect(s.received).toHaveLength(1), { timeout: 5_000 })
    await s.exit.close()
    s.exit.sendTo(utp(0), s.peer.local)
    expect(s.exit.bytesUp).toBe(utp(4).length)
  })

  it('resolves a domain destination (IPv4 first), and tunnels the reply back from the resolved address', async () => {
    const s = await scenario()
    s.exit.enable()
    s.exit.sendTo(utp(4), { host: 'peer.example', port: 6881 })
    await vi.waitFor(() => expect(s.received).toHaveLength(1), { timeout: 5_000 })
    expect(s.lookups).toEqual(['peer.example'])
    s.peer.send(utp(2), s.received[0]?.from as SocketAddress)
    await vi.waitFor(() => expect(s.tunnelled).toHaveLength(1), { timeout: 5_000 })
    // the origin is the address the name resolved to: the name is not known on the way back
    expect(s.tunnelled[0]?.origin).toEqual({ host: '127.0.0.9', port: 6881 })
  })

  it('drops and counts data to a name it cannot resolve, and checks the data before resolving', async () => {
    const s = await scenario()
    s.exit.enable()
    s.exit.sendTo(Buffer.from('GET / HTTP/1.1\r\n\r\n'), { host: 'nowhere.invalid', port: 80 })
    expect(s.refused()).toBe(1)
    expect(s.lookups).toEqual([])
    s.exit.sendTo(utp(4), { host: 'nowhere.invalid', port: 6881 })
    await vi.waitFor(() => expect(s.unresolved()).toBe(1), { timeout: 5_000 })
    expect(s.lookups).toEqual(['nowhere.invalid'])
    expect(s.exit.bytesUp).toBe(0)
    s.exit.sendTo(utp(0), s.peer.local)
    await vi.waitFor(() => expect(s.received).toHaveLength(1), { timeout: 5_000 })
  })
})
