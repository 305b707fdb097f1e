import {
  type Community,
  type DHTDiscoveryCommunity,
  DhtError,
  DiscoveryCommunity,
  Ipv8Service,
  type Peer,
} from '../../ipv8/index.js'
import { ApiError, HandledError } from '../errors.js'
import { type FormParams, formString } from '../form.js'
import { COMMON_ERRORS, PLAIN_ERROR, STRUCTURED_ERROR } from '../schemas.js'
import type { RouteModule } from '../types.js'

const ANY_OBJECT = { type: 'object', additionalProperties: true } as const

/** `Peer<ip:port, base64 mid>`, py-ipv8's `str(Peer)`. */
function peerText(peer: Peer): string {
  return `Peer<${peer.address.host}:${peer.address.port}, ${peer.mid.toString('base64')}>`
}

const HEX_20 = /^[0-9a-fA-F]{40}$/

/** A DHT failure as the reference reports it: structured, handled, named after its exception class. */
function dhtFailure(err: unknown): unknown {
  return err instanceof DhtError ? new HandledError('DHTError', err.message) : err
}

/**
 * The IPv8 routes (REST contract §8 `/statistics/ipv8` and §13): the network, the overlays and their message
 * statistics, and the DHT. `/ipv8/*` answers 404 while IPv8 is disabled or not running, `/ipv8/dht/*` while the
 * DHT is off.
 */
export const ipv8Routes: RouteModule = (app, { session }) => {
  const service = (): Ipv8Service | undefined => {
    const found = session.service('ipv8')
    return found instanceof Ipv8Service ? found : undefined
  }
  const running = (): Ipv8Service => {
    const ipv8 = service()
    if (ipv8 === undefined || ipv8.endpoint === undefined)
      throw new ApiError('NOT_FOUND', {}, 'IPv8 is not running')
    return ipv8
  }

  app.get(
    '/statistics/ipv8',
    {
      schema: {
        tags: ['statistics'],
        summary: 'IPv8 bytes up and down and uptime',
        response: {
          200: {
            type: 'object',
            properties: {
              ipv8_statistics: {
                type: 'object',
                properties: {
                  total_up: { type: 'integer' },
                  total_down: { type: 'integer' },
                  session_uptime: { type: 'number' },
                },
              },
            },
            required: ['ipv8_statistics'],
          },
          ...COMMON_ERRORS,
        },
      },
    },
    () => ({ ipv8_statistics: service()?.statistics() ?? {} }),
  )

  const dht = (): DHTDiscoveryCommunity => {
    const community = running().dht
    if (community === undefined || !community.running)
      throw new ApiError('NOT_FOUND', {}, 'DHT community not found')
    return community
  }
  const hexParam = (value: string, what: string): Buffer => {
    if (!HEX_20.test(value)) throw new ApiError('BAD_REQUEST', {}, `${what} must be 40 hex characters`)
    return Buffer.from(value, 'hex')
  }
  const DHT_ERRORS = {
    ...COMMON_ERRORS,
    400: { description: 'the key or mid is not 40 hex characters', ...PLAIN_ERROR },
    500: { description: 'structured `DHTError`: no node answered or took the value', ...STRUCTURED_ERROR },
  }

  app.get(
    '/ipv8/dht/statistics',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'The DHT routing table and stores',
        response: { 200: { type: 'object', properties: { statistics: ANY_OBJECT } }, ...COMMON_ERRORS },
      },
    },
    () => {
      const community = dht()
      const stats = community.dhtStatistics()
      const peers = community.peerStoreCounts()
      return {
        statistics: {
          node_id: stats.nodeId.toString('hex'),
          peer_id: community.myMid.toString('hex'),
          routing_table_size: stats.routingTableSize,
          routing_table_buckets: stats.routingTableBuckets,
          num_keys_in_store: stats.keysInStore,
          num_tokens: stats.tokens,
          num_peers_in_store: peers.stored,
          num_store_for_me: peers.storeForMe,
        },
      }
    },
  )

  app.get(
    '/ipv8/dht/peers/:mid',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'Where a peer (by hex member id) can be reached, through the DHT',
        response: {
          200: { type: 'object', properties: { peers: { type: 'array', items: ANY_OBJECT } } },
          ...DHT_ERRORS,
        },
      },
    },
    async (request) => {
      const community = dht()
      const mid = hexParam((request.params as { mid: string }).mid, 'mid')
      const nodes = await community.connectPeer(mid).catch((err: unknown) => {
        throw dhtFailure(err)
      })
      return {
        peers: nodes.map((n) => ({
          public_key: n.publicKey.toBin().toString('base64'),
          address: [n.address.host, n.address.port],
        })),
      }
    },
  )

  app.get(
    '/ipv8/dht/values/:key',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'The values stored in the DHT under a hex key',
        response: {
          200: { type: 'object', properties: { values: { type: 'array', items: ANY_OBJECT } } },
          ...DHT_ERRORS,
        },
      },
    },
    async (request) => {
      const community = dht()
      const key = hexParam((request.params as { key: string }).key, 'key')
      const values = await community.findValues(key).catch((err: unknown) => {
        throw dhtFailure(err)
      })
      return {
        values: values.map((v) => ({
          public_key: v.publicKey === undefined ? null : v.publicKey.toString('base64'),
          value: v.data.toString('hex'),
        })),
      }
    },
  )

  app.put(
    '/ipv8/dht/values/:key',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'Store a value (form field `value`, hex) in the DHT under a hex key, signed with our key',
        response: {
          200: { type: 'object', properties: { stored: { type: 'boolean' } }, required: ['stored'] },
          ...DHT_ERRORS,
          400: {
            description: 'no `value`, or key or value not hex ("incorrect parameters")',
            ...PLAIN_ERROR,
          },
        },
      },
    },
    async (request) => {
      const community = dht()
      const key = hexParam((request.params as { key: string }).key, 'key')
      const body = (
        typeof request.body === 'object' && request.body !== null ? request.body : {}
      ) as FormParams
      const value = formString(body, 'value') ?? formString(request.query as FormParams, 'value')
      if (value === undefined || !/^([0-9a-fA-F]{2})*$/.test(value))
        throw new ApiError('BAD_REQUEST', {}, 'incorrect parameters')
      await community.storeValue(key, Buffer.from(value, 'hex'), { sign: true }).catch((err: unknown) => {
        throw dhtFailure(err)
      })
      return { stored: true }
    },
  )

  app.get(
    '/ipv8/network',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'Verified peers of every overlay, keyed by base64 member id',
        response: {
          200: { type: 'object', properties: { peers: ANY_OBJECT }, required: ['peers'] },
          ...COMMON_ERRORS,
        },
      },
    },
    () => {
      const ipv8 = running()
      const discovery = ipv8.overlays.find((o): o is DiscoveryCommunity => o instanceof DiscoveryCommunity)
      const peers: Record<string, { ip: string; port: number; public_key: string; services: string[] }> = {}
      for (const overlay of ipv8.overlays) {
        for (const peer of overlay.peers) {
          const key = peer.mid.toString('base64')
          const entry = peers[key] ?? {
            ip: peer.address.host,
            port: peer.address.port,
            public_key: peer.publicKey.toBin().toString('base64'),
            services: [],
          }
          peers[key] = entry
          const announced = discovery?.network.getPeer(peer.mid)
          const ids = new Set([
            overlay.communityId.toString('hex'),
            ...(announced ? (discovery?.network.servicesOf(announced) ?? []) : []),
          ])
          for (const id of ids) {
            const b64 = Buffer.from(id, 'hex').toString('base64')
            if (!entry.services.includes(b64)) entry.services.push(b64)
          }
        }
      }
      return { peers }
    },
  )

  app.get(
    '/ipv8/overlays',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'The running overlays and their peers',
        response: {
          200: {
            type: 'object',
            properties: {
              overlays: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    master_peer: { type: 'string' },
                    my_peer: { type: 'string' },
                    global_time: { type: 'integer' },
                    peers: { type: 'array', items: { type: 'string' } },
                    overlay_name: { type: 'string' },
                  },
                },
              },
            },
            required: ['overlays'],
          },
          ...COMMON_ERRORS,
        },
      },
    },
    () => ({
      overlays: running().overlays.map((overlay: Community) => ({
        master_peer: overlay.communityId.toString('hex'),
        my_peer: overlay.myKey.publicKey.toBin().toString('hex'),
        global_time: Number(overlay.globalTime),
        peers: overlay.peers.map(peerText),
        overlay_name: overlay.name,
      })),
    }),
  )

  app.get(
    '/ipv8/overlays/statistics',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'Message counters per overlay since its statistics were enabled, keyed `<msgid>:<name>`',
        description:
          'Each overlay maps to `{}` while its statistics are off (always, when `ipv8.statistics` is off).',
        response: {
          200: {
            type: 'object',
            properties: { statistics: { type: 'array', items: ANY_OBJECT } },
            required: ['statistics'],
          },
          ...COMMON_ERRORS,
        },
      },
    },
    () => {
      const ipv8 = running()
      const supported = ipv8.statisticsSupported
      return {
        statistics: ipv8.overlays.map((overlay) => {
          const { names } = overlay.statistics
          const counters: Record<string, unknown> = {}
          if (!supported) return { [overlay.name]: counters }
          for (const [id, c] of overlay.reportedStatistics) {
            counters[`${id}:${names.get(id) ?? 'unknown'}`] = {
              identifier: id,
              num_up: c.packetsOut,
              num_down: c.packetsIn,
              bytes_up: c.bytesOut,
              bytes_down: c.bytesIn,
              first_measured_up: c.firstMeasuredUp,
              first_measured_down: c.firstMeasuredDown,
              last_measured_up: c.lastMeasuredUp,
              last_measured_down: c.lastMeasuredDown,
            }
          }
          return { [overlay.name]: counters }
        }),
      }
    },
  )

  app.post(
    '/ipv8/overlays/statistics',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'Enable or disable the message statistics of all overlays or of one (by class name)',
        description:
          'Parameters in the query string or a form body: `enable` (`True` enables, anything else disables), ' +
          '`all=True` for every overlay, else `overlay_name`. 412 when `ipv8.statistics` is off.',
        querystring: {
          type: 'object',
          properties: {
            enable: { type: 'string' },
            all: { type: 'string' },
            overlay_name: { type: 'string' },
          },
        },
        response: {
          200: { type: 'object', properties: { success: { type: 'boolean' } }, required: ['success'] },
          400: { type: 'object', properties: { success: { type: 'boolean' }, error: { type: 'string' } } },
          412: { type: 'object', properties: { success: { type: 'boolean' }, error: { type: 'string' } } },
          ...COMMON_ERRORS,
        },
      },
    },
    async (request, reply) => {
      const ipv8 = running()
      if (!ipv8.statisticsSupported) {
        return reply.code(412).send({ success: false, error: 'StatisticsEndpoint is not enabled.' })
      }
      // query parameters first, then the form body, as the reference reads its request arguments
      const body = (
        typeof request.body === 'object' && request.body !== null ? request.body : {}
      ) as FormParams
      const query = request.query as FormParams
      const param = (name: string): string | undefined => formString(query, name) ?? formString(body, name)
      const enable = param('enable')
      if (enable === undefined || enable === '') {
        return reply.code(400).send({ success: false, error: "Parameter 'enable' is required" })
      }
      const all = param('all')
      const overlayName = param('overlay_name')
      let targets: Community[]
      if (all !== undefined && all !== '') targets = all === 'True' ? [...ipv8.overlays] : []
      else if (overlayName !== undefined && overlayName !== '')
        targets = ipv8.overlays.filter((o) => o.name === overlayName)
      else {
        return reply
          .code(412)
          .send({ success: false, error: "Parameter 'all' or 'overlay_name' is required" })
      }
      for (const overlay of targets) overlay.enableStatistics(enable === 'True')
      return { success: true }
    },
  )
}
