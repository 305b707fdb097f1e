import { createHash } from 'node:crypto'
import { chmod, mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { extname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { parseTorrent } from '../../metainfo/index.js'
import { ApiError } from '../errors.js'
import { type FormParams, formString } from '../form.js'
import { COMMON_ERRORS, PLAIN_ERROR } from '../schemas.js'
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

// The GUI loads only its own files and talks only to this origin; nothing may frame it (clickjacking).
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
}

const UPLOAD_DIR = 'gui-uploads'
const MAX_UPLOADS_KEPT = 50
const UPLOAD_MAX_AGE_MS = 24 * 3600 * 1000

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
export const guiRoutes: RouteModule = (app, ctx) => {
  const { options } = ctx
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
      .headers(SECURITY_HEADERS)
      .send(body)
  }
  const routeOptions = { config: { early: true, public: true }, schema: { hide: true } }
  // with ignoreTrailingSlash, `/ui` also answers `/ui/`, which the wildcard route does not match
  app.get('/ui', routeOptions, serve)
  app.get('/ui/*', routeOptions, serve)
  app.get('/', routeOptions, (_request, reply) => reply.redirect('/ui/', 302))
  uploadRoute(app, ctx)
}

/**
 * `PUT /ui/upload`: keeps a .torrent file the web GUI sends (browsers do not reveal local paths) under the state
 * directory, named by the SHA-1 of its bytes, and answers the `file:` URI that `GET /torrentinfo` and
 * `PUT /downloads` take. Needs the API key like every data route.
 */
const uploadRoute: RouteModule = (app, { session }) => {
  app.put(
    '/ui/upload',
    {
      schema: {
        tags: ['gui'],
        summary: 'Keep a .torrent file sent by the web GUI and answer its file: URI',
        description:
          'Form body `torrent`: the .torrent file in base64 (URL-safe or standard). The file is checked and kept ' +
          'under the state directory by the SHA-1 of its bytes; the answer is its `file:` URI.',
        response: {
          200: { type: 'object', properties: { uri: { type: 'string' } }, required: ['uri'] },
          400: { description: 'missing, not base64, or not a valid .torrent file', ...PLAIN_ERROR },
          ...COMMON_ERRORS,
        },
      },
    },
    async (request) => {
      const encoded = formString(request.body as FormParams, 'torrent')
      if (encoded === undefined || encoded === '')
        throw new ApiError('BAD_REQUEST', {}, 'torrent parameter missing')
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(encoded)) {
        throw new ApiError('BAD_REQUEST', {}, 'the torrent parameter is not base64')
      }
      const bytes = Buffer.from(encoded, 'base64')
      try {
        parseTorrent(bytes)
      } catch (err) {
        const code = (err as { code?: unknown }).code
        throw new ApiError(
          'BAD_REQUEST',
          { cause: err },
          `not a valid .torrent file (${String(code ?? 'invalid')})`,
        )
      }
      const folder = join(session.paths.root, UPLOAD_DIR)
      await mkdir(folder, { recursive: true, mode: 0o700 })
      await pruneUploads(folder)
      const file = join(folder, `${createHash('sha1').update(bytes).digest('hex')}.torrent`)
      await writeFile(file, bytes, { mode: 0o600 })
      await chmod(file, 0o600)
      return { uri: fileUri(file) }
    },
  )
}

/** A `file:` URI with a percent-encoded path, as the REST API's `uri` parameters take it. */
export function fileUri(path: string): string {
  const parts = path.split(sep).map((part) => (/^[A-Za-z]:$/.test(part) ? part : encodeURIComponent(part)))
  const joined = parts.join('/')
  return `file:${joined.startsWith('/') ? joined : `/${joined}`}`
}

// Keeps the upload folder small: files older than a day go, and at most MAX_UPLOADS_KEPT stay.
async function pruneUploads(folder: string): Promise<void> {
  const names = await readdir(folder).catch(() => [] as string[])
  const files = await Promise.all(
    names
      .filter((name) => name.endsWith('.torrent'))
      .map(async (name) => {
        const path = join(folder, name)
        const info = await stat(path).catch(() => undefined)
        return { path, mtimeMs: info?.mtimeMs ?? 0 }
      }),
  )
  files.sort((a, b) => b.mtimeMs - a.mtimeMs)
  const now = Date.now()
  const doomed = files.filter((f, i) => i >= MAX_UPLOADS_KEPT - 1 || now - f.mtimeMs > UPLOAD_MAX_AGE_MS)
  await Promise.all(doomed.map((f) => unlink(f.path).catch(() => undefined)))
}
