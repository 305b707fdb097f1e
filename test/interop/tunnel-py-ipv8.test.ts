import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { PEER_FLAG_EXIT_BT, TunnelCommunity } from '../../src/ipv8/index.js'
import { OverlayTestNetwork } from '../../src/ipv8/testing/harness.js'
import { type DatagramSocket, type SocketAddress, udpTransport } from '../../src/net/index.js'

// py-ipv8's last pure-Python commit (241d0c2) in a checkout named by PY_IPV8_DIR, run by /usr/bin/python3 with
// Debian's python3-libnacl, python3-cryptography, python3-aiohttp and python3-typing-extensions.
const PY_IPV8_DIR = process.env.PY_IPV8_DIR
const available =
  PY_IPV8_DIR !== undefined && existsSync(`${PY_IPV8_DIR}/ipv8/messaging/anonymization/community.py`)
const SCRIPT = fileURLToPath(new URL('../support/py_ipv8_tunnel.py', import.meta.url))
const COMMUNITY_ID = '81ded07332bdc775aa5a46f96de9f8f390bbc9f3'

interface PyLine {
  ready?: [string, number][]
  circuit?: number
  reply?: string
  origin?: [string, number]
  error?: string
  speed?: number
}

interface PyNodes {
  readonly lines: PyLine[]
  readonly addresses: SocketAddress[]
  stop(): Promise<void>
}

async function startPy(spec: Record<string, unknown>): Promise<PyNodes> {
  const child: ChildProcessWithoutNullStreams = spawn('/usr/bin/python3', [SCRIPT, JSON.stringify(spec)], {
    env: { ...process.env, PY_IPV8_DIR: PY_IPV8_DIR as string },
  })
  const lines: PyLine[] = []
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line) as PyLine))
  await until(() => lines.some((l) => l.ready !== undefined) || child.exitCode !== null, 30_000)
  const ready = lines.find((l) => l.ready !== undefined)?.ready
  if (ready === undefined) throw new Error(`py-ipv8 did not start: ${stderr}`)
  return {
    lines,
    addresses: ready.map(([host, port]) => ({ host, port })),
    stop: async () => {
      child.stdin.end()
      await until(() => child.exitCode !== null, 10_000)
      if (child.exitCode === null) child.kill()
    },
  }
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
}

let py: PyNodes | undefined
let net: OverlayTestNetwork<TunnelCommunity> | undefined
let echo: DatagramSocket | undefined
afterEach(async () => {
  await py?.stop()
  await net?.stopAll()
  await echo?.close()
  py = undefined
  net = undefined
  echo = undefined
})

async function startEcho(host: string): Promise<{ socket: DatagramSocket; seen: SocketAddress[] }> {
  const socket = await udpTransport.bind({ host, port: 0 })
  const seen: SocketAddress[] = []
  socket.onMessage((data, from) => {
    seen.push(from)
    socket.send(data, from)
  })
  echo = socket
  return { socket, seen }
}

describe.skipIf(!available)('tunnel circuits with py-ipv8 (pure-Python 241d0c2)', () => {
  it('our client builds 1-, 2- and 3-hop circuits through py-ipv8 relays and exits', async () => {
    const { socket, seen } = await startEcho('127.0.0.130')
    py = await startPy({
      community_id: COMMUNITY_ID,
      nodes: [
        { host: '127.0.0.121', exit: false },
        { host: '127.0.0.122', exit: true },
        { host: '127.0.0.123', exit: true },
        { host: '127.0.0.127', exit: false },
      ],
    })
    const pyNodes = py.addresses
    net = await OverlayTestNetwork.create(
      1,
      (deps) =>
        new TunnelCommunity(deps, {
          walkIntervalMs: 200,
          bootstrap: { publicNetwork: false, addresses: pyNodes, intervalMs: 1_000 },
        }),
      { transport: udpTransport, hostOf: () => '127.0.0.120' },
    )
    await net.startAll()
    const client = net.node(0).community
    await until(
      () => client.getCandidates(PEER_FLAG_EXIT_BT).length === 2 && client.network.size === 4,
      30_000,
    )
    expect(
      client
        .getCandidates(PEER_FLAG_EXIT_BT)
        .map((p) => p.address.host)
        .sort(),
    ).toEqual(['127.0.0.122', '127.0.0.123'])

    for (const hops of [1, 2, 3]) {
      const circuit = await client.circuit(hops, { timeoutMs: 30_000 })
      expect(circuit.hops).toHaveLength(hops)
      const replies: string[] = []
      circuit.onData((data, from) => {
        expect(from).toEqual(socket.local)
        replies.push(data.subarray(4).toString())
      })
      seen.length = 0
      for (let i = 0; i < 5; i++) {
        client.sendData(
          circuit,
          socket.local,
          Buffer.concat([Buffer.alloc(4), Buffer.from(`${hops} hop ${i}`)]),
        )
      }
      await until(() => replies.length >= 5, 15_000)
      // py-ipv8's speed test, answered by its exit
      const speed = await client.speedTest(circuit, { requestBytes: 200, responseBytes: 1000 })
      expect(speed.responseBytes).toBe(1000)
      expect(replies.sort()).toEqual([0, 1, 2, 3, 4].map((i) => `${hops} hop ${i}`))
      // the echo server saw one source, a py-ipv8 exit's socket (bound to 0.0.0.0), never the client
      const sources = new Set(seen.map((a) => `${a.host}:${a.port}`))
      expect(sources.size).toBe(1)
      expect(seen.some((a) => a.host === '127.0.0.120')).toBe(false)
    }
    expect(client.drops).toMatchObject({ decryptFailed: 0, replayed: 0, malformed: 0, unknownCircuit: 0 })
  })

  for (const hops of [2, 3]) {
    it(`a py-ipv8 client builds a ${hops}-hop circuit through our relays and exit`, async () => {
      const { socket, seen } = await startEcho('127.0.0.131')
      // our nodes 127.0.0.125.. : relays, the last one the exit
      const exitIndex = hops - 1
      net = await OverlayTestNetwork.create(
        hops,
        (deps, i, bootstrap) =>
          new TunnelCommunity(deps, {
            walkIntervalMs: 200,
            bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
            tunnel: { exit: i === exitIndex },
            exitBindHost: `127.0.0.${125 + i}`,
          }),
        { transport: udpTransport, hostOf: (i) => `127.0.0.${125 + i}` },
      )
      await net.startAll()
      py = await startPy({
        community_id: COMMUNITY_ID,
        nodes: [{ host: '127.0.0.124', exit: false }],
        walk_to: net.nodes.map((n) => [n.socket.local.host, n.socket.local.port]),
        client: { hops, echo: [socket.local.host, socket.local.port], count: 5 },
      })
      const lines = py.lines
      await until(
        () =>
          (lines.filter((l) => l.reply !== undefined).length >= 5 &&
            lines.some((l) => l.speed !== undefined)) ||
          lines.some((l) => l.error !== undefined),
        60_000,
      )
      expect(lines.find((l) => l.error !== undefined)).toBeUndefined()
      expect(lines.find((l) => l.circuit !== undefined)?.circuit).toBe(hops)
      expect(lines.find((l) => l.speed !== undefined)?.speed).toBe(500) // our exit answered py-ipv8's speed test
      const replies = lines.filter((l) => l.reply !== undefined)
      expect(
        replies
          .map((l) =>
            Buffer.from(l.reply as string, 'hex')
              .subarray(4)
              .toString(),
          )
          .sort(),
      ).toEqual([0, 1, 2, 3, 4].map((i) => `py datagram ${i}`))
      expect(
        replies.every((l) => l.origin?.[0] === socket.local.host && l.origin?.[1] === socket.local.port),
      ).toBe(true)
      // our exit sent everything; each of our relays carried the circuit both ways
      expect(new Set(seen.map((a) => a.host))).toEqual(new Set([`127.0.0.${125 + exitIndex}`]))
      for (let i = 0; i < exitIndex; i++) expect(net.node(i).community.relays.size).toBe(2)
      expect(net.node(exitIndex).community.exitSockets.size).toBe(1)
    })
  }
})
