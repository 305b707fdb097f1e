import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { configureLogging, type Service } from '../common/index.js'
import { SESSION_EVENT_NAMES, type SessionEvents } from './events.js'
import { Session } from './session.js'

configureLogging({ level: 'silent' })

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tribler-session-'))
}

class Recorder implements Service {
  constructor(
    readonly name: string,
    readonly log: string[],
    readonly fail = false,
  ) {}
  async start(): Promise<void> {
    this.log.push(`start ${this.name}`)
    if (this.fail) throw new Error(`${this.name} cannot start`)
  }
  async stop(): Promise<void> {
    this.log.push(`stop ${this.name}`)
  }
}

function record<K extends keyof SessionEvents>(session: Session, names: K[]): string[] {
  const seen: string[] = []
  for (const name of names)
    session.events.on(name, (payload) => seen.push(`${name} ${JSON.stringify(payload)}`))
  return seen
}

describe('Session', () => {
  it('declares all 26 notification names of the REST contract', () => {
    expect(new Set(SESSION_EVENT_NAMES).size).toBe(26)
  })

  it('starts services in order, early ones first, and stops them in reverse', async () => {
    const log: string[] = []
    const session = new Session({ stateDir: tempDir(), publicNetwork: false })
    session.addService(() => new Recorder('a', log), { readableState: 'Starting a...' })
    session.addService(() => new Recorder('api', log), { early: true })
    session.addService(() => new Recorder('b', log))
    const steps: string[] = []
    session.lifecycle.on('state', (s) => steps.push(s.readable_state))
    const events = record(session, ['tribler_started', 'shutdown'])
    await session.start()
    expect(session.state).toEqual({ state: 'STARTED', last_exception: null, readable_state: 'Started' })
    expect(steps).toEqual([
      'Starting api...',
      'Opening database...',
      'Starting a...',
      'Starting b...',
      'Started',
    ])
    await session.stop()
    expect(log).toEqual(['start api', 'start a', 'start b', 'stop b', 'stop a', 'stop api'])
    expect(events).toEqual([
      'tribler_started undefined',
      'shutdown "Stopping b..."',
      'shutdown "Stopping a..."',
      'shutdown "Saving configuration..."',
      'shutdown "Closing database..."',
      'shutdown "Shutdown complete"',
      'shutdown "Stopping api..."',
    ])
    expect(session.store.isOpen).toBe(false)
  })

  it('reports UPGRADING while registered migrations run, then STARTING again', async () => {
    const session = new Session({ stateDir: tempDir(), publicNetwork: false })
    const states: string[] = []
    session.lifecycle.on('state', (s) => states.push(s.state))
    const events = record(session, ['upgrader_started', 'upgrader_tick', 'upgrader_finished'])
    session.store.register({
      owner: 'demo',
      migrations: [
        { version: 1, description: 'Creating demo table', up: (db) => db.exec('CREATE TABLE demo (x)') },
      ],
    })
    await session.start()
    expect(states).toEqual(['STARTING', 'UPGRADING', 'STARTING', 'STARTED'])
    expect(events).toEqual([
      'upgrader_started undefined',
      'upgrader_tick {"text":"Creating demo table"}',
      'upgrader_finished undefined',
    ])
    await session.stop()
  })

  it('goes to EXCEPTION when a service fails to start and stops the ones already started', async () => {
    const log: string[] = []
    const session = new Session({ stateDir: tempDir(), publicNetwork: false })
    session.addService(() => new Recorder('api', log), { early: true })
    session.addService(() => new Recorder('a', log))
    session.addService(() => new Recorder('b', log, true))
    const events = record(session, ['tribler_exception', 'tribler_started'])
    await expect(session.start()).rejects.toThrow('b cannot start')
    expect(session.state.state).toBe('EXCEPTION')
    expect(session.state.last_exception).toBe('b cannot start')
    expect(events).toEqual(['tribler_exception {"text":"b cannot start"}'])
    expect(log).toEqual(['start api', 'start a', 'start b', 'stop a'])
    await session.stop()
    expect(log.at(-1)).toBe('stop api')
  })

  it('keeps settings across a restart', async () => {
    const stateDir = tempDir()
    const first = new Session({ stateDir, publicNetwork: false })
    await first.start()
    first.updateSettings({ libtorrent: { max_upload_rate: 1234 } })
    await first.stop()
    const second = new Session({ stateDir, publicNetwork: false })
    await second.start()
    expect(second.config.get('libtorrent', 'max_upload_rate')).toBe(1234)
    await second.stop()
  })

  it('stops once however often stop is called, and refuses services after start', async () => {
    const log: string[] = []
    const session = new Session({ stateDir: tempDir(), publicNetwork: false })
    session.addService(() => new Recorder('a', log))
    await session.start()
    expect(() => session.addService(() => new Recorder('late', log))).toThrow()
    await Promise.all([session.stop(), session.stop(), session.stop()])
    expect(log).toEqual(['start a', 'stop a'])
    expect(session.isShuttingDown).toBe(true)
  })

  it('gives services what they need through deps, including the public network switch', () => {
    const session = new Session({ stateDir: tempDir(), publicNetwork: false })
    let publicNetwork: boolean | undefined
    session.addService((deps) => {
      publicNetwork = deps.publicNetwork
      expect(deps.config).toBe(session.config)
      expect(deps.store).toBe(session.store)
      expect(deps.signal.aborted).toBe(false)
      return new Recorder('probe', [])
    })
    expect(publicNetwork).toBe(false)
    expect(new Session({ stateDir: tempDir(), publicNetwork: true }).publicNetwork).toBe(true)
  })

  it('defaults downloads to ~/Downloads/TriblerDownloads and follows download_defaults.saveas', () => {
    const session = new Session({ stateDir: tempDir(), publicNetwork: false })
    expect(session.downloadDir.endsWith(join('Downloads', 'TriblerDownloads'))).toBe(true)
    session.updateSettings({ download_defaults: { saveas: '/data/dl' } })
    expect(session.downloadDir).toBe('/data/dl')
  })
})
