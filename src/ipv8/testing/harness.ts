import { ManualClock } from '../../common/index.js'
import {
  type DatagramSocket,
  type DatagramTransport,
  MemoryNetwork,
  type SocketAddress,
  seededRandom,
} from '../../net/index.js'
import type { Community, CommunityDeps } from '../community/index.js'
import { type EndpointOptions, Ipv8Endpoint } from '../endpoint/index.js'
import { PrivateKey } from '../keys/index.js'

/** One node of a {@link OverlayTestNetwork}. */
export interface TestNode<C extends Community> {
  readonly index: number
  readonly socket: DatagramSocket
  readonly endpoint: Ipv8Endpoint
  readonly key: PrivateKey
  readonly community: C
}

/** Options of {@link OverlayTestNetwork.create}. */
export interface OverlayTestOptions {
  /** Where sockets come from; default a MemoryNetwork driven by the manual clock. */
  transport?: DatagramTransport
  /** Clock of the communities; default a ManualClock (then use {@link OverlayTestNetwork.advance}). */
  clock?: ManualClock | undefined
  /** Seed of every node's random source. */
  seed?: number
  /** One-way latency of the default memory network (default 5 ms). */
  latencyMs?: number
  endpoint?: EndpointOptions
  /** Host of node i; default `127.0.0.${i + 1}`. */
  hostOf?: (index: number) => string
  port?: number
}

/**
 * N overlay nodes, each on its own 127.0.0.x address, for scenario tests (py-ipv8's TestBase).
 *
 * @example
 * ```ts
 * const net = await OverlayTestNetwork.create(20, (deps, i, boot) => new Community(deps, ID, { bootstrap: boot }))
 * net.advance(30_000)
 * ```
 */
export class OverlayTestNetwork<C extends Community> {
  readonly nodes: TestNode<C>[]
  readonly clock: ManualClock | undefined
  readonly memory: MemoryNetwork | undefined

  private constructor(
    nodes: TestNode<C>[],
    clock: ManualClock | undefined,
    memory: MemoryNetwork | undefined,
  ) {
    this.nodes = nodes
    this.clock = clock
    this.memory = memory
  }

  /**
   * Binds `count` sockets and builds one community per node with `factory`; `bootstrap` is the address of node 0
   * (node 0 itself gets none). Communities are not started.
   */
  static async create<C extends Community>(
    count: number,
    factory: (deps: CommunityDeps, index: number, bootstrap: SocketAddress[]) => C,
    opts: OverlayTestOptions = {},
  ): Promise<OverlayTestNetwork<C>> {
    const clock = opts.transport === undefined ? (opts.clock ?? new ManualClock()) : opts.clock
    const memory =
      opts.transport === undefined
        ? new MemoryNetwork({ clock, latencyMs: opts.latencyMs ?? 5, seed: opts.seed ?? 1 })
        : undefined
    const transport = opts.transport ?? (memory as MemoryNetwork)
    const hostOf = opts.hostOf ?? ((i: number) => `127.0.0.${i + 1}`)
    const sockets: DatagramSocket[] = []
    for (let i = 0; i < count; i++)
      sockets.push(await transport.bind({ host: hostOf(i), port: opts.port ?? 0 }))
    const first = sockets[0]?.local
    const nodes = sockets.map((socket, index) => {
      const endpoint = new Ipv8Endpoint({ socket, ...(clock && { clock }) }, opts.endpoint)
      const key = PrivateKey.generate()
      const random = seededRandom((opts.seed ?? 1) * 1000 + index)
      // never the public network: no trackers, no LAN broadcast (explicit bootstrappers still work)
      const deps: CommunityDeps = { endpoint, key, random, publicNetwork: false, ...(clock && { clock }) }
      const community = factory(deps, index, index === 0 || first === undefined ? [] : [first])
      return { index, socket, endpoint, key, community }
    })
    return new OverlayTestNetwork(nodes, clock, memory)
  }

  node(index: number): TestNode<C> {
    const node = this.nodes[index]
    if (node === undefined) throw new RangeError(`no node ${index}`)
    return node
  }

  async startAll(): Promise<void> {
    for (const node of this.nodes) await node.community.start()
  }

  /** Moves the manual clock forward in steps, delivering datagrams and firing timers as it goes. */
  advance(ms: number, stepMs = 50): void {
    const clock = this.clock
    if (clock === undefined) throw new RangeError('this network runs on real time')
    for (let done = 0; done < ms; done += stepMs) clock.advance(Math.min(stepMs, ms - done))
  }

  /** The smallest number of peers any node knows. */
  get minPeers(): number {
    return Math.min(...this.nodes.map((node) => node.community.network.size))
  }

  async stopAll(): Promise<void> {
    for (const node of this.nodes) {
      await node.community.stop()
      node.endpoint.close()
      await node.socket.close()
    }
  }
}

/** A {@link ManualClock} driven for async tests: see {@link manualTime}. */
export interface ManualTime {
  readonly clock: ManualClock
  /** Advances the clock `ms` in steps of `stepMs` (default 50), letting the event loop turn after each step. */
  run(ms: number, stepMs?: number): Promise<void>
  /** Runs the clock until `promise` settles, and returns its value; throws after `maxMs` (default 40 s) of clock time. */
  settle<T>(promise: Promise<T>, maxMs?: number): Promise<T>
}

/** Drives `clock` for tests whose nodes run on manual time but await real promises. */
export function manualTime(clock: ManualClock): ManualTime {
  const run = async (ms: number, stepMs = 50): Promise<void> => {
    for (let done = 0; done < ms; done += stepMs) {
      clock.advance(stepMs)
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  const settle = async <T>(promise: Promise<T>, maxMs = 40_000): Promise<T> => {
    let result: { value: T } | undefined
    let failure: { error: unknown } | undefined
    promise.then(
      (value) => {
        result = { value }
      },
      (error: unknown) => {
        failure = { error }
      },
    )
    for (let t = 0; t < maxMs && result === undefined && failure === undefined; t += 100) await run(100)
    if (failure !== undefined) throw failure.error
    if (result === undefined) throw new Error('did not settle')
    return result.value
  }
  return { clock, run, settle }
}
