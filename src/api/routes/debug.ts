import { COMMON_ERRORS } from '../schemas.js'
import type { RouteModule } from '../types.js'

const DEFAULT_LOG_LINES = 100

/** `GET /debug/log` (REST contract §9): the tail of the core or GUI log file. */
export const debugLogRoutes: RouteModule = (app, { session }) => {
  app.get(
    '/debug/log',
    {
      schema: {
        tags: ['debug'],
        summary: 'The last lines of the core (or GUI) log',
        description:
          'A missing or non-integer `max_lines` gives the last 100 lines and `max_lines: 0` (as the reference).',
        querystring: {
          type: 'object',
          properties: {
            process: { type: 'string', enum: ['core', 'gui'], default: 'core' },
            max_lines: { type: 'string' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { content: { type: 'string' }, max_lines: { type: 'integer' } },
            required: ['content', 'max_lines'],
          },
          ...COMMON_ERRORS,
        },
      },
    },
    (request) => {
      const query = request.query as { process?: 'core' | 'gui'; max_lines?: string }
      const asked =
        query.max_lines !== undefined && /^\d+$/.test(query.max_lines) ? Number(query.max_lines) : 0
      const content = session.readLog(query.process ?? 'core', asked > 0 ? asked : DEFAULT_LOG_LINES)
      return { content, max_lines: content === '' ? 0 : asked }
    },
  )
}
