import { type Community, DiscoveryCommunity, Ipv8Service, type Peer } from '../../ipv8/index.js'
import { ApiError } from '../errors.js'
import { COMMON_ERRORS } from '../schemas.js'
import type { RouteModule } from '../types.js'

const ANY_OBJECT = { type: 'object', additionalProperties: true } as const

/** `Peer<ip:port, base64 mid>`, py-ipv8's `str(Peer)`. */
function peerText(peer: Peer): string {
  return `Peer<${peer.address.host}:${peer.address.port}, ${peer.mid.toString('base64')}>`
}

/**
 * The IPv8 routes (REST contract §8 `/statistics/ipv8` and §13): the network, the overlays and their message
 * statistics. `/ipv8/*` answers 404 while IPv8 is disabled or not running.
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
        summary: 'Message counters per overlay, keyed `<msgid>:<name>`',
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
    () => ({
      statistics: running().overlays.map((overlay) => {
        const { messages, names } = overlay.statistics
        const counters: Record<string, unknown> = {}
        for (const [id, c] of messages) {
          counters[`${id}:${names.get(id) ?? 'unknown'}`] = {
            identifier: id,
            num_up: c.packetsOut,
            num_down: c.packetsIn,
            bytes_up: c.bytesOut,
            bytes_down: c.bytesIn,
          }
        }
        return { [overlay.name]: counters }
      }),
    }),
  )

  app.post(
    '/ipv8/overlays/statistics',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'Enable or disable statistics (they are always collected here)',
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
      const query = request.query as { enable?: string; all?: string; overlay_name?: string }
      if (query.enable === undefined) {
        return reply.code(400).send({ success: false, error: "Parameter 'enable' is required" })
      }
      const known = ipv8.overlays.some((o) => o.name === query.overlay_name)
      if (query.all !== 'True' && !known) {
        return reply
          .code(412)
          .send({ success: false, error: "Parameter 'all' or 'overlay_name' is required" })
      }
      return { success: true }
    },
  )
}
