import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { configureLogging, type Service } from '../common/index.js'
import { Session } from '../session/index.js'
import { formArray, isFlag } from './form.js'
import { ROUTE_MODULES } from './routes/index.js'
import { buildApiServer } from './server.js'
import type { RouteModule } from './types.js'

configureLogging({ level: 'silent' })

const open: Session[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.stop()))
})

const echoRoutes: RouteModule = (app) => {
  app.post('/test/echo', (request) => {
    const body = request.body as Record<string, string | string[]>
    return { body, files: formArray(body, 'files'), flag: isFlag(body.flag) }
  })
  app.get('/test/query', (request) => ({ query: request.query }))
  app.get('/test/crash', () => {
    throw new TypeError('kaput')
  })
}

async function setup(
  opts: { start?: boolean; services?: Service[]; guiDir?: string } = {},
): Promise<{ session: Session; app: FastifyInstance }> {
  const session = new Session({ stateDir: mkdtempSync(join(tmpdir(), 'tribler-api-')), publicNetwork: false })
  open.push(session)
  for (const service of opts.services ?? []) session.addService(() => service)
  const { app } = await buildApiServer(session, {
    routes: [...ROUTE_MODULES, echoRoutes],
    guiDir: opts.guiDir,
  })
  if (opts.start !== false) await session.start()
  return { session, app }
}

function blocker(): Service & { release(): void } {
  let release = (): void => {}
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  return { name: 'blocker', start: () => gate, stop: async () => {}, release: () => release() }
}

describe('REST core', () => {
  it('answers GET /state', async () => {
    const { app } = await setup()
    const res = await app.inject({ method: 'GET', url: '/state' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.json()).toEqual({ state: 'STARTED', last_exception: null, readable_state: 'Started' })
  })

  it('answers an unknown path with 404 JSON and a known path with another method with 405', async () => {
    const { app } = await setup()
    const missing = await app.inject({ method: 'GET', url: '/no/such/thing' })
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toEqual({ error: 'not found' })
    const wrong = await app.inject({ method: 'DELETE', url: '/state' })
    expect(wrong.statusCode).toBe(405)
    expect(wrong.json()).toHaveProperty('error')
    expect(wrong.headers.allow).toContain('GET')
    expect((await app.inject({ method: 'GET', url: '/shutdown' })).statusCode).toBe(405)
  })

  it('serves only /state, /events and /shutdown before STARTED', async () => {
    const gate = blocker()
    const { session, app } = await setup({ start: false, services: [gate] })
    const starting = session.start()
    expect((await app.inject({ method: 'GET', url: '/state' })).json()).toMatchObject({
      state: 'STARTING',
      readable_state: 'Starting blocker...',
    })
    expect((await app.inject({ method: 'GET', url: '/settings' })).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/debug/log' })).statusCode).toBe(404)
    gate.release()
    await starting
    expect((await app.inject({ method: 'GET', url: '/settings' })).statusCode).toBe(200)
  })

  it('answers every request with 500 "Tribler is shutting down" once the shutdown began', async () => {
    const { session, app } = await setup()
    const res = await app.inject({ method: 'PUT', url: '/shutdown' })
    expect(res.json()).toEqual({ shutdown: true })
    expect(session.isShuttingDown).toBe(false)
    await new Promise((resolve) => session.lifecycle.once('stopped', resolve))
    for (const url of ['/state', '/settings']) {
      const after = await app.inject({ method: 'GET', url })
      expect(after.statusCode).toBe(500)
      expect(after.json()).toEqual({
        error: { handled: false, code: 'RuntimeError', message: 'Tribler is shutting down' },
      })
    }
  })

  it('answers an unhandled route error with the structured body', async () => {
    const { app } = await setup()
    const res = await app.inject({ method: 'GET', url: '/test/crash' })
    expect(res.statusCode).toBe(500)
    expect(res.json()).toEqual({ error: { handled: false, code: 'TypeError', message: 'kaput' } })
  })
})

describe('request bodies', () => {
  it('reads bodies as forms whatever the Content-Type, with PHP arrays and strict flags', async () => {
    const { app } = await setup()
    for (const contentType of [
      'application/x-www-form-urlencoded',
      'text/plain',
      'application/json',
      undefined,
    ]) {
      const res = await app.inject({
        method: 'POST',
        url: '/test/echo',
        payload: 'uri=magnet%3A%3Fxt%3Dx&files[]=a&files[]=b%20c&flag=1',
        headers: contentType === undefined ? {} : { 'content-type': contentType },
      })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({
        body: { uri: 'magnet:?xt=x', 'files[]': ['a', 'b c'], flag: '1' },
        files: ['a', 'b c'],
        flag: true,
      })
    }
    for (const value of ['true', 'True', '0', '']) {
      const res = await app.inject({ method: 'POST', url: '/test/echo', payload: `flag=${value}` })
      expect(res.json().flag).toBe(false)
    }
  })

  it('reads PHP arrays in query strings', async () => {
    const { app } = await setup()
    const res = await app.inject({ method: 'GET', url: '/test/query?x[]=1&x[]=2&y=a&y=b' })
    expect(res.json()).toEqual({ query: { 'x[]': ['1', '2'], y: 'a' } })
  })

  it('refuses a body beyond api.max_body_bytes with 413', async () => {
    const { app } = await setup()
    const res = await app.inject({
      method: 'POST',
      url: '/test/echo',
      payload: `a=${'x'.repeat(9 * 1024 * 1024)}`,
    })
    expect(res.statusCode).toBe(413)
    expect(res.json()).toEqual({ error: 'request body too large' })
  })
})

describe('/settings', () => {
  it('returns every section of config.spec', async () => {
    const { session, app } = await setup()
    session.ports.set('libtorrent~port', 52163)
    const res = await app.inject({ method: 'GET', url: '/settings' })
    const body = res.json()
    for (const section of [
      'libtorrent',
      'mainline_dht',
      'torrent_store',
      'general',
      'torrent_checking',
      'allchannel_community',
      'tunnel_community',
      'http_api',
      'torrent_collecting',
      'dispersy',
      'trustchain',
      'watch_folder',
      'search_community',
      'metadata',
      'api',
    ]) {
      expect(Object.keys(body.settings[section]).length).toBeGreaterThan(0)
    }
    expect(body.ports).toEqual({ 'libtorrent~port': 52163 })
  })

  it('applies a partial JSON tree sent with any Content-Type and persists it', async () => {
    const { session, app } = await setup()
    const res = await app.inject({
      method: 'POST',
      url: '/settings',
      payload: JSON.stringify({ general: { family_filter: false }, libtorrent: { max_download_rate: 50 } }),
      headers: { 'content-type': 'text/plain' },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ modified: true })
    const after = (await app.inject({ method: 'GET', url: '/settings' })).json()
    expect(after.settings.general.family_filter).toBe(false)
    expect(after.settings.libtorrent.max_download_rate).toBe(50)
    expect(session.config.path).toBeDefined()
  })

  it('answers an unknown section or key with 500 ValueError and changes nothing', async () => {
    const { app } = await setup()
    for (const body of [
      { general: { family_filter: false }, nope: { a: 1 } },
      { general: { family_filter: false, nope: 1 } },
      { a: { b: { c: 'd' } } },
      { general: { family_filter: { deeper: false } } },
    ]) {
      const res = await app.inject({ method: 'POST', url: '/settings', payload: JSON.stringify(body) })
      expect(res.statusCode).toBe(500)
      expect(res.json().error).toMatchObject({ handled: false, code: 'ValueError' })
    }
    const after = (await app.inject({ method: 'GET', url: '/settings' })).json()
    expect(after.settings.general.family_filter).toBe(true)
  })

  it('answers a wrong type, a value out of range or a non-object body with 400 and changes nothing', async () => {
    const { app } = await setup()
    for (const payload of [
      '{"general":{"family_filter":false},"libtorrent":{"port":"7000"}}',
      '{"general":{"family_filter":false},"download_defaults":{"number_hops":9}}',
      '[1,2]',
      'not json',
    ]) {
      const res = await app.inject({ method: 'POST', url: '/settings', payload })
      expect(res.statusCode).toBe(400)
      expect(typeof res.json().error).toBe('string')
    }
    const after = (await app.inject({ method: 'GET', url: '/settings' })).json()
    expect(after.settings.general.family_filter).toBe(true)
  })
})

describe('security', () => {
  it('requires the API key once api.key is set, from the header or the apikey parameter', async () => {
    const { app } = await setup()
    await app.inject({ method: 'POST', url: '/settings', payload: '{"api":{"key":"s3cret"}}' })
    const denied = await app.inject({ method: 'GET', url: '/state' })
    expect(denied.statusCode).toBe(401)
    expect(denied.json()).toHaveProperty('error')
    expect(
      (await app.inject({ method: 'GET', url: '/state', headers: { 'x-api-key': 'wrong' } })).statusCode,
    ).toBe(401)
    expect(
      (await app.inject({ method: 'GET', url: '/state', headers: { 'x-api-key': 's3cret' } })).statusCode,
    ).toBe(200)
    expect((await app.inject({ method: 'GET', url: '/state?apikey=s3cret' })).statusCode).toBe(200)
    expect((await app.inject({ method: 'GET', url: '/no/such?apikey=wrong' })).statusCode).toBe(401)
  })

  it('refuses foreign origins and hosts (CORS closed, no DNS rebinding) unless allowed', async () => {
    const { app } = await setup()
    const evil = await app.inject({
      method: 'PUT',
      url: '/shutdown',
      headers: { origin: 'http://evil.example' },
    })
    expect(evil.statusCode).toBe(403)
    const rebound = await app.inject({ method: 'GET', url: '/state', headers: { host: 'evil.example:8085' } })
    expect(rebound.statusCode).toBe(403)
    await app.inject({
      method: 'POST',
      url: '/settings',
      payload: '{"api":{"cors_origins":["http://gui.local"]}}',
    })
    const allowed = await app.inject({
      method: 'GET',
      url: '/state',
      headers: { origin: 'http://gui.local' },
    })
    expect(allowed.statusCode).toBe(200)
    expect(allowed.headers['access-control-allow-origin']).toBe('http://gui.local')
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/settings',
      headers: { origin: 'http://gui.local' },
    })
    expect(preflight.statusCode).toBe(204)
    expect(preflight.headers['access-control-allow-headers']).toContain('X-Api-Key')
  })
})

describe('/debug/log', () => {
  it('returns the last lines of the core log, 100 when max_lines is missing or not a number', async () => {
    const { session, app } = await setup()
    mkdirSync(session.paths.logs, { recursive: true })
    for (let i = 0; i < 150; i++) appendFileSync(session.paths.coreLog, `line ${i}\n`)
    const five = (await app.inject({ method: 'GET', url: '/debug/log?process=core&max_lines=5' })).json()
    expect(five).toEqual({ content: 'line 145\nline 146\nline 147\nline 148\nline 149', max_lines: 5 })
    for (const url of ['/debug/log', '/debug/log?max_lines=abc']) {
      const body = (await app.inject({ method: 'GET', url })).json()
      expect(body.max_lines).toBe(0)
      expect(body.content.split('\n')).toHaveLength(100)
    }
    expect((await app.inject({ method: 'GET', url: '/debug/log?process=gui' })).json()).toEqual({
      content: '',
      max_lines: 0,
    })
    expect((await app.inject({ method: 'GET', url: '/debug/log?process=kernel' })).statusCode).toBe(400)
  })
})

describe('OpenAPI', () => {
  it('describes the routes at /openapi.json and serves a browsable page at /docs', async () => {
    const { app } = await setup()
    const spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
    expect(spec.openapi).toMatch(/^3\./)
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining(['/state', '/events', '/settings', '/debug/log']),
    )
    expect(spec.paths['/settings'].post.responses).toHaveProperty('400')
    const docs = await app.inject({ method: 'GET', url: '/docs' })
    expect(docs.statusCode).toBe(200)
    expect(docs.body).toContain('swagger')
    const bundle = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' })
    expect(bundle.statusCode).toBe(200)
    expect(bundle.headers['content-type']).toMatch(/^text\/javascript/)
    expect((await app.inject({ method: 'GET', url: '/docs/static/package.json' })).statusCode).toBe(404)
  })
})

describe('/ui/ (web GUI files)', () => {
  function guiDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'tribler-gui-'))
    mkdirSync(join(dir, 'assets'))
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Tribler</title>')
    writeFileSync(join(dir, 'assets', 'app-1234.js'), 'console.log(1)')
    return dir
  }

  it('serves the GUI during start-up and without the API key; the API still needs the key', async () => {
    const gate = blocker()
    const { session, app } = await setup({ start: false, services: [gate], guiDir: guiDir() })
    session.config.override('api', 'key', 'k')
    const starting = session.start()
    onTestFinished(() => gate.release())
    const page = await app.inject({ method: 'GET', url: '/ui/' })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.body).toContain('<title>Tribler</title>')
    const asset = await app.inject({ method: 'GET', url: '/ui/assets/app-1234.js' })
    expect(asset.headers['content-type']).toMatch(/^text\/javascript/)
    expect(asset.headers['cache-control']).toContain('immutable')
    expect((await app.inject({ method: 'GET', url: '/state' })).statusCode).toBe(401)
    gate.release()
    await starting
  })

  it('answers GUI routes with index.html, a missing asset with 404, and never leaves the GUI folder', async () => {
    const { app } = await setup({ guiDir: guiDir() })
    expect((await app.inject({ method: 'GET', url: '/ui/downloads/abc' })).body).toContain('<title>')
    expect((await app.inject({ method: 'GET', url: '/ui/assets/missing.js' })).statusCode).toBe(404)
    for (const url of [
      '/ui/../package.json',
      '/ui/%2e%2e/%2e%2e/package.json',
      '/ui/..%2f..%2fpackage.json',
    ]) {
      const res = await app.inject({ method: 'GET', url })
      expect(res.body).not.toContain('"name"')
    }
  })

  it('says so when the GUI is not built', async () => {
    const { app } = await setup({ guiDir: join(tmpdir(), 'tribler-no-gui-here') })
    const res = await app.inject({ method: 'GET', url: '/ui/' })
    expect(res.statusCode).toBe(404)
    expect(res.json().error).toContain('not built')
  })
})
