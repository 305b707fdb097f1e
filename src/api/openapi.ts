import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { FastifyInstance, FastifySchema } from 'fastify'
import { ApiError } from './errors.js'

/** A mounted route, as the OpenAPI description needs it. */
export interface RouteRecord {
  readonly method: string
  readonly url: string
  readonly schema: (FastifySchema & Record<string, unknown>) | undefined
  readonly jsonBody: boolean
  readonly public: boolean
}

type Json = Record<string, unknown>

const DESCRIPTION =
  'Request bodies are form-encoded whatever the Content-Type (JSON only for POST /settings); PHP-style `name[]` ' +
  'arrays; flags are true only for `1`. Errors: `{"error": string}`, or for 500 ' +
  '`{"error": {"handled", "code", "message"}}`. Only /state, /events and /shutdown answer before the core is ' +
  'STARTED.'

/**
 * The OpenAPI 3.1 description of the mounted routes, built from their JSON schemas (3.1 takes JSON Schema as is).
 * Routes with `schema.hide` are left out.
 */
export function openApiDocument(routes: readonly RouteRecord[], version: string): Json {
  const paths: Record<string, Record<string, Json>> = {}
  for (const route of routes) {
    const schema = route.schema ?? {}
    if (schema.hide === true || route.method === 'HEAD' || route.url.includes('*')) continue
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
    paths[path] ??= {}
    const operation: Json = {}
    for (const field of ['tags', 'summary', 'description'] as const) {
      if (schema[field] !== undefined) operation[field] = schema[field]
    }
    const parameters = [
      ...parametersOf(schema.params as Json | undefined, 'path'),
      ...parametersOf(schema.querystring as Json | undefined, 'query'),
    ]
    if (parameters.length > 0) operation.parameters = parameters
    if (schema.body !== undefined) {
      const type = route.jsonBody ? 'application/json' : 'application/x-www-form-urlencoded'
      operation.requestBody = { content: { [type]: { schema: schema.body } } }
    }
    const produces = Array.isArray(schema.produces) ? String(schema.produces[0]) : 'application/json'
    const responses: Json = {}
    for (const [status, response] of Object.entries((schema.response ?? {}) as Record<string, Json>)) {
      const { description, ...body } = response
      responses[status] = {
        description: typeof description === 'string' ? description : `status ${status}`,
        content: { [status === '200' ? produces : 'application/json']: { schema: body } },
      }
    }
    operation.responses = Object.keys(responses).length > 0 ? responses : { 200: { description: 'OK' } }
    if (route.public) operation.security = []
    paths[path][route.method.toLowerCase()] = operation
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Tribler.ts REST API', version, description: DESCRIPTION },
    components: { securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' } } },
    security: [{ apiKey: [] }],
    paths,
  }
}

function parametersOf(schema: Json | undefined, where: 'path' | 'query'): Json[] {
  const properties = schema?.properties as Record<string, Json> | undefined
  if (properties === undefined) return []
  const required = new Set(Array.isArray(schema?.required) ? (schema.required as string[]) : [])
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: property,
  }))
}

const SWAGGER_FILES: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
}

const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tribler.ts REST API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" href="/docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>
  // an apikey in the page's query string is passed on to the description request
  window.ui = SwaggerUIBundle({ url: '/openapi.json' + window.location.search, dom_id: '#swagger-ui' })
</script>
</body>
</html>
`

/**
 * Serves `/openapi.json` (built on first request from `routes`, which keeps filling while routes are added) and
 * the browsable page `/docs` (Swagger UI; its static files need no API key).
 */
export function registerDocs(app: FastifyInstance, routes: readonly RouteRecord[], version: string): void {
  let document: string | undefined
  app.get('/openapi.json', { schema: { hide: true } }, (_request, reply) => {
    document ??= JSON.stringify(openApiDocument(routes, version))
    return reply.type('application/json; charset=utf-8').send(document)
  })
  app.get('/docs', { schema: { hide: true } }, (_request, reply) =>
    reply.type('text/html; charset=utf-8').send(DOCS_PAGE),
  )
  const cache = new Map<string, Buffer>()
  app.get('/docs/static/:file', { schema: { hide: true }, config: { public: true } }, (request, reply) => {
    const { file } = request.params as { file: string }
    const type = SWAGGER_FILES[file]
    if (type === undefined) throw new ApiError('NOT_FOUND', {}, 'not found')
    let body = cache.get(file)
    if (body === undefined) {
      const dir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))
      body = readFileSync(join(dir, file))
      cache.set(file, body)
    }
    return reply.type(type).header('cache-control', 'public, max-age=86400').send(body)
  })
}
