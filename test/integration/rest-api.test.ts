import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { RestApi } from '../../src/api/index.js'
import { configureLogging, type Service } from '../../src/common/index.js'
import { TriblerConfig } from '../../src/config/index.js'
import { Session } from '../../src/session/index.js'
import { ROOT } from './cli-harness.js'

configureLogging({ level: 'silent' })

const sessions: Session[] = []
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.stop()))
})

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tribler-rest-'))
}

function newSession(stateDir = tempDir()): Session {
  const session = new Session({ stateDir, publicNetwork: false })
  sessions.push(session)
  return session
}

function addApi(session: Session, maxEventBufferBytes?: number): RestApi {
  return session.addService(() => new RestApi(session, { host: '127.0.0.1', port: 0, maxEventBufferBytes }), {
    early: true,
    readableState: 'Starting HTTP API...',
  })
}

/** A reading /events client that collects parsed lines. */
function listen(url: string): { lines: Array<{ type: string; event?: unknown }>; closed: Promise<void> } {
  const lines: Array<{ type: string; event?: unknown }> = []
  let closed!: () => void
  const done = new Promise<void>((resolve) => {
    closed = resolve
  })
  const req = request(`${url}/events`, (res) => {
    let buffer = ''
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      buffer += chunk
      let nl = buffer.indexOf('\n')
      while (nl !== -1) {
        lines.push(JSON.parse(buffer.slice(0, nl)))
        buffer = buffer.slice(nl + 1)
        nl = buffer.indexOf('\n')
      }
    })
    res.on('close', () => closed())
  })
  req.on('error', () => closed())
  req.end()
  return { lines, closed: done }
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function gate(name: string): Service & { open(): void } {
  let open = (): void => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { name, start: () => opened, stop: async () => {}, open: () => open() }
}

describe('REST API on a real port', () => {
  it('listens on 127.0.0.1 and reports its port under ports in GET /settings', async () => {
    const session = newSession()
    const api = addApi(session)
    await session.start()
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const res = await fetch(`${api.url}/settings`)
    const body = (await res.json()) as { ports: Record<string, number> }
    expect(body.ports['http_api~port']).toBe(Number(new URL(api.url).port))
    const missing = await fetch(`${api.url}/nowhere`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ error: 'not found' })
  })

  it('streams events to several listeners, from events_start to the shutdown steps', async () => {
    const session = newSession()
    const hold = gate('hold')
    const api = addApi(session)
    session.addService(() => hold, { early: true })
    const starting = session.start()
    await until(() => api.url !== '')
    const a = listen(api.url)
    const b = listen(api.url)
    await until(() => a.lines.length > 0 && b.lines.length > 0)
    hold.open()
    await starting
    session.events.emit('torrent_finished', { infohash: 'ab'.repeat(20), name: 'ubuntu.iso' })
    await until(() => a.lines.length >= 3 && b.lines.length >= 3)
    for (const client of [a, b]) {
      expect(client.lines[0]).toEqual({
        type: 'events_start',
        event: { tribler_started: false, version: session.version },
      })
      expect(client.lines[1]).toEqual({ type: 'tribler_started' })
      expect(client.lines[2]).toEqual({
        type: 'torrent_finished',
        event: { infohash: 'ab'.repeat(20), name: 'ubuntu.iso' },
      })
    }
    const late = listen(api.url)
    await until(() => late.lines.length > 0)
    expect(late.lines[0]).toMatchObject({ event: { tribler_started: true } })
    await session.stop()
    await Promise.all([a.closed, b.closed, late.closed])
    const shutdownSteps = a.lines.filter((l) => l.type === 'shutdown').map((l) => l.event)
    expect(shutdownSteps).toContain('Saving configuration...')
    expect(shutdownSteps).toContain('Closing database...')
  })

  it('drops a listener that stops reading while the others keep receiving every event', async () => {
    const session = newSession()
    const api = addApi(session, 1024 * 1024)
    await session.start()
    const { port } = new URL(api.url)
    const stalled: Socket = connect(Number(port), '127.0.0.1')
    await new Promise<void>((resolve) => stalled.once('connect', resolve))
    stalled.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
    stalled.pause()
    const stalledClosed = new Promise<void>((resolve) => stalled.once('close', resolve))
    const reader = listen(api.url)
    await until(() => reader.lines.length > 0)
    await new Promise((resolve) => setTimeout(resolve, 100))

    const text = 'x'.repeat(16 * 1024)
    const count = 1500 // about 24 MiB: far beyond what the kernel buffers for the stalled socket
    for (let i = 0; i < count; i++) {
      session.events.emit('tribler_exception', { text: `${i} ${text}` })
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await until(() => reader.lines.length >= count + 1, 30_000)
    expect(reader.lines.at(-1)).toMatchObject({ type: 'tribler_exception' })
    stalled.resume()
    await stalledClosed
    expect(api.server?.events.dropped).toBe(1)
    expect(api.server?.events.size).toBe(1)
  })
})

describe('upgrade from an older schema', () => {
  it('reports UPGRADING and sends upgrader events while the new migrations run', async () => {
    const stateDir = tempDir()
    const v1 = {
      version: 1,
      description: 'Creating demo table',
      up: (db: import('../../src/store/index.js').Db) =>
        db.exec('CREATE TABLE demo_items (id INTEGER PRIMARY KEY)'),
    }
    const v2 = {
      version: 2,
      description: 'Adding demo names',
      up: (db: import('../../src/store/index.js').Db) =>
        db.exec('ALTER TABLE demo_items ADD COLUMN name TEXT'),
    }
    const old = new Session({ stateDir, publicNetwork: false })
    old.store.register({ owner: 'demo', migrations: [v1] })
    await old.start()
    await old.stop()

    const session = newSession(stateDir)
    session.store.register({ owner: 'demo', migrations: [v1, v2] })
    const hold = gate('hold')
    const api = addApi(session)
    session.addService(() => hold, { early: true })
    const states: string[] = []
    session.lifecycle.on('state', (s) => states.push(s.state))
    const starting = session.start()
    await until(() => api.url !== '')
    const client = listen(api.url)
    await until(() => client.lines.length > 0)
    hold.open()
    await starting
    await until(() => client.lines.some((l) => l.type === 'tribler_started'))
    expect(client.lines.map((l) => l.type)).toEqual([
      'events_start',
      'upgrader_started',
      'upgrader_tick',
      'upgrader_finished',
      'tribler_started',
    ])
    expect(client.lines[2]).toEqual({ type: 'upgrader_tick', event: { text: 'Adding demo names' } })
    expect(states).toContain('UPGRADING')
    expect(session.store.versions()).toEqual({ demo: 2 })
  })
})

describe('settings file', () => {
  it('is always the old or the new tree when the writer is killed mid-write', async () => {
    const dir = tempDir()
    const path = join(dir, 'settings.json')
    const script = join(ROOT, 'test/integration/fixtures/settings-writer.mjs')
    for (let round = 0; round < 6; round++) {
      const child = spawn(process.execPath, [script, path], { stdio: ['ignore', 'pipe', 'inherit'] })
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
      await new Promise((resolve) => setTimeout(resolve, 20 + round * 37))
      child.kill('SIGKILL')
      await new Promise((resolve) => child.once('exit', resolve))
      const tree = JSON.parse(readFileSync(path, 'utf8'))
      expect(tree.ipv8.bootstrap_override).toMatch(/^[ab]x{200000}$/)
      const loaded = TriblerConfig.load(path)
      expect(loaded.getString('ipv8', 'bootstrap_override')).toHaveLength(200_001)
    }
  })
})
