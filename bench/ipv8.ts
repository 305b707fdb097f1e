// IPv8 overlay speed on one core: signed messages verified and handled per second, and signed
// introduction-requests handled per second (each one is verified, decoded, recorded in the peer table and answered
// with a signed introduction-response plus a puncture-request, so it costs one verify and one sign), and the round-trip time of an introduction on real UDP loopback. When a py-ipv8 checkout
// (the last pure-Python commit, 241d0c2) is given in PY_IPV8_DIR and /usr/bin/python3 can import it (Debian
// python3-libnacl, python3-cryptography, python3-aiohttp, python3-typing-extensions), the same handling is measured
// there side by side.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { Community, Ipv8Endpoint, PrivateKey, PuncturePayload } from '../src/ipv8/index.js'
import {
  type DatagramSocket,
  emptyDatagramStats,
  type SocketAddress,
  seededRandom,
  udpTransport,
} from '../src/net/index.js'

const TARGET_PER_SEC = 20_000
const COMMUNITY_ID = Buffer.from('be7c4be7c4be7c4be7c4be7c4be7c4be7c4be7c4', 'hex')
const REQUESTERS = 25
const REQUESTS = 20_000
const ROUND_TRIPS = 300

/**
 * Seconds of CPU this process has used, its garbage collector's helper threads included. Handling runs on one
 * thread, so rates are per CPU-second: on a shared, loaded machine wall-clock time would mostly measure the
 * other processes, and on an idle one it would let the collector's threads work on a second core for free.
 */
function cpuNow(): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1e6
}

/** Resolves once the event loop has turned, after the batched signature check of the burst just received. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** A socket that drops what it sends: the benchmark measures handling, not the kernel. */
function nullSocket(host: string, port: number): DatagramSocket {
  const stats = emptyDatagramStats()
  return {
    local: { host, port },
    stats,
    send(data) {
      stats.packetsSent += 1
      stats.bytesSent += data.length
    },
    onMessage: () => () => {},
    close: () => Promise.resolve(),
  }
}

/** Signed messages whose handler sends nothing (puncture, 249): verification and decoding only. */
async function verifiedPerSecond(): Promise<number> {
  const socket = nullSocket('127.0.0.1', 8090)
  const endpoint = new Ipv8Endpoint({ socket }, { rateLimit: false })
  const settings = {
    strategies: () => [],
    bootstrap: { publicNetwork: false },
    signedRateLimit: false as const,
  }
  const target = new Community({ endpoint, key: PrivateKey.generate() }, COMMUNITY_ID, settings)
  await target.start()
  const packets: Buffer[] = []
  for (let i = 0; i < REQUESTERS; i++) {
    const sender = new Community(
      {
        endpoint: new Ipv8Endpoint({ socket: nullSocket(`127.0.1.${i + 1}`, 8090) }),
        key: PrivateKey.generate(),
      },
      COMMUNITY_ID,
      settings,
    )
    for (let j = 0; j < REQUESTS / REQUESTERS; j++) {
      const value = { sourceLanAddress: socket.local, sourceWanAddress: socket.local, identifier: j }
      packets.push(sender.createSigned(PuncturePayload, value))
    }
  }
  const from = { host: '127.0.1.1', port: 8090 }
  const start = cpuNow()
  for (const data of packets) endpoint.receive(data, from)
  // signatures of a burst are checked together when the event loop turns: the time includes that
  await nextTurn()
  const seconds = cpuNow() - start
  const handled = target.statistics.messages.get(PuncturePayload.msgId)?.packetsIn ?? 0
  await target.stop()
  if (handled !== packets.length || endpoint.stats.drops.rejected !== 0)
    throw new Error('puncture packets were dropped')
  return packets.length / seconds
}

/**
 * Introduction-requests handled per CPU-second. Each sender's requests come one after another (a burst from one
 * peer), or, `interleaved`, the senders take turns, so every batch of signatures spans many keys.
 */
async function handledPerSecond(
  interleaved = false,
): Promise<{ perSec: number; wallPerSec: number; responses: number }> {
  const socket = nullSocket('127.0.0.1', 8090)
  const endpoint = new Ipv8Endpoint({ socket }, { rateLimit: false })
  const settings = {
    strategies: () => [],
    bootstrap: { publicNetwork: false },
    signedRateLimit: false as const,
  }
  const target = new Community(
    { endpoint, key: PrivateKey.generate(), random: seededRandom(1) },
    COMMUNITY_ID,
    settings,
  )
  await target.start()
  const packets: Array<[Buffer, SocketAddress]> = []
  for (let i = 0; i < REQUESTERS; i++) {
    const address = { host: `127.0.1.${i + 1}`, port: 8090 }
    const sender = new Community(
      {
        endpoint: new Ipv8Endpoint({ socket: nullSocket(address.host, address.port) }),
        key: PrivateKey.generate(),
      },
      COMMUNITY_ID,
      settings,
    )
    for (let j = 0; j < REQUESTS / REQUESTERS; j++) {
      packets.push([sender.createIntroductionRequest(socket.local, false), address])
    }
  }
  if (interleaved) {
    const perSender = REQUESTS / REQUESTERS
    const turns = packets.map((_, k) => packets[(k % REQUESTERS) * perSender + Math.floor(k / REQUESTERS)])
    packets.splice(0, packets.length, ...(turns as Array<[Buffer, SocketAddress]>))
  }
  for (const [data, from] of packets.slice(0, 1000)) endpoint.receive(data, from)
  await nextTurn()
  const sentBefore = socket.stats.packetsSent
  const start = cpuNow()
  const wallStart = performance.now()
  for (const [data, from] of packets) endpoint.receive(data, from)
  await nextTurn()
  const seconds = cpuNow() - start
  const wallSeconds = (performance.now() - wallStart) / 1000
  const responses = socket.stats.packetsSent - sentBefore
  await target.stop()
  if (endpoint.stats.drops.rejected !== 0) throw new Error('the benchmark packets were rejected')
  return { perSec: packets.length / seconds, wallPerSec: packets.length / wallSeconds, responses }
}

/**
 * The cost of the two signature operations alone, in a tight loop with one key and one message: every
 * introduction-request costs one verify and one sign, so 1 / (verify + sign) bounds what any implementation can
 * handle on this core with the same Ed25519 library.
 */
function cryptoPerSecond(): { verify: number; sign: number } {
  const key = PrivateKey.generate()
  const message = Buffer.alloc(160, 7)
  const signature = key.sign(message)
  const rounds = 5_000
  let start = cpuNow()
  for (let i = 0; i < rounds; i++) if (!key.publicKey.verify(message, signature)) throw new Error('verify')
  const verify = rounds / (cpuNow() - start)
  start = cpuNow()
  for (let i = 0; i < rounds; i++) key.sign(message)
  const sign = rounds / (cpuNow() - start)
  return { verify, sign }
}

async function roundTrips(): Promise<number[]> {
  const [a, b] = await Promise.all([
    udpTransport.bind({ host: '127.0.0.1' }),
    udpTransport.bind({ host: '127.0.0.1' }),
  ])
  const settings = {
    strategies: () => [],
    bootstrap: { publicNetwork: false },
    signedRateLimit: false as const,
  }
  const alice = new Community(
    { endpoint: new Ipv8Endpoint({ socket: a }), key: PrivateKey.generate() },
    COMMUNITY_ID,
    settings,
  )
  const bob = new Community(
    { endpoint: new Ipv8Endpoint({ socket: b }), key: PrivateKey.generate() },
    COMMUNITY_ID,
    settings,
  )
  await alice.start()
  await bob.start()
  const samples: number[] = []
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const answered = new Promise<void>((resolve) => {
      const off = alice.events.on('introduction-response', () => {
        off()
        resolve()
      })
    })
    const start = performance.now()
    alice.walkTo(b.local)
    await answered
    samples.push(performance.now() - start)
  }
  await alice.stop()
  await bob.stop()
  await Promise.all([a.close(), b.close()])
  return samples.sort((x, y) => x - y)
}

const PYTHON_REFERENCE = `
import os, sys, time, json
sys.path.insert(0, os.environ["PY_IPV8_DIR"])
import logging
logging.disable(logging.CRITICAL)
from ipv8.community import Community, CommunitySettings
from ipv8.keyvault.crypto import default_eccrypto
from ipv8.peer import Peer
from ipv8.peerdiscovery.network import Network
from ipv8.test.mocking.endpoint import AutoMockEndpoint

class NullEndpoint(AutoMockEndpoint):
    sent = 0
    def send(self, socket_address, packet):
        NullEndpoint.sent += 1

class Bench(Community):
    community_id = bytes.fromhex("${COMMUNITY_ID.toString('hex')}")

def make():
    ep = NullEndpoint()
    ep._open = True
    key = default_eccrypto.generate_key("curve25519")
    return Bench(CommunitySettings(my_peer=Peer(key), endpoint=ep, network=Network(), max_peers=30)), ep

target, target_ep = make()
packets = []
for i in range(${REQUESTERS}):
    sender, sender_ep = make()
    for j in range(${REQUESTS / REQUESTERS}):
        packets.append((sender_ep.wan_address, sender.create_introduction_request(target_ep.wan_address)))
for p in packets[:1000]:
    target.on_packet(p)
before = NullEndpoint.sent
start = time.process_time()
for p in packets:
    target.on_packet(p)
seconds = time.process_time() - start
print(json.dumps({"perSec": len(packets) / seconds, "responses": NullEndpoint.sent - before}))
`

function pythonReference(): { perSec: number; responses: number } | string {
  const dir = process.env.PY_IPV8_DIR
  if (dir === undefined || !existsSync(dir)) {
    return 'py-ipv8 reference not measured: set PY_IPV8_DIR to a py-ipv8 checkout (241d0c2, pure Python)'
  }
  const run = spawnSync('/usr/bin/python3', ['-c', PYTHON_REFERENCE], {
    env: { ...process.env, PY_IPV8_DIR: dir },
    encoding: 'utf8',
    timeout: 300_000,
  })
  const line = run.stdout?.trim().split('\n').at(-1)
  if (run.status !== 0 || line === undefined || line === '') {
    return `py-ipv8 reference failed to run: ${(run.stderr ?? '').trim().split('\n').at(-1) ?? run.status}`
  }
  return JSON.parse(line) as { perSec: number; responses: number }
}

const crypto = cryptoPerSecond()
const ceiling = 1 / (1 / crypto.verify + 1 / crypto.sign)
const verified = await verifiedPerSecond()
// a first full round warms the JIT up, so the order of the two measured rounds does not matter
await handledPerSecond()
const ours = await handledPerSecond()
const oursInterleaved = await handledPerSecond(true)
const rtt = await roundTrips()
const theirs = pythonReference()
const pct = (q: number): number => rtt[Math.min(rtt.length - 1, Math.floor(q * rtt.length))] ?? Number.NaN

console.log(
  `ipv8: ${REQUESTS} signed messages from ${REQUESTERS} peers; rates per CPU-second of one core (load ${loadavg()[0]?.toFixed(2)})`,
)
console.log(
  `ed25519   ${Math.round(crypto.verify).toLocaleString('en')} verifies /s, ${Math.round(crypto.sign).toLocaleString('en')} signs /s` +
    `   libsodium alone (one single verify + one sign per request) would cap at ${Math.round(ceiling).toLocaleString('en')} /s`,
)
console.log(
  `verified  tribler-ts ${Math.round(verified).toLocaleString('en')} signed punctures /s (verify + decode + handler)`,
)
console.log(
  `handled   tribler-ts ${Math.round(ours.perSec).toLocaleString('en')} introduction-requests /s (${ours.responses} datagrams sent back)` +
    `   target ${TARGET_PER_SEC.toLocaleString('en')} /s   ratio to target ${(ours.perSec / TARGET_PER_SEC).toFixed(2)}x` +
    `   ${Math.round((100 * ours.perSec) / ceiling)}% of that single-verify cap (batched verification)` +
    `   (wall clock ${Math.round(ours.wallPerSec).toLocaleString('en')} /s)`,
)
console.log(
  `handled   tribler-ts ${Math.round(oursInterleaved.perSec).toLocaleString('en')} introduction-requests /s with the ${REQUESTERS} senders taking turns` +
    `   ratio to target ${(oursInterleaved.perSec / TARGET_PER_SEC).toFixed(2)}x`,
)
if (typeof theirs === 'string') {
  console.log(theirs)
} else {
  console.log(
    `handled   py-ipv8    ${Math.round(theirs.perSec).toLocaleString('en')} introduction-requests /s (${theirs.responses} datagrams sent back)` +
      `   ratio tribler-ts / py-ipv8 ${(ours.perSec / theirs.perSec).toFixed(2)}x (senders taking turns ${(oursInterleaved.perSec / theirs.perSec).toFixed(2)}x)`,
  )
}
console.log(
  `introduction round trip on UDP loopback (${ROUND_TRIPS} walks): median ${pct(0.5).toFixed(3)} ms, p99 ${pct(0.99).toFixed(3)} ms` +
    ' (py-ipv8 round trip not measured)',
)
