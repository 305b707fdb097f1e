import { COMMON_ERRORS } from '../schemas.js'
import type { RouteModule } from '../types.js'

const STATE = {
  type: 'object',
  properties: {
    state: { type: 'string', enum: ['STARTING', 'UPGRADING', 'STARTED', 'EXCEPTION'] },
    last_exception: { type: ['string', 'null'] },
    readable_state: { type: 'string' },
  },
  required: ['state', 'last_exception', 'readable_state'],
} as const

/** `GET /state`, `PUT /shutdown` and `GET /events` (REST contract §2): answered from the first moment. */
export const coreRoutes: RouteModule = (app, { session, events }) => {
  app.get(
    '/state',
    {
      config: { early: true },
      schema: {
        tags: ['core'],
        summary: 'The core state and the current start-up step',
        response: { 200: STATE, ...COMMON_ERRORS },
      },
    },
    () => session.state,
  )

  app.put(
    '/shutdown',
    {
      config: { early: true },
      schema: {
        tags: ['core'],
        summary: 'Shut the core down; answers before the shutdown begins',
        response: {
          200: { type: 'object', properties: { shutdown: { type: 'boolean' } }, required: ['shutdown'] },
          ...COMMON_ERRORS,
        },
      },
    },
    () => {
      session.shutdown()
      return { shutdown: true }
    },
  )

  app.get(
    '/events',
    {
      config: { early: true },
      schema: {
        tags: ['core'],
        summary: 'Never-ending stream of notifications, one JSON object per line',
        description:
          'The first line is `{"type": "events_start", "event": {"tribler_started": bool, "version": string}}`; ' +
          'then `{"type": name, "event": payload}` for every notification (see the REST contract §2). ' +
          'A listener that stops reading is dropped.',
        produces: ['application/x-ndjson'],
        response: {
          200: {
            description: 'newline-delimited JSON objects',
            type: 'object',
            properties: { type: { type: 'string' }, event: {} },
          },
          ...COMMON_ERRORS,
        },
      },
    },
    (request, reply) => {
      // the response outlives the handler: fastify's serialisation and hooks are bypassed from here on
      reply.hijack()
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(reply.getHeaders())) {
        if (typeof value === 'string') headers[name] = value
      }
      events.add(reply.raw, { tribler_started: session.isStarted, version: session.version }, headers)
      request.raw.socket.setTimeout(0)
    },
  )
}
