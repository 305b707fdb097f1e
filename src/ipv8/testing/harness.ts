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
