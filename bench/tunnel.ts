// UDP payload throughput through tunnel circuits on loopback: a client and four exit nodes (which also relay),
// each on its own 127.0.0.x address over real UDP: first all in this one process (as py-ipv8's figure is taken),
// then each exit node in a process of its own (bench/tunnel-node.ts), as on separate machines. The client keeps a
// window of 1 KiB datagrams in flight through a 1-hop and then a 3-hop circuit to a UDP sink, which acknowledges
// every 16th with an 8-byte count through the same circuit. Payload MB/s counts datagrams the sink received; CPU
// s/GB is the user + system time of every process of the set-up per GB of payload (every hop's work included).
// With PY_IPV8_DIR (py-ipv8 241d0c2), bench/py_ipv8_tunnel.py runs the same set-up in py-ipv8 afterwards.
import { type ChildProcess, fork, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { type Circuit, circuitDatagramSocket, PEER_FLAG_EXIT_BT, TunnelCommunity } from '../src/ipv8/index.js'
import { OverlayTestNetwork } from '../src/ipv8/testing/harness.js'
import { batchedUdpTransport, nativeUdpStatus } from '../src/net/index.js'

const PAYLOAD_BYTES = 1024
const WINDOW = 512
const ACK_EVERY = 16
const STALL_MS = 200
const DURATION_MS = Number(process.env.TUNNEL_BENCH_MS ?? 5_000)
const MAX_BYTES = 2 * 1024 ** 3
// py-ipv8's published figures (pure-Python crypto endpoint), shown when it is not measured here
const REFERENCE: Record<number, { mbPerSec: string; target: number }> = {
  1: { mbPerSec: '18-21', target: 100 },
  3: { mbPerSec: '7-8', target: 50 },
}

const host = (i: number): string => `127.0.0.${81 + i}`

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  return condition()
}

/**
 * The sink acknowledges every ACK_EVERY datagrams with the number it has received so far; the client keeps at
 * most WINDOW datagrams unacknowledged. A window that stops moving for STALL_MS counts as lost and is reopened.
 */
async function measure(
  client: TunnelCommunity,
  circuit: Circuit,
  sink: Sink,
  cpuMicros: () => Promise<number>,
): Promise<{ mbPerSec: number; cpuSecPerGb: number; lost: number; bytes: number }> {
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61)
  payload.writeUInt32BE(0, 0) // a UDP tracker action 0: the exit's data checker lets it through
  // the exit opens its socket on the first data and keeps only 10 datagrams meanwhile: open it before timing
  sink.reset()
  for (let i = 0; i < ACK_EVERY; i++) client.sendData(circuit, sink.address, payload)
  await until(() => sink.received >= ACK_EVERY, 5_000)
  sink.reset()
  let sent = 0
  let acked = 0
  let lost = 0
  let lastProgress = performance.now()
  let done = false
  const cpuStart = await cpuMicros()
  const start = performance.now()
  const pump = (): void => {
    while (!done && sent - acked - lost < WINDOW) {
      sent += 1
      client.sendData(circuit, sink.address, payload)
    }
  }
  const off = circuit.onData((data) => {
    if (data.length < 8) return
    const received = data.readUInt32BE(4)
    if (received <= acked) return
    acked = received
    lastProgress = performance.now()
    if (lastProgress - start >= DURATION_MS || acked * PAYLOAD_BYTES >= MAX_BYTES) done = true
    pump()
  })
  const sweeper = setInterval(() => {
    const now = performance.now()
    if (now - start >= DURATION_MS) done = true
    if (now - lastProgress > STALL_MS) {
      lost = sent - acked
      lastProgress = now
    }
    pump()
  }, 20)
  pump()
  await until(() => done, DURATION_MS + 5_000)
  const seconds = (performance.now() - start) / 1000
  const cpuSeconds = ((await cpuMicros()) - cpuStart) / 1e6
  const bytes = sink.received * PAYLOAD_BYTES
  clearInterval(sweeper)
  off()
  // datagrams still in flight when the run ended are not lost: wait until the sink has seen them
  let seen = -1
  while (seen !== sink.received) {
    seen = sink.received
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    mbPerSec: bytes / seconds / 1e6,
    cpuSecPerGb: cpuSeconds / (bytes / 1e9),
    lost: sent - sink.received,
    bytes,
  }
}

interface Sink {
  readonly address: { host: string; port: number }
  readonly received: number
  reset(): void
}

async function startSink(): Promise<Sink & { close(): Promise<void> }> {
  const socket = await batchedUdpTransport.bind({ host: '127.0.0.90', port: 0 })
  const ack = Buffer.alloc(8)
  let received = 0
  socket.onMessage((_data, from) => {
    received += 1
    if (received % ACK_EVERY === 0) {
      ack.writeUInt32BE(received, 4)
      socket.send(ack, from)
    }
  })
  return {
    address: socket.local,
    get received() {
      return received
    },
    reset() {
      received = 0
    },
    close: () => socket.close(),
  }
}

interface PyResult {
  hops: number
  mb_per_sec?: number
  cpu_sec_per_gb?: number
  error?: string
}

/** py-ipv8 (pure-Python 241d0c2 in PY_IPV8_DIR) on the same set-up, run after ours so they do not compete. */
function pyIpv8(): Map<number, PyResult> | string {
  const dir = process.env.PY_IPV8_DIR
  if (dir === undefined || !existsSync(`${dir}/ipv8/messaging/anonymization/community.py`)) {
    return 'py-ipv8 not measured here (set PY_IPV8_DIR to a py-ipv8 241d0c2 checkout): its published figures are shown'
  }
  const script = fileURLToPath(new URL('./py_ipv8_tunnel.py', import.meta.url))
  const run = spawnSync('/usr/bin/python3', [script], {
    env: { ...process.env, PY_IPV8_DIR: dir, TUNNEL_BENCH_MS: String(DURATION_MS) },
    encoding: 'utf8',
    timeout: 4 * DURATION_MS + 60_000,
  })
  const results = new Map<number, PyResult>()
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    const result = JSON.parse(line) as PyResult
    results.set(result.hops, result)
  }
  return results.size > 0 ? results : `py-ipv8 run failed: ${run.stderr.slice(-300)}`
}

type Result = Awaited<ReturnType<typeof measure>>
const ownCpu = (): Promise<number> => {
  const used = process.cpuUsage()
  return Promise.resolve(used.user + used.system)
}

/** Asks a forked node for its CPU microseconds so far. */
function childCpu(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('a node did not report its CPU')), 10_000)
    const onMessage = (message: { cpu?: number }): void => {
      if (message.cpu === undefined) return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(message.cpu)
    }
    child.on('message', onMessage)
    child.send('cpu')
  })
}

/** Forks exit node `i` (bench/tunnel-node.ts) and waits until it is bound. */
function forkNode(i: number, client: { host: string; port: number }): Promise<ChildProcess> {
  const script = fileURLToPath(new URL('./tunnel-node.ts', import.meta.url))
  const child = fork(script, [host(i), client.host, String(client.port)], { execArgv: ['--import', 'tsx'] })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`exit node ${i} did not start`)), 30_000)
    child.once('message', () => {
      clearTimeout(timer)
      resolve(child)
    })
    child.once('exit', (code) => reject(new Error(`exit node ${i} ended with ${code}`)))
  })
}

/** Runs both circuit lengths with the exit nodes in this process (`separate` false) or in one process each. */
async function run(separate: boolean): Promise<Map<number, Result>> {
  const net = await OverlayTestNetwork.create(
    separate ? 1 : 5,
    (deps, i, bootstrap) =>
      new TunnelCommunity(deps, {
        walkIntervalMs: 100,
        bootstrap: { publicNetwork: false, addresses: bootstrap, intervalMs: 1_000 },
        tunnel: { exit: i > 0 },
        exitBindHost: host(i),
      }),
    // the endpoints keep their default flood limit: circuit cells from a circuit's neighbours are not counted
    { transport: batchedUdpTransport, hostOf: host },
  )
  const sink = await startSink()
  const children: ChildProcess[] = []
  const results = new Map<number, Result>()
  try {
    await net.startAll()
    if (separate) for (let i = 1; i <= 4; i++) children.push(await forkNode(i, net.node(0).socket.local))
    const cpuMicros = async (): Promise<number> =>
      (await ownCpu()) + (await Promise.all(children.map(childCpu))).reduce((a, b) => a + b, 0)
    const client = net.node(0).community
    if (!(await until(() => client.getCandidates(PEER_FLAG_EXIT_BT).length === 4, 30_000))) {
      throw new Error('the client did not meet the four exits')
    }
    for (const hops of [1, 3]) {
      const socket = circuitDatagramSocket(client, hops) // keeps circuits of this length wanted
      const circuit = await client.circuit(hops, { timeoutMs: 30_000 })
      results.set(hops, await measure(client, circuit, sink, cpuMicros))
      await socket.close()
    }
  } finally {
    for (const child of children) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.send('stop')
      await exited
    }
    await net.stopAll()
    await sink.close()
  }
  return results
}

const ours = new Map<string, Map<number, Result>>([
  ['all nodes in one process', await run(false)],
  ['each exit node in a process of its own', await run(true)],
])

const py = pyIpv8()
console.log(
  `tunnel throughput: ${PAYLOAD_BYTES}-byte UDP payloads, window ${WINDOW}, ${DURATION_MS} ms per run`,
)
console.log(
  `load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores: on a busy machine wall-clock MB/s`,
)
console.log('falls, while CPU s/GB holds; "at 1 core" = 1000 / (CPU s/GB), every node sharing that one core')
const status = nativeUdpStatus()
console.log(
  status.loaded
    ? 'sockets: native batched UDP (recvmmsg/sendmmsg, UDP GSO/GRO); TRIBLER_NO_NATIVE_UDP=1 measures node:dgram'
    : `sockets: node:dgram (${status.reason})`,
)
if (typeof py === 'string') console.log(py)
for (const [mode, results] of ours) {
  console.log(`\n${mode}`)
  console.log(
    'hops   MB/s   CPU s/GB   at 1 core   lost | py-ipv8 MB/s   CPU s/GB | target   vs target   vs py MB/s   vs py CPU',
  )
  for (const [hops, r] of results) {
    const ref = REFERENCE[hops] as { mbPerSec: string; target: number }
    const [lo, hi] = ref.mbPerSec.split('-').map(Number) as [number, number]
    const measured = typeof py === 'string' ? undefined : py.get(hops)
    const pyMb = measured?.mb_per_sec ?? (lo + hi) / 2
    const pyCpu = measured?.cpu_sec_per_gb
    const pyMbText = measured?.mb_per_sec === undefined ? `${ref.mbPerSec} (pub.)` : pyMb.toFixed(1)
    console.log(
      [
        String(hops).padStart(4),
        r.mbPerSec.toFixed(1).padStart(6),
        r.cpuSecPerGb.toFixed(1).padStart(10),
        (1000 / r.cpuSecPerGb).toFixed(1).padStart(11),
        `${String(r.lost).padStart(6)} |`,
        pyMbText.padStart(12),
        `${(pyCpu === undefined ? '-' : pyCpu.toFixed(1)).padStart(10)} |`,
        String(ref.target).padStart(6),
        `${(r.mbPerSec / ref.target).toFixed(2)}x`.padStart(11),
        `${(r.mbPerSec / pyMb).toFixed(1)}x`.padStart(12),
        (pyCpu === undefined ? '-' : `${(pyCpu / r.cpuSecPerGb).toFixed(1)}x`).padStart(11),
      ].join(' '),
    )
  }
}
