import { createHash, timingSafeEqual } from 'node:crypto'
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type onRequestHookHandler,
  type preValidationHookHandler,
} from 'fastify'
import { errorMessage, logger } from '../common/index.js'
import type { Session } from '../session/index.js'
import { LAZY_COMPILERS } from './compilers.js'
import { ApiError, HandledError, plainError, structuredError } from './errors.js'
import { EventStream } from './event-stream.js'
import { parseForm } from './form.js'
import { type RouteRecord, registerDocs } from './openapi.js'
import { ROUTE_MODULES } from './routes/index.js'
import type { ApiOptions, RouteContext } from './types.js'

const log = logger('api')

const METHODS = ['GET', 'PUT', 'POST', 'PATCH', 'DELETE'] as const
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1'])

/** A built REST server: the fastify instance and the events fan-out it feeds. */
export interface ApiServer {
  readonly app: FastifyInstance
  readonly events: EventStream
}

/**
 * Builds the REST server for a session (not listening yet; tests call `app.inject()`). Every route module is
 * mounted, then the rules of REST contract §1 apply to all of them: form bodies (JSON for routes with
 * `config.jsonBody`), late endpoints 404 until STARTED, 500 "Tribler is shutting down" during shutdown, 404 JSON
 * for unknown paths, 405 for a known path with another method, the documented error bodies, the API key
 * (`X-Api-Key` header or `apikey` query parameter) and closed CORS.
 *
 * @example
 * ```ts
 * const { app } = await buildApiServer(session)
 * const res = await app.inject({ method: 'GET', url: '/state' })
 * ```
 */
export async function buildApiServer(session: Session, opts: ApiOptions = {}): Promise<ApiServer> {
  const config = session.config
  const app = Fastify({
    logger: false,
    bodyLimit: config.getNumber('api', 'max_body_bytes'),
    return503OnClosing: false,
    forceCloseConnections: true,
    routerOptions: { ignoreTrailingSlash: true, querystringParser: (text) => parseForm(text) },
    schemaController: LAZY_COMPILERS,
  })
  const events = new EventStream(session.events, { maxBufferedBytes: opts.maxEventBufferBytes })
  const ctx: RouteContext = { session, events, options: opts }
  const access = new AccessPolicy(session, opts.host ?? config.getString('api', 'host'))

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))
  app.addHook('onRequest', (request, reply, done) => {
    if (access.check(request, reply) === undefined) done()
  })
  app.setErrorHandler((err, request, reply) => sendError(err, request, reply))
  app.setNotFoundHandler({ preHandler: access.requireKey }, (_request, reply) =>
    reply.code(404).send(plainError('not found')),
  )

  // per-route hooks are decided once here, so the hot path never reads request.routeOptions (built per access)
  const lateGate: onRequestHookHandler = (_request, reply, done) => {
    if (session.isStarted) done()
    else reply.code(404).send(plainError('not found'))
  }
  const methodsByPath = new Map<string, Set<string>>()
  const routes: RouteRecord[] = []
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat()
    for (const method of methods) {
      routes.push({
        method,
        url: route.url,
        schema: route.schema as RouteRecord['schema'],
        jsonBody: route.config?.jsonBody === true,
        public: route.config?.public === true,
      })
    }
    const set = methodsByPath.get(route.url) ?? new Set<string>()
    for (const method of methods) set.add(method)
    methodsByPath.set(route.url, set)
    const gates: onRequestHookHandler[] = []
    if (route.config?.public !== true) gates.push(access.requireKey)
    if (route.config?.early !== true) gates.push(lateGate)
    route.onRequest = [...gates, ...[route.onRequest ?? []].flat()]
    if (methods.some((method) => method !== 'GET' && method !== 'HEAD')) {
      const decode: preValidationHookHandler =
        route.config?.jsonBody === true ? decodeJsonBody : decodeFormBody
      route.preValidation = [decode, ...[route.preValidation ?? []].flat()]
    }
  })

  if (opts.docs !== false) registerDocs(app, routes, session.version)
  for (const mount of opts.routes ?? ROUTE_MODULES) mount(app, ctx)
  addMethodNotAllowed(app, methodsByPath)
  await app.ready()
  return { app, events }
}

function addMethodNotAllowed(app: FastifyInstance, methodsByPath: Map<string, Set<string>>): void {
  for (const [url, methods] of methodsByPath) {
    const missing = METHODS.filter((method) => !methods.has(method))
    if (missing.length === 0 || url.startsWith('/docs') || url === '*') continue
    app.route({
      method: [...missing],
      url,
      schema: { hide: true },
      handler: async (_request, reply) => {
        reply.header('allow', [...methods].filter((m) => m !== 'HEAD').join(', '))
        return reply.code(405).send(plainError('method not allowed'))
      },
    })
  }
}

const decodeJsonBody: preValidationHookHandler = (request, _reply, done) => {
  const raw = request.body
  if (typeof raw === 'string') {
    try {
      request.body = raw.trim() === '' ? {} : JSON.parse(raw)
    } catch {
      done(new ApiError('BAD_REQUEST', {}, 'the body is not valid JSON'))
      return
    }
  }
  done()
}

const decodeFormBody: preValidationHookHandler = (request, _reply, done) => {
  request.body = typeof request.body === 'string' ? parseForm(request.body) : Object.create(null)
  done()
}

function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof ApiError) return reply.code(err.status).send(plainError(err.message))
  if (err instanceof HandledError) {
    return reply.code(500).send(structuredError(err.handled, err.errorCode, err.message))
  }
  const fastifyError = (err instanceof Error ? err : new Error(String(err))) as FastifyError
  if (fastifyError.validation !== undefined) return reply.code(400).send(plainError(fastifyError.message))
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return reply.code(413).send(plainError('request body too large'))
  }
  const status = fastifyError.statusCode
  if (status !== undefined && status >= 400 && status < 500) {
    return reply.code(status).send(plainError(fastifyError.message))
  }
  log.error('request failed', { method: request.method, url: request.routeOptions.url, err })
  return reply.code(500).send(structuredError(false, fastifyError.name || 'Error', errorMessage(err)))
}

/**
 * Who may call: the Host header must name a loopback host while the API listens on loopback (no DNS rebinding),
 * and a browser Origin must be the API itself or listed in `api.cors_origins`. During a shutdown every request is
 * answered 500. Once `api.key` is set every route but the public ones (the GUI's static files) requires it
 * ({@link AccessPolicy.requireKey}).
 */
class AccessPolicy {
  readonly #session: Session
  readonly #loopbackOnly: boolean
  #keyDigest: Buffer | undefined
  #origins = new Set<string>()

  constructor(session: Session, host: string) {
    this.#session = session
    this.#loopbackOnly = LOOPBACK_HOSTS.has(host) || host.startsWith('127.')
    this.#load()
    session.config.events.on('changed', () => this.#load())
  }

  #load(): void {
    const key = this.#session.config.getString('api', 'key')
    this.#keyDigest = key === '' ? undefined : digest(key)
    const origins = this.#session.config.get('api', 'cors_origins')
    this.#origins = new Set(Array.isArray(origins) ? origins : [])
  }

  check(request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
    const host = request.headers.host ?? ''
    if (this.#loopbackOnly && !LOOPBACK_HOSTS.has(stripPort(host)) && !stripPort(host).startsWith('127.')) {
      return reply.code(403).send(plainError('host not allowed'))
    }
    const origin = request.headers.origin
    if (origin !== undefined && origin !== `http://${host}`) {
      if (!this.#origins.has(origin) && !this.#origins.has('*')) {
        return reply.code(403).send(plainError('origin not allowed'))
      }
      reply.header('access-control-allow-origin', origin)
      reply.header('vary', 'Origin')
      if (request.method === 'OPTIONS') {
        reply.header('access-control-allow-methods', METHODS.join(', '))
        reply.header('access-control-allow-headers', 'Content-Type, X-Api-Key')
        return reply.code(204).send()
      }
    }
    if (this.#session.isShuttingDown) {
      return reply.code(500).send(structuredError(false, 'RuntimeError', 'Tribler is shutting down'))
    }
    return undefined
  }

  /** Route-level check of the API key (every route but the public GUI files, and unknown paths). */
  readonly requireKey: onRequestHookHandler = (request, reply, done) => {
    if (this.#keyDigest !== undefined) {
      const query = request.query as Record<string, unknown> | undefined
      const given = request.headers['x-api-key'] ?? query?.apikey
      if (typeof given !== 'string' || !timingSafeEqual(digest(given), this.#keyDigest)) {
        reply.code(401).send(plainError('Unauthorized access'))
        return
      }
    }
    done()
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1)
  const colon = host.lastIndexOf(':')
  return colon === -1 ? host : host.slice(0, colon)
}
