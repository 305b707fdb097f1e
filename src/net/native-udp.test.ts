import { spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { release } from 'node:os'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  BatchedUdpSocket,
  batchedUdpTransport,
  type DatagramSocket,
  loadNativeUdp,
  nativeUdpStatus,
  type SocketAddress,
  udpTransport,
} from './index.js'

// a name that resolves to ::1 first and to 127.0.0.1 when IPv4 is asked for, as a dual-stack host's name does
vi.mock('node:dns/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:dns/promises')>()
  const lookup = (host: string, opts?: { family?: number }) =>
    host === 'dual-stack.test'
      ? Promise.resolve(
          opts?.family === 4 ? { address: '127.0.0.1', family: 4 } : { address: '::1', family: 6 },
        )
      : real.lookup(host, opts ?? {})
  return { ...real, lookup, default: { ...real, lookup } }
})

// CI builds the addon on `npm ci` (it has the toolchain): on Linux the native path must be the one in use
const linux = process.platform === 'linux'
const describeNative = linux ? describe : describe.skip
const ADDON = fileURLToPath(new URL('../../build/Release/udp.node', import.meta.url))
const INDEX = fileURLToPath(new URL('./index.ts', import.meta.url))

let open: DatagramSocket[] = []
afterEach(async () => {
  await Promise.all(open.map((s) => s.close()))
  open = []
})

async function bind(host: string, port = 0): Promise<BatchedUdpSocket> {
  const socket = await batchedUdpTransport.bind({ host, port })
  open.push(socket)
  expect(socket).toBeInstanceOf(BatchedUdpSocket)
  return socket as BatchedUdpSocket
}

function numbered(i: number, bytes = 100): Buffer {
  const data = Buffer.alloc(bytes, i & 0xff)
  data.writeUInt32BE(i, 0)
  return data
}

function collect(socket: DatagramSocket): { data: Buffer; from: SocketAddress }[] {
  const got: { data: Buffer; from: SocketAddress }[] = []
  socket.onMessage((data, from) => got.push({ data, from }))
  return got
}

describe('native batched UDP', () => {
  it.skipIf(!linux)('is the socket in use on Linux', async () => {
    expect(nativeUdpStatus()).toEqual({ loaded: true })
    expect(await bind('127.0.0.1')).toBeInstanceOf(BatchedUdpSocket)
  })

  it('gives the reason when the addon cannot be loaded', () => {
    const status = loadNativeUdp('../../build/Release/no-such-addon.node')
    expect(typeof status).toBe('string')
    expect(status).toMatch(/did not load/)
  })

  it('falls back to node:dgram with one warning when the addon is turned off', () => {
    const script = `
      const { batchedUdpTransport, nativeUdpStatus, BatchedUdpSocket } = await import(${JSON.stringify(INDEX)})
      const a = await batchedUdpTransport.bind({ host: '127.0.0.1' })
      const b = await batchedUdpTransport.bind({ host: '127.0.0.1' })
      const got = new Promise((resolve) => b.onMessage((data) => resolve(data.toString())))
      a.send(Buffer.from('over dgram'), b.local)
      console.log(JSON.stringify({ status: nativeUdpStatus(), batched: a instanceof BatchedUdpSocket, got: await got }))
      await a.close()
      await b.close()
    `
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, TRIBLER_NO_NATIVE_UDP: '1', TRIBLER_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(run.status).toBe(0)
    expect(JSON.parse(run.stdout.trim())).toEqual({
      status: { loaded: false, reason: 'turned off by TRIBLER_NO_NATIVE_UDP=1' },
      batched: false,
      got: 'over dgram',
    })
    const warnings = run.stderr.split('\n').filter((line) => line.includes('native batched UDP socket'))
    expect(warnings).toHaveLength(1)
  })
})

describeNative('BatchedUdpSocket on loopback', () => {
  it('receives a burst of datagrams in batches, each with its own bytes and sender', async () => {
    const a = await bind('127.0.0.1')
    const b = await bind('127.0.0.1')
    const got = collect(b)
    const count = 1_000
    for (let i = 0; i < count; i++) a.send(numbered(i, i === count - 1 ? 60 : 100), b.local)
    await vi.waitFor(() => expect(got).toHaveLength(count), { timeout: 10_000 })
    got.forEach(({ data, from }, i) => {
      expect(data.readUInt32BE(0)).toBe(i)
      expect(data.length).toBe(i === count - 1 ? 60 : 100)
      expect(data[99 % data.length]).toBe(i & 0xff)
      expect(from).toEqual(a.local)
    })
    // later batches do not overwrite earlier datagrams: each batch has its own buffer
    expect(got[0]?.data.readUInt32BE(0)).toBe(0)
    const stats = b.batchStats
    expect(stats.receivePackets).toBe(count)
    expect(stats.receiveBatches).toBeLessThan(count / 10)
    // Linux 5.0 and later keep a segmented run whole for a UDP_GRO socket: the runs were split here
    if (a.batchStats.sendCoalesced > 0 && Number(release().split('.')[0]) >= 5)
      expect(stats.receiveCoalesced).toBeGreaterThan(0)
    expect(b.stats).toMatchObject({ packetsReceived: count, bytesReceived: (count - 1) * 100 + 60 })
  })

  it('sends what one task queues at the end of the task, in one sendmmsg', async () => {
    const a = await bind('127.0.0.1')
    const b = createSocket('udp4')
    await new Promise<void>((resolve) => b.bind(0, '127.0.0.1', resolve))
    const got: Buffer[] = []
    b.on('message', (data) => got.push(data))
    try {
      const port = b.address().port
      for (let i = 0; i < 200; i++) a.send(numbered(i, 20 + (i % 50)), { host: '127.0.0.1', port })
      expect(a.batchStats.sendCalls).toBe(0)
      await vi.waitFor(() => expect(got).toHaveLength(200), { timeout: 10_000 })
      expect(a.batchStats.sendCalls).toBe(1)
      expect(got.map((d) => d.readUInt32BE(0))).toEqual([...Array(200).keys()])
      expect(got.map((d) => d.length)).toEqual([...Array(200).keys()].map((i) => 20 + (i % 50)))
      expect(a.stats).toMatchObject({ packetsSent: 200, sendErrors: 0 })
    } finally {
      b.close()
    }
  })

  it('sends runs of same-size datagrams to one peer as segmented messages that plain sockets get one by one', async () => {
    const a = await bind('127.0.0.1')
    const b = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 })
    await new Promise<void>((resolve) => b.bind(0, '127.0.0.1', resolve))
    const got: Buffer[] = []
    b.on('message', (data) => got.push(data))
    try {
      const port = b.address().port
      for (let i = 0; i < 600; i++)
        a.send(numbered(i, i % 100 === 99 ? 700 : 1000), { host: '127.0.0.1', port })
      await vi.waitFor(() => expect(got).toHaveLength(600), { timeout: 10_000 })
      expect(got.map((d) => d.readUInt32BE(0))).toEqual([...Array(600).keys()])
      expect(got.map((d) => d.length)).toEqual(
        [...Array(600).keys()].map((i) => (i % 100 === 99 ? 700 : 1000)),
      )
      expect(got.every((d, i) => d[999 % d.length] === (i & 0xff))).toBe(true)
      expect(a.batchStats.sendCoalesced).toBeGreaterThan(0)
      expect(a.batchStats.sendCalls).toBeLessThan(10)
    } finally {
      b.close()
    }
  })

  it('speaks IPv6, and as a dual-stack socket reaches IPv4 peers as ::ffff: addresses', async () => {
    const six = await bind('::1')
    const other = await bind('::1')
    const dual = await bind('::')
    const four = await bind('127.0.0.1')
    const gotOther = collect(other)
    const gotDual = collect(dual)
    const gotFour = collect(four)
    six.send(Buffer.from('v6'), other.local)
    four.send(Buffer.from('v4 to dual'), { host: '127.0.0.1', port: dual.local.port })
    await vi.waitFor(() => expect(gotOther.length + gotDual.length).toBe(2), { timeout: 10_000 })
    expect(gotOther[0]?.from).toEqual({ host: '::1', port: six.local.port })
    expect(gotDual[0]?.from).toEqual({ host: '::ffff:127.0.0.1', port: four.local.port })
    // answers go to the mapped address as well as to the plain IPv4 one
    dual.send(Buffer.from('mapped'), gotDual[0]?.from as SocketAddress)
    dual.send(Buffer.from('plain'), four.local)
    await vi.waitFor(() => expect(gotFour.map((g) => g.data.toString())).toEqual(['mapped', 'plain']), {
      timeout: 10_000,
    })
    expect(gotFour[0]?.from).toEqual({ host: '127.0.0.1', port: dual.local.port })
  })

  it('keeps at most 4096 datagrams while the kernel pushes back, drops and counts the rest, then drains', async () => {
    const a = await bind('127.0.0.1')
    const b = await bind('127.0.0.1')
    const got = collect(b)
    a.refuseSendsForTesting(1_000_000)
    const count = 5_000
    for (let i = 0; i < count; i++) a.send(numbered(i, 40), b.local)
    await Promise.resolve() // the last partial batch leaves at the end of the task
    expect(a.batchStats).toMatchObject({ pending: 4096, sendQueued: 4096, sendDropped: count - 4096 })
    expect(a.stats.sendErrors).toBe(count - 4096)
    expect(a.stats.packetsSent).toBe(count)
    a.refuseSendsForTesting(0)
    await vi.waitFor(() => expect(a.batchStats.pending).toBe(0), { timeout: 10_000 })
    await vi.waitFor(() => expect(got.length).toBeGreaterThan(0), { timeout: 10_000 })
    // the queue keeps the order, and the first datagrams were the ones kept
    const indices = got.map((g) => g.data.readUInt32BE(0))
    expect(indices[0]).toBe(0)
    expect(indices.every((v, i) => i === 0 || v > (indices[i - 1] as number))).toBe(true)
    expect(Math.max(...indices)).toBeLessThan(4096)
  })

  it('closes with sends still queued: they are dropped and counted, later sends are errors', async () => {
    const a = await bind('127.0.0.1')
    const b = await bind('127.0.0.1')
    a.refuseSendsForTesting(1_000_000)
    for (let i = 0; i < 100; i++) a.send(numbered(i), b.local)
    await a.close()
    expect(a.batchStats).toMatchObject({ sendDropped: 100 })
    a.send(numbered(0), b.local)
    expect(a.stats.sendErrors).toBe(101)
    await a.close() // twice is fine
    // the port is free again at once
    const again = await bind('127.0.0.1', a.local.port)
    expect(again.local.port).toBe(a.local.port)
  })

  it('rejects bad bind addresses and busy ports with clear codes, and counts bad destinations', async () => {
    const mod = loadNativeUdp()
    if (typeof mod === 'string') throw new Error(mod)
    expect(() => new BatchedUdpSocket(mod, '300.1.2.3', 0, false)).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/not an IP address/) }),
    )
    expect(() => new BatchedUdpSocket(mod, '127.0.0.1', 70_000, false)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    )
    const a = await bind('127.0.0.1')
    await expect(batchedUdpTransport.bind({ host: '127.0.0.1', port: a.local.port })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    })
    a.send(Buffer.from('x'), { host: '::1', port: 9 }) // IPv6 from an IPv4 socket
    a.send(Buffer.from('x'), { host: '127.0.0.1', port: 0 })
    a.send(Buffer.from('x'), { host: '127.0.0.1', port: 65_536 })
    a.send(Buffer.alloc(70_000), { host: '127.0.0.1', port: 9 })
    expect(a.stats.sendErrors).toBe(4)
    expect(a.stats.packetsSent).toBe(0)
  })

  it('keeps delivering when a handler throws', async () => {
    const a = await bind('127.0.0.1')
    const b = await bind('127.0.0.1')
    b.onMessage(() => {
      throw new Error('handler bug')
    })
    const got = collect(b)
    for (let i = 0; i < 10; i++) a.send(numbered(i), b.local)
    await vi.waitFor(() => expect(got).toHaveLength(10), { timeout: 10_000 })
  })

  it('carries the same traffic as node:dgram does, in both directions', async () => {
    const fast = await bind('127.0.0.1')
    const slow = await udpTransport.bind({ host: '127.0.0.1' })
    open.push(slow)
    const atFast = collect(fast)
    const atSlow = collect(slow)
    for (let i = 0; i < 50; i++) {
      fast.send(numbered(i), slow.local)
      slow.send(numbered(i), fast.local)
    }
    await vi.waitFor(() => expect(atFast.length + atSlow.length).toBe(100), { timeout: 10_000 })
    expect(atFast.map((g) => g.data.readUInt32BE(0))).toEqual([...Array(50).keys()])
    expect(atSlow.map((g) => g.data.readUInt32BE(0))).toEqual([...Array(50).keys()])
  })

  it('delivers an empty datagram as an empty buffer, alone and among others', async () => {
    const a = await bind('127.0.0.1')
    const b = await bind('127.0.0.1')
    const got = collect(b)
    const plain = createSocket('udp4')
    await new Promise<void>((resolve) => plain.bind(0, '127.0.0.1', resolve))
    try {
      plain.send(Buffer.alloc(0), b.local.port, '127.0.0.1')
      await vi.waitFor(() => expect(got).toHaveLength(1), { timeout: 10_000 })
      expect(got[0]?.data.length).toBe(0)
      a.send(Buffer.alloc(0), b.local)
      a.send(Buffer.from('between'), b.local)
      a.send(Buffer.alloc(0), b.local)
      await vi.waitFor(() => expect(got).toHaveLength(4), { timeout: 10_000 })
      expect(got.slice(1).map((g) => g.data.toString())).toEqual(['', 'between', ''])
      expect(b.stats).toMatchObject({ packetsReceived: 4, bytesReceived: 7 })
    } finally {
      plain.close()
    }
  })

  it('delivers nothing more of a batch once a handler closed the socket', async () => {
    const a = await bind('127.0.0.1')
    const b = await bind('127.0.0.1')
    const got: number[] = []
    b.onMessage((data) => {
      got.push(data.readUInt32BE(0))
      void b.close()
    })
    // one task's sends leave in one sendmmsg and arrive before b's next wake: one batch
    for (let i = 0; i < 10; i++) a.send(numbered(i), b.local)
    await vi.waitFor(() => expect(b.batchStats.receivePackets).toBe(10), { timeout: 10_000 })
    await b.close()
    expect(got).toEqual([0])
  })

  // Linux 5.0 and later keep a segmented run whole for a UDP_GRO socket
  it.skipIf(Number(release().split('.')[0]) < 5)(
    'reads a run the sender segmented as one message and splits it again (UDP GRO)',
    async () => {
      const a = await bind('127.0.0.1')
      const b = await bind('127.0.0.1')
      const got = collect(b)
      for (let i = 0; i < 200; i++) a.send(numbered(i, 1200), b.local)
      await vi.waitFor(() => expect(got).toHaveLength(200), { timeout: 10_000 })
      expect(got.map((g) => g.data.readUInt32BE(0))).toEqual([...Array(200).keys()])
      expect(
        got.every((g) => g.data.length === 1200 && g.data[1199] === (g.data.readUInt32BE(0) & 0xff)),
      ).toBe(true)
      expect(a.batchStats.sendCoalesced).toBeGreaterThan(0)
      expect(b.batchStats.receiveCoalesced).toBeGreaterThan(0)
      expect(b.batchStats.receivePackets).toBe(200)
    },
  )

  it('binds a name to the IPv4 address it resolves to, as node:dgram does', async () => {
    const socket = await bind('dual-stack.test')
    expect(socket.local.host).toBe('127.0.0.1')
  })

  it('leaves nothing behind when binding fails', () => {
    // a failed open once kept its shared arrays (~650 KB) for good: 200 of them held over 100 MB
    const script = `
      const { batchedUdpTransport } = await import(${JSON.stringify(INDEX)})
      const a = await batchedUdpTransport.bind({ host: '127.0.0.1' })
      const used = () => { globalThis.gc(); return process.memoryUsage().arrayBuffers }
      const before = used()
      let refused = 0
      for (let i = 0; i < 200; i++) {
        await batchedUdpTransport.bind({ host: '127.0.0.1', port: a.local.port }).catch((err) => {
          if (err.code === 'EADDRINUSE') refused += 1
        })
      }
      await new Promise((resolve) => setImmediate(resolve))
      console.log(JSON.stringify({ refused, grownBytes: used() - before }))
      await a.close()
    `
    const run = spawnSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    )
    expect(run.status, run.stderr).toBe(0)
    const result = JSON.parse(run.stdout.trim()) as { refused: number; grownBytes: number }
    expect(result.refused).toBe(200)
    expect(result.grownBytes).toBeLessThan(20 * 1024 * 1024)
  })

  it.each(['terminate', 'exit', 'close-then-terminate'])(
    'lets a worker thread with an open socket end (%s) without bringing the process down',
    (how) => {
      // the worker's environment must wait for the socket's handle to close while the addon is still loaded;
      // run in a child process so that a crash shows as its exit status
      const worker = `
        const { parentPort } = require('node:worker_threads')
        const mod = require(${JSON.stringify(ADDON)})
        const [handle] = mod.open('127.0.0.1', 0, 0, 0, false, 32, () => {}, new Int32Array(32 * 128 * 8),
          new Uint8Array(65536), new Int32Array(256 * 8), new Float64Array(16))
        globalThis.handle = handle
        if (${JSON.stringify(how)} === 'close-then-terminate') mod.close(handle, () => {})
        parentPort.postMessage('open')
        if (${JSON.stringify(how)} === 'exit') setTimeout(() => process.exit(0), 20)
        else setInterval(() => {}, 1000)
      `
      const script = `
        const { Worker } = require('node:worker_threads')
        ;(async () => {
          for (let i = 0; i < 3; i++) {
            const w = new Worker(${JSON.stringify(worker)}, { eval: true })
            await new Promise((resolve) => w.once('message', resolve))
            if (${JSON.stringify(how)} === 'exit') await new Promise((resolve) => w.once('exit', resolve))
            else await w.terminate()
          }
          console.log('parent alive')
        })()
      `
      const run = spawnSync(process.execPath, ['-e', script], {
        encoding: 'utf8',
        timeout: 30_000,
      })
      expect({ status: run.status, signal: run.signal, stdout: run.stdout.trim() }).toEqual({
        status: 0,
        signal: null,
        stdout: 'parent alive',
      })
    },
  )
})
