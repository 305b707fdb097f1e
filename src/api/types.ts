import type { FastifyInstance } from 'fastify'
import type { Session } from '../session/index.js'
import type { EventStream } from './event-stream.js'

declare module 'fastify' {
  /** OpenAPI fields of a route schema (see `openapi.ts`). */
  interface FastifySchema {
    /** Leave the route out of the OpenAPI description. */
    hide?: boolean
    tags?: readonly string[]
    summary?: string
    description?: string
    /** Content types of the 200 response, when not JSON. */
    produces?: readonly string[]
  }

  interface FastifyContextConfig {
    /** Answered before the core is STARTED (`/state`, `/events`, `/shutdown`); every other route is late. */
    early?: boolean
    /** The body is JSON (only `POST /settings`); every other body is read as a form whatever its Content-Type. */
    jsonBody?: boolean
    /** Needs no API key: static files that hold no data (the web GUI). */
    public?: boolean
  }
}

/** What a route module gets. Routes call only `session` methods. */
export interface RouteContext {
  readonly session: Session
  readonly events: EventStream
  readonly options: ApiOptions
}

/**
 * A group of routes, one file per area in `src/api/routes/<area>.ts`, listed in `src/api/routes/index.ts`.
 * A module registers its routes synchronously with full JSON schemas (they become the OpenAPI description) and
 * answers errors by throwing {@link ApiError} (plain body) or {@link HandledError}.
 *
 * @example
 * ```ts
 * export const statisticsRoutes: RouteModule = (app, { session }) => {
 *   app.get('/statistics/ipv8', { schema: { tags: ['statistics'], response: { 200: STATS } } }, () =>
 *     ({ ipv8_statistics: session.ipv8Statistics() }))
 * }
 * ```
 */
export type RouteModule = (app: FastifyInstance, ctx: RouteContext) => void

/** Options of the REST server. */
export interface ApiOptions {
  /** Listen address; default the `api.host` setting (127.0.0.1). */
  host?: string
  /** Port; 0 picks a free one. Default: `http_api.port`, or 8085 when that is -1. */
  port?: number
  /** Route modules to mount; default every module in `routes/index.ts`. */
  routes?: readonly RouteModule[]
  /** Bytes an events listener may leave unread before it is dropped. */
  maxEventBufferBytes?: number
  /** Serve the OpenAPI description (`/openapi.json`) and the browsable page (`/docs`). Default true. */
  docs?: boolean
  /** The built web GUI served at `/ui/`; default `dist/gui` of the installation. */
  guiDir?: string
}

/** The CLI's REST port when neither a flag nor `http_api.port` chooses one. */
export const DEFAULT_API_PORT = 8085
