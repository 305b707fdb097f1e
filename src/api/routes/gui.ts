import { readFile, stat } from 'node:fs/promises'
import { extname, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ApiError } from '../errors.js'
import type { RouteModule } from '../types.js'

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
}

/** Where the build puts the web GUI: `dist/gui` of this installation. */
export function defaultGuiDir(): string {
  // from dist/api/routes/ (and src/api/routes/ in tests) up to the package root
  return fileURLToPath(new URL('../../../dist/gui', import.meta.url))
}

/**
 * `GET /ui/*`: the built web GUI, from the first moment of start-up and without the API key (the files hold no
 * data; the GUI asks for the key when an API call answers 401). Paths that name no file get `index.html`, so the
 * GUI's own routes survive a reload; a missing asset is 404. Nothing outside the GUI folder is ever served.
 */
export const guiRoutes: RouteModule = (app, { options }) => {
  const root = resolve(options.guiDir ?? defaultGuiDir())
  const serve = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const relative = (request.params as { '*'?: string })['*'] ?? ''
    const target = resolve(root, `.${sep}${relative}`)
    if (target !== root && !target.startsWith(`${root}${sep}`))
      throw new ApiError('NOT_FOUND', {}, 'not found')
    let file = target
    const info = await stat(target).catch(() => undefined)
    if (info === undefined || info.isDirectory()) {
      if (info === undefined && extname(target) !== '') throw new ApiError('NOT_FOUND', {}, 'not found')
      file = resolve(root, 'index.html')
    }
    const body = await readFile(file).catch(() => undefined)
    if (body === undefined) {
      throw new ApiError('NOT_FOUND', {}, 'the web GUI is not built; run npm run build')
    }
    const immutable = relative.startsWith('assets/') && file === target
    return reply
      .type(CONTENT_TYPES[extname(file)] ?? 'application/octet-stream')
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(body)
  }
  const routeOptions = { config: { early: true, public: true }, schema: { hide: true } }
  // with ignoreTrailingSlash, `/ui` also answers `/ui/`, which the wildcard route does not match
  app.get('/ui', routeOptions, serve)
  app.get('/ui/*', routeOptions, serve)
}
