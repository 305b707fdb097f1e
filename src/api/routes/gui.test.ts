import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { encode } from '../../bencode/index.js'
import { configureLogging } from '../../common/index.js'
import { Session } from '../../session/index.js'
import { buildApiServer } from '../server.js'
import { fileUri } from './gui.js'
import { ROUTE_MODULES } from './index.js'

configureLogging({ level: 'silent' })

const open: Session[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.stop()))
})

async function setup(key = ''): Promise<{ session: Session; app: FastifyInstance }> {
  const session = new Session({ stateDir: mkdtempSync(join(tmpdir(), 'tribler-gui-')), publicNetwork: false })
  open.push(session)
  if (key) session.config.override('api', 'key', key)
  const guiDir = mkdtempSync(join(tmpdir(), 'tribler-gui-files-'))
  writeFileSync(join(guiDir, 'index.html'), '<!doctype html><title>GUI</title>')
  const { app } = await buildApiServer(session, { routes: ROUTE_MODULES, docs: false, guiDir })
  await session.start()
  return { session, app }
}

function torrentBytes(): Buffer {
  return encode({
    announce: 'http://127.0.0.1:1/announce',
    info: { length: 5, name: 'a.txt', 'piece length': 16384, pieces: Buffer.alloc(20, 7) },
  })
}

function upload(app: FastifyInstance, payload: string) {
  return app.inject({
    method: 'PUT',
    url: '/ui/upload',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload,
  })
}

describe('web GUI entry', () => {
  it('redirects / to /ui/ and sends the page with a CSP that forbids framing', async () => {
    const { app } = await setup()
    const root = await app.inject({ method: 'GET', url: '/' })
    expect(root.statusCode).toBe(302)
    expect(root.headers.location).toBe('/ui/')
    const page = await app.inject({ method: 'GET', url: '/ui/' })
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    expect(page.headers['x-frame-options']).toBe('DENY')
  })
})

describe('PUT /ui/upload', () => {
  it('keeps a valid .torrent by its hash, private to the user, and answers its file: URI', async () => {
    const { session, app } = await setup()
    const bytes = torrentBytes()
    const res = await upload(app, `torrent=${bytes.toString('base64url')}`)
    expect(res.statusCode).toBe(200)
    const path = join(
      session.paths.root,
      'gui-uploads',
      `${createHash('sha1').update(bytes).digest('hex')}.torrent`,
    )
    expect(res.json()).toEqual({ uri: fileUri(path) })
    expect(readFileSync(path)).toEqual(bytes)
    expect(statSync(path).mode & 0o077).toBe(0)
  })

  it('refuses a missing parameter, non-base64 text and bytes that are not a torrent with 400', async () => {
    const { app } = await setup()
    const notTorrent = Buffer.from('d3:fooi1ee').toString('base64')
    for (const payload of ['', 'torrent=', 'torrent=%21%21', `torrent=${notTorrent}`]) {
      const res = await upload(app, payload)
      expect(res.statusCode).toBe(400)
      expect(res.json()).toHaveProperty('error')
    }
  })

  it('needs the API key, unlike the GUI files', async () => {
    const { app } = await setup('s3cret')
    expect((await app.inject({ method: 'GET', url: '/ui/' })).statusCode).toBe(200)
    expect((await upload(app, `torrent=${torrentBytes().toString('base64url')}`)).statusCode).toBe(401)
  })
})

describe('fileUri', () => {
  it('percent-encodes each path segment', () => {
    expect(fileUri('/tmp/a b/c#1.torrent')).toBe('file:/tmp/a%20b/c%231.torrent')
  })
})
