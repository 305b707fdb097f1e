import { Ipv8Service, type TunnelCommunity } from '../../ipv8/index.js'
import { ApiError } from '../errors.js'
import { COMMON_ERRORS } from '../schemas.js'
import type { RouteModule } from '../types.js'

const array = (items: Record<string, unknown>) => ({ type: 'array', items }) as const
const obj = (properties: Record<string, unknown>, required = Object.keys(properties)) =>
  ({ type: 'object', properties, required }) as const
const INT = { type: 'integer' } as const
/** py-ipv8's circuit type names. */
const CIRCUIT_TYPE_NAMES = {
  data: 'DATA',
  'ip-seeder': 'IP_SEEDER',
  'rp-seeder': 'RP_SEEDER',
  'rp-downloader': 'RP_DOWNLOADER',
} as const

/** py-ipv8's state names. */
const STATE_NAMES = { extending: 'EXTENDING', ready: 'READY', closing: 'CLOSING' } as const

/**
 * The tunnel routes: `/debug/circuits` and `/debug/circuits/slots` (REST contract §9) and py-ipv8's
 * `/ipv8/tunnel/circuits|relays|exits` (§13). All answer 404 while the tunnel community is not running.
 */
export const tunnelRoutes: RouteModule = (app, { session }) => {
  const tunnels = (): TunnelCommunity => {
    const ipv8 = session.service('ipv8')
    const community = ipv8 instanceof Ipv8Service ? ipv8.tunnels : undefined
    if (community === undefined || !community.running)
      throw new ApiError('NOT_FOUND', {}, 'tunnel community not found')
    return community
  }

  app.get(
    '/debug/circuits',
    {
      schema: {
        tags: ['debug'],
        summary: 'The circuits this node built',
        description: 'Only the first hop of a circuit has a known address; later hops show `unknown`.',
        response: {
          200: obj({
            circuits: array(
              obj({
                id: INT,
                state: { type: 'string' },
                goal_hops: INT,
                bytes_up: INT,
                bytes_down: INT,
                created: { type: 'number' },
                hops: array(obj({ host: { type: 'string' } })),
              }),
            ),
          }),
          ...COMMON_ERRORS,
        },
      },
    },
    () => ({
      circuits: [...tunnels().circuits.values()].map((c) => ({
        id: c.circuitId,
        state: STATE_NAMES[c.state],
        goal_hops: c.goalHops,
        bytes_up: c.bytesUp,
        bytes_down: c.bytesDown,
        created: c.createdAtMs / 1000,
        hops: c.hops.map((hop) => ({
          host: hop.address === undefined ? 'unknown' : `${hop.address.host}:${hop.address.port}`,
        })),
      })),
    }),
  )

  app.get(
    '/debug/circuits/slots',
    {
      schema: {
        tags: ['debug'],
        summary: "Slots that admit other nodes' circuits to this relay or exit",
        description:
          'Random slots hold the circuit id that took them or null; competing slots are `[balance, circuit id ' +
          'or null]`. A create is answered only if its circuit gets a slot: a free random slot first, else a ' +
          'free competing slot, else the competing slot with the lowest balance if the initiator has a higher ' +
          'one (that circuit is destroyed), else the create is refused. Slots free when the relay or exit ' +
          'goes. This node keeps no bandwidth ledger, so every balance is 0: competing slots go first come, ' +
          'first served. Sized by `tunnel_community.random_slots` and `competing_slots` at start.',
        response: {
          200: obj({
            slots: obj({
              random: array({ type: ['integer', 'null'] }),
              competing: array({
                type: 'array',
                items: { type: ['integer', 'null'] },
                minItems: 2,
                maxItems: 2,
              }),
            }),
          }),
          ...COMMON_ERRORS,
        },
      },
    },
    () => {
      const slots = tunnels().slots
      return {
        slots: {
          random: (slots?.random ?? []).map((id) => id ?? null),
          competing: (slots?.competing ?? []).map((s) => [s.balance, s.circuitId ?? null]),
        },
      }
    },
  )

  app.get(
    '/ipv8/tunnel/circuits',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'Circuits this node built (py-ipv8 view)',
        response: {
          200: obj({
            circuits: array(
              obj({
                circuit_id: INT,
                goal_hops: INT,
                actual_hops: INT,
                type: { type: 'string' },
                state: { type: 'string' },
                bytes_up: INT,
                bytes_down: INT,
              }),
            ),
          }),
          ...COMMON_ERRORS,
        },
      },
    },
    () => ({
      circuits: [...tunnels().circuits.values()].map((c) => ({
        circuit_id: c.circuitId,
        goal_hops: c.goalHops,
        actual_hops: c.hops.length,
        type: CIRCUIT_TYPE_NAMES[c.purpose],
        state: STATE_NAMES[c.state],
        bytes_up: c.bytesUp,
        bytes_down: c.bytesDown,
      })),
    }),
  )

  app.get(
    '/ipv8/tunnel/relays',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'Relay routes this node carries for others',
        response: {
          200: obj({
            relays: array(
              obj({
                circuit_from: INT,
                circuit_to: INT,
                is_rendezvous: { type: 'boolean' },
                bytes_up: INT,
                bytes_down: INT,
              }),
            ),
          }),
          ...COMMON_ERRORS,
        },
      },
    },
    () => ({
      relays: [...tunnels().relays].map(([from, route]) => ({
        circuit_from: from,
        circuit_to: route.circuitId,
        is_rendezvous: false,
        bytes_up: route.bytesUp,
        bytes_down: route.bytesDown,
      })),
    }),
  )

  app.get(
    '/ipv8/tunnel/exits',
    {
      schema: {
        tags: ['ipv8'],
        summary: 'Exit sockets (last hops of other nodes’ circuits)',
        response: {
          200: obj({
            exits: array(
              obj({ circuit_from: INT, enabled: { type: 'boolean' }, bytes_up: INT, bytes_down: INT }),
            ),
          }),
          ...COMMON_ERRORS,
        },
      },
    },
    () => ({
      exits: [...tunnels().exitSockets.values()].map((exit) => ({
        circuit_from: exit.circuitId,
        enabled: exit.enabled,
        bytes_up: exit.bytesUp,
        bytes_down: exit.bytesDown,
      })),
    }),
  )
}
