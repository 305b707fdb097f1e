import { ConfigError } from '../../config/index.js'
import { ApiError, HandledError } from '../errors.js'
import { COMMON_ERRORS, PLAIN_ERROR, STRUCTURED_ERROR } from '../schemas.js'
import type { RouteModule } from '../types.js'

const SETTINGS_TREE = {
  type: 'object',
  description: 'section → key → value; see docs/configuration.md',
  additionalProperties: { type: 'object', additionalProperties: true },
} as const

/** `GET /settings` and `POST /settings` (REST contract §3). */
export const settingsRoutes: RouteModule = (app, { session }) => {
  app.get(
    '/settings',
    {
      schema: {
        tags: ['settings'],
        summary: 'The whole settings tree and the ports chosen at runtime',
        response: {
          200: {
            type: 'object',
            properties: {
              settings: SETTINGS_TREE,
              ports: {
                type: 'object',
                description: '`section~key` → port picked at runtime (always includes `http_api~port`)',
                additionalProperties: { type: 'integer' },
              },
            },
            required: ['settings', 'ports'],
          },
          ...COMMON_ERRORS,
        },
      },
    },
    () => ({ settings: session.config.tree(), ports: session.ports.entries() }),
  )

  app.post(
    '/settings',
    {
      config: { jsonBody: true },
      schema: {
        tags: ['settings'],
        summary: 'Change settings: a JSON object with only the keys to change; all or nothing',
        description:
          'The body is JSON whatever its Content-Type. Every leaf is validated before anything is applied; the ' +
          'file is then written atomically. An unknown section or key, or an object where a value belongs, is ' +
          '500 with the structured body and code `ValueError` (as the reference); a value of the wrong type or ' +
          'out of range is 400 with the plain body. Either way nothing changes.',
        body: SETTINGS_TREE,
        response: {
          200: { type: 'object', properties: { modified: { type: 'boolean' } }, required: ['modified'] },
          400: { description: 'wrong type, out of range, or not a JSON object', ...PLAIN_ERROR },
          500: {
            description: 'unknown section or key (code ValueError), or the file could not be written',
            ...STRUCTURED_ERROR,
          },
          401: COMMON_ERRORS[401],
          404: COMMON_ERRORS[404],
        },
      },
    },
    (request) => {
      try {
        session.updateSettings(request.body)
      } catch (err) {
        throw settingsError(err)
      }
      return { modified: true }
    },
  )
}

function settingsError(err: unknown): unknown {
  if (!(err instanceof ConfigError)) return err
  const { section, key } = err.details as { section?: string; key?: string }
  switch (err.code) {
    case 'UNKNOWN_SECTION':
    case 'UNKNOWN_KEY':
    case 'TOO_DEEP':
      return new HandledError(
        'ValueError',
        `Section ${section} with option ${key ?? ''} does not exist`,
        false,
      )
    case 'NOT_AN_OBJECT':
      return section === undefined
        ? new ApiError('BAD_REQUEST', {}, 'the body must be a JSON object of sections')
        : new HandledError('ValueError', `Section ${section} must be an object of options`, false)
    case 'WRITE_FAILED':
      return new HandledError('IOError', err.message)
    default:
      return new ApiError('BAD_REQUEST', {}, err.message)
  }
}
