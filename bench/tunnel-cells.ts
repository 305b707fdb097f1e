// Where bench:tunnel's CPU goes. Every node there shares one process, so its CPU s/GB is the sum of what each role
// spends per datagram plus what the kernel and node:dgram spend per datagram. This measures the parts apart: the
// tunnel community's work per cell for each role (client, relay, exit), on a circuit built over the in-memory
// network with the sockets taken out, and one 1 KiB datagram sent and received over loopback UDP by node:dgram and
// by the native batched socket the IPv8 endpoint uses.
// CPU microseconds are process user + system time, the best of five runs, so a busy machine changes them little.
import { createSocket, type Socket } from 'node:dgram'
import { cpus, loadavg } from 'node:os'
import { ManualClock } from '../src/common/index.js'
import { type Circuit, TunnelCommunity } from '../src/ipv8/index.js'
import { OverlayTestNetwork } from '../src/ipv8/testing/harness.js'
import type { ExitSocket } from '../src/ipv8/tunnel/index.js'
import { batchedUdpTransport, MemoryNetwork, nativeUdpStatus, type SocketAddress } from '../src/net/index.js'

const CELLS = 20_000
const RUNS = 5
const PAYLOAD_BYTES = 1024
const SINK: SocketAddress = { host: '127.0.0.200', port: 7 }

/** Best CPU microseconds per item of `RUNS` runs; `prepare` runs untimed before each. */
function cpuMicros(items: number, run: () => void, prepare: () => void = () => {}): number {
  let best = Number.POSITIVE_INFINITY
  for (let r = 0; r < RUNS; r++) {
    prepare()
    const start = process.cpuUsage()
    run()
    const used = process.cpuUsage(start)
    best = Math.min(best, (used.user + used.system) / items)
  }
  return best
}

/** Exposes the protected hook the exit uses to send a reply back through its circuit. */
class BenchTunnelCommunity extends TunnelCommunity {
  reply(exit: ExitSocket, from: SocketAddress, data: Buffer): void {
    this.tunnelPacket(exit, from, data)
  }
}

async function circuitCosts(): Promise<Array<[string, number]>> {
  const clock = new ManualClock()
  const memory = new MemoryNetwork({ clock, latencyMs: 5, seed: 7 })
  const net = await OverlayTestNetwork.create(
    5,
    (deps, i, bootstrap) =>
      new BenchTunnelCommunity(
        { ...deps, exitTransport: memory },
        {
          bootstrap: { publicNetwork: false, addresses: bootstrap },
          tunnel: { exit: i >= 2, removeTunnelDelayMs: 0 },
          exitBindHost: `127.0.0.${i + 1}`,
        },
      ),
    { transport: memory, clock },
  )
  const sink = await memory.bind(SINK)
  let sunk = 0
  sink.onMessage(() => {
    sunk += 1
  })
  const run = async (ms: number): Promise<void> => {
    for (let done = 0; done < ms; done += 50) {
      clock.advance(50)
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61)
  payload.writeUInt32BE(0, 0) // a UDP tracker action 0: the exit's data checker lets it through
  const client = net.node(0).community
  const nodeOf = (circuit: Circuit, hop: number) => {
    const key = circuit.hops[hop]?.publicKey
    const node = net.nodes.find((n) => key !== undefined && n.key.publicKey.equals(key))
    if (node === undefined) throw new Error('hop not found')
    return node
  }
  const circuits = new Map<number, Circuit>()
  try {
    await net.startAll()
    await run(5_000)
    for (const hops of [1, 3]) {
      let circuit: Circuit | undefined
      void client.circuit(hops, { timeoutMs: 30_000 }).then((c) => {
        circuit = c
      })
      for (let i = 0; i < 300 && circuit === undefined; i++) await run(100)
      if (circuit === undefined) throw new Error(`no ${hops}-hop circuit`)
      circuits.set(hops, circuit)
      // one datagram end to end opens the exit's socket
      const before = sunk
      client.sendData(circuit, SINK, payload)
      for (let i = 0; i < 50 && sunk === before; i++) await run(100)
      if (sunk === before) throw new Error(`nothing came through the ${hops}-hop circuit`)
    }
    // from here on nothing is delivered: each role's work ends where it hands a datagram to its socket
    const captured: Buffer[] = []
    // every cell is a buffer of its own, so keeping it costs no copy
    for (const node of net.nodes) node.socket.send = (data) => void captured.push(data as Buffer)
    memory.route = () => {}
    const one = circuits.get(1) as Circuit
    const three = circuits.get(3) as Circuit
    const sendCells = (circuit: Circuit) => () => {
      for (let i = 0; i < CELLS; i++) client.sendData(circuit, SINK, payload)
    }
    const out: Array<[string, number]> = []
    const clear = () => {
      captured.length = 0
    }
    out.push(['client: seal and send a data cell, 1 hop', cpuMicros(CELLS, sendCells(one), clear)])
    out.push(['client: seal and send a data cell, 3 hops', cpuMicros(CELLS, sendCells(three), clear)])
    // hops receive fresh cells each run (a replayed counter is refused)
    const receive = (circuit: Circuit, hop: number) => {
      const node = nodeOf(circuit, hop)
      const from = net.node(0).socket.local
      let cells: Buffer[] = []
      return {
        prepare: () => {
          clear()
          sendCells(circuit)()
          cells = captured.splice(0)
        },
        run: () => {
          for (const cell of cells) node.endpoint.receive(cell, from)
        },
      }
    }
    const relay = receive(three, 0)
    out.push(['relay: peel a layer, forward the cell', cpuMicros(CELLS, relay.run, relay.prepare)])
    const exit = receive(one, 0)
    out.push(['exit: open the last layer, send the payload on', cpuMicros(CELLS, exit.run, exit.prepare)])
    const exitNode = nodeOf(one, 0)
    const exitSocket = exitNode.community.exitSockets.get(one.circuitId)
    if (exitSocket === undefined) throw new Error('no exit socket')
    const replies: Buffer[] = []
    const seal = () => {
      for (let i = 0; i < CELLS; i++) exitNode.community.reply(exitSocket, SINK, payload)
    }
    out.push(['exit: seal a reply into the circuit', cpuMicros(CELLS, seal, clear)])
    let delivered = 0
    one.onData(() => {
      delivered += 1
    })
    const open = () => {
      for (const cell of replies) net.node(0).endpoint.receive(cell, exitNode.socket.local)
    }
    const prepareReplies = () => {
      clear()
      seal()
      replies.splice(0, replies.length, ...captured.splice(0))
    }
    out.push(['client: open a reply, 1 hop', cpuMicros(CELLS, open, prepareReplies)])
    if (delivered !== RUNS * CELLS) throw new Error(`only ${delivered} replies were delivered`)
    return out
  } finally {
    await net.stopAll()
    await sink.close()
  }
}

/** CPU per 1 KiB datagram sent by one node:dgram socket and received by another, in this process. */
async function datagramCost(): Promise<number> {
  const bind = (host: string): Promise<Socket> =>
    new Promise((resolve) => {
      const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 })
      socket.bind(0, host, () => resolve(socket))
    })
  const [a, b] = [await bind('127.0.0.81'), await bind('127.0.0.82')]
  const port = b.address().port
  const data = Buffer.alloc(PAYLOAD_BYTES + 60)
  const window = 256
  let best = Number.POSITIVE_INFINITY
  try {
    for (let r = 0; r < RUNS; r++) {
      let sent = 0
      let received = 0
      const start = process.cpuUsage()
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 10_000)
        b.removeAllListeners('message')
        b.on('message', () => {
          received += 1
          if (received >= CELLS) {
            clearTimeout(timer)
            resolve()
          } else if (sent < CELLS) {
            sent += 1
            a.send(data, port, '127.0.0.82')
          }
        })
        for (; sent < window; sent++) a.send(data, port, '127.0.0.82')
      })
      const used = process.cpuUsage(start)
      if (received > 0) best = Math.min(best, (used.user + used.system) / received)
    }
  } finally {
    a.close()
    b.close()
  }
  return best
}

/** The same through the native batched socket the IPv8 endpoint uses (recvmmsg/sendmmsg, UDP GSO/GRO). */
async function batchedDatagramCost(): Promise<number | undefined> {
  if (!nativeUdpStatus().loaded) return undefined
  const a = await batchedUdpTransport.bind({ host: '127.0.0.81' })
  const b = await batchedUdpTransport.bind({ host: '127.0.0.82' })
  const data = Buffer.alloc(PAYLOAD_BYTES + 60)
  const window = 256
  let best = Number.POSITIVE_INFINITY
  try {
    for (let r = 0; r < RUNS; r++) {
      let sent = 0
      let received = 0
      const start = process.cpuUsage()
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 10_000)
        const off = b.onMessage(() => {
          received += 1
          if (received >= CELLS) {
            clearTimeout(timer)
            off()
            resolve()
          } else if (sent < CELLS) {
            sent += 1
            a.send(data, b.local)
          }
        })
        for (; sent < window; sent++) a.send(data, b.local)
      })
      const used = process.cpuUsage(start)
      if (received > 0) best = Math.min(best, (used.user + used.system) / received)
    }
  } finally {
    await a.close()
    await b.close()
  }
  return best
}

const roles = await circuitCosts()
const datagram = await datagramCost()
const batched = await batchedDatagramCost()
console.log(`where the CPU goes: ${PAYLOAD_BYTES}-byte payloads, CPU us per item (best of ${RUNS} runs)`)
console.log(`load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores`)
for (const [name, micros] of roles) console.log(`${name.padEnd(50)} ${micros.toFixed(2).padStart(7)}`)
console.log(
  `${'UDP datagram over loopback (node:dgram send + receive)'.padEnd(50)} ${datagram.toFixed(2).padStart(7)}`,
)
console.log(
  `${'UDP datagram over loopback (native batched socket)'.padEnd(50)} ${(batched === undefined ? 'n/a' : batched.toFixed(2)).padStart(7)}`,
)
console.log(
  'a payload crosses 2 datagrams at 1 hop and 4 at 3 hops in bench:tunnel, every one in its process',
)
