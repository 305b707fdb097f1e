import { mkdirSync } from 'node:fs'
import {
  type Clock,
  errorMessage,
  logger,
  type Service,
  systemClock,
  TriblerError,
  TypedEmitter,
} from '../common/index.js'
import { type SettingChange, TriblerConfig } from '../config/index.js'
import { Store } from '../store/index.js'
import type { SessionEvents } from './events.js'
import { tailFile } from './log-file.js'
import { defaultDownloadDir, publicNetworkFromEnv, type StatePaths, statePaths } from './paths.js'
import type {
  LifecycleEvents,
  PortRegistry,
  ServiceDeps,
  ServiceFactory,
  ServiceOptions,
  SessionErrorCode,
  StateSnapshot,
} from './types.js'
import { triblerVersion } from './version.js'

const log = logger('session')

/** A session error. */
export class SessionError extends TriblerError<SessionErrorCode> {}

/** How a {@link Session} is built. */
export interface SessionOptions {
  /** The state directory (settings, database, keys, logs, resume data). */
  stateDir: string
  /**
   * False for the private, LAN-free mode (see {@link ServiceDeps.publicNetwork}). Default: on, unless
   * `TRIBLER_NO_PUBLIC_NETWORK=1`.
   */
  publicNetwork?: boolean
  clock?: Clock
  /** Use this config instead of loading `<stateDir>/settings.json`. */
  config?: TriblerConfig
  /** Database file; default `<stateDir>/tribler.db`. `:memory:` for tests. */
  databasePath?: string
}

interface Entry {
  readonly service: Service
  readonly options: ServiceOptions
  started: boolean
}

class Ports implements PortRegistry {
  readonly #ports = new Map<string, number>()
  set(name: string, port: number): void {
    this.#ports.set(name, port)
  }
  get(name: string): number | undefined {
    return this.#ports.get(name)
  }
  entries(): Record<string, number> {
    return Object.fromEntries(this.#ports)
  }
}

/**
 * The core: owns the config, the store and the notifications, and starts every service in order (stopping them in
 * reverse). The REST API and the CLI talk only to a Session.
 *
 * Start: early services (the REST API) → open the database → run pending migrations (state `UPGRADING`) →
 * services in the order added → `STARTED` and `tribler_started`. A failure puts the session in `EXCEPTION` with
 * `last_exception` set; early services keep running so clients can read it.
 *
 * @example
 * ```ts
 * const session = new Session({ stateDir, publicNetwork: false })
 * session.addService((deps) => new RestApi(session, { port: 8085 }), { early: true })
 * session.addService((deps) => new DownloadManager(deps), { readableState: 'Starting libtorrent...' })
 * await session.start()
 * session.events.on('torrent_finished', ({ name }) => console.log(name))
 * await session.stop()
 * ```
 */
export class Session {
  /** The notifications of the REST contract (§2); `/events` forwards every one. */
  readonly events = new TypedEmitter<SessionEvents>()
  /** State changes and the end of a shutdown. */
  readonly lifecycle = new TypedEmitter<LifecycleEvents>()
  readonly config: TriblerConfig
  readonly store: Store
  readonly paths: StatePaths
  readonly clock: Clock
  readonly publicNetwork: boolean
  readonly version = triblerVersion()
  readonly ports: PortRegistry = new Ports()
  readonly #entries: Entry[] = []
  readonly #stopping = new AbortController()
  #state: StateSnapshot = { state: 'STARTING', last_exception: null, readable_state: '' }
  #starting: Promise<void> | undefined
  #stopped: Promise<void> | undefined

  constructor(opts: SessionOptions) {
    this.paths = statePaths(opts.stateDir)
    this.clock = opts.clock ?? systemClock
    this.publicNetwork = opts.publicNetwork ?? publicNetworkFromEnv()
    mkdirSync(this.paths.root, { recursive: true, mode: 0o700 })
    this.config = opts.config ?? TriblerConfig.load(this.paths.settings)
    this.store = new Store(opts.databasePath ?? this.paths.database)
  }

  /** `GET /state`'s body, a fresh copy. */
  get state(): StateSnapshot {
    return { ...this.#state }
  }

  get isStarted(): boolean {
    return this.#state.state === 'STARTED'
  }

  /** True from the moment a shutdown begins. */
  get isShuttingDown(): boolean {
    return this.#stopping.signal.aborted
  }

  /** Where downloads go: `download_defaults.saveas`, or `~/Downloads/TriblerDownloads` when it is null or empty. */
  get downloadDir(): string {
    const saveas = this.config.get('download_defaults', 'saveas')
    return typeof saveas === 'string' && saveas !== '' ? saveas : defaultDownloadDir()
  }

  /** The deps object services are built from. */
  get deps(): ServiceDeps {
    return {
      config: this.config,
      store: this.store,
      events: this.events,
      clock: this.clock,
      logger,
      publicNetwork: this.publicNetwork,
      paths: this.paths,
      ports: this.ports,
      signal: this.#stopping.signal,
      reportException: (err) => this.reportException(err),
    }
  }

  /**
   * Builds a service from the session's deps and adds it to the start order (after those added before it).
   * Must be called before {@link Session.start}. Returns the service.
   */
  addService<S extends Service>(factory: ServiceFactory<S>, options: ServiceOptions = {}): S {
    if (this.#starting !== undefined) throw new SessionError('ALREADY_STARTED')
    const service = factory(this.deps)
    if (this.#entries.some((entry) => entry.service.name === service.name)) {
      throw new SessionError('SERVICE_EXISTS', { name: service.name })
    }
    this.#entries.push({ service, options, started: false })
    return service
  }

  /** The service added under `name`. */
  service<S extends Service>(name: string): S | undefined {
    return this.#entries.find((entry) => entry.service.name === name)?.service as S | undefined
  }

  /**
   * Starts everything (see the class description). Resolves once `STARTED`; rejects with the failure otherwise,
   * leaving the session in `EXCEPTION`. Call it once.
   */
  start(): Promise<void> {
    if (this.#starting !== undefined) throw new SessionError('ALREADY_STARTED')
    this.#starting = this.#start()
    return this.#starting
  }

  async #start(): Promise<void> {
    try {
      for (const dir of [this.paths.keys, this.paths.logs, this.paths.resume]) {
        mkdirSync(dir, { recursive: true, mode: 0o700 })
      }
      await this.#startEntries(true)
      this.#setState({ readable_state: 'Opening database...' })
      this.store.open()
      this.#upgrade()
      await this.#startEntries(false)
      if (this.isShuttingDown) throw new SessionError('STOPPED')
      this.#setState({ state: 'STARTED', readable_state: 'Started' })
      log.info('started', { version: this.version, publicNetwork: this.publicNetwork })
      this.events.emit('tribler_started', undefined)
    } catch (err) {
      this.reportException(err)
      await this.#stopEntries(false)
      throw err
    }
  }

  #upgrade(): void {
    const pending = this.store.pending()
    if (pending.length === 0) return
    this.#setState({ state: 'UPGRADING', readable_state: 'Upgrading Tribler...' })
    this.events.emit('upgrader_started', undefined)
    this.store.migrate((step) => {
      log.info('migrating', { owner: step.owner, version: step.version })
      this.events.emit('upgrader_tick', { text: step.description })
    })
    this.events.emit('upgrader_finished', undefined)
    this.#setState({ state: 'STARTING' })
  }

  async #startEntries(early: boolean): Promise<void> {
    for (const entry of this.#entries) {
      if ((entry.options.early === true) !== early) continue
      if (this.isShuttingDown) throw new SessionError('STOPPED')
      this.#setState({ readable_state: entry.options.readableState ?? `Starting ${entry.service.name}...` })
      await entry.service.start()
      entry.started = true
    }
  }

  async #stopEntries(early: boolean): Promise<unknown> {
    let failure: unknown
    for (const entry of [...this.#entries].reverse()) {
      if ((entry.options.early === true) !== early || !entry.started) continue
      entry.started = false
      this.events.emit('shutdown', `Stopping ${entry.service.name}...`)
      try {
        await entry.service.stop()
      } catch (err) {
        log.error('service failed to stop', { service: entry.service.name, err })
        failure ??= err
      }
    }
    return failure
  }

  /**
   * Stops every service in reverse start order, saves the settings and closes the database. Returns the same
   * promise when called again. Never rejects: failures are logged and reported in the `stopped` event.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop()
    return this.#stopped
  }

  async #stop(): Promise<void> {
    this.#stopping.abort(new SessionError('STOPPED'))
    // a start in progress stops at its next step; wait for it so nothing starts after this point
    await this.#starting?.catch(() => {})
    let failure = await this.#stopEntries(false)
    this.events.emit('shutdown', 'Saving configuration...')
    try {
      this.config.save()
    } catch (err) {
      log.error('saving settings failed', { err })
      failure ??= err
    }
    this.events.emit('shutdown', 'Closing database...')
    try {
      this.store.close()
    } catch (err) {
      failure ??= err
    }
    this.events.emit('shutdown', 'Shutdown complete')
    failure ??= await this.#stopEntries(true)
    log.info('stopped')
    this.lifecycle.emit('stopped', failure === undefined ? {} : { error: failure })
  }

  /**
   * Asks the session to shut down soon (after the current request is answered). The process owner (the CLI)
   * listens to `lifecycle` `stopped` to exit.
   */
  shutdown(): void {
    if (this.isShuttingDown) return
    this.lifecycle.emit('shutdown_requested', undefined)
    setImmediate(() => void this.stop())
  }

  /**
   * Records an error nothing else handles: state `EXCEPTION`, `last_exception` set and `tribler_exception` sent.
   * The core keeps running.
   */
  reportException(err: unknown): void {
    const text = errorMessage(err)
    log.error('unhandled error', { err })
    this.#setState({ state: 'EXCEPTION', last_exception: text })
    this.events.emit('tribler_exception', { text })
  }

  /**
   * Validates and applies a partial settings tree (see {@link TriblerConfig.update}); all or nothing.
   * Services that apply a setting live listen to `config.events`.
   */
  updateSettings(partial: unknown): SettingChange[] {
    return this.config.update(partial)
  }

  /** The last `maxLines` lines of the core (or GUI) log file. */
  readLog(process: 'core' | 'gui', maxLines: number): string {
    return tailFile(process === 'gui' ? this.paths.guiLog : this.paths.coreLog, maxLines)
  }

  #setState(change: Partial<StateSnapshot>): void {
    // EXCEPTION sticks: later steps may change readable_state only
    const state = this.#state.state === 'EXCEPTION' ? 'EXCEPTION' : (change.state ?? this.#state.state)
    this.#state = { ...this.#state, ...change, state }
    this.lifecycle.emit('state', this.state)
  }
}
