import type { Clock, Logger, Service, TypedEmitter } from '../common/index.js'
import type { TriblerConfig } from '../config/index.js'
import type { Store } from '../store/index.js'
import type { SessionEvents } from './events.js'
import type { StatePaths } from './paths.js'

/** The core's state as `GET /state` reports it. */
export type CoreState = 'STARTING' | 'UPGRADING' | 'STARTED' | 'EXCEPTION'

/** `GET /state`'s body. */
export interface StateSnapshot {
  state: CoreState
  last_exception: string | null
  readable_state: string
}

/** Runtime-chosen ports, reported by `GET /settings` under `ports` (keys `section~key`). */
export interface PortRegistry {
  set(name: string, port: number): void
  get(name: string): number | undefined
  entries(): Record<string, number>
}

/**
 * What a service gets from the session. Ask only for what you use; tests build a smaller object by hand.
 */
export interface ServiceDeps {
  readonly config: TriblerConfig
  readonly store: Store
  readonly events: TypedEmitter<SessionEvents>
  readonly clock: Clock
  /** Makes a namespaced logger, e.g. `deps.logger('bittorrent:tracker')`. */
  readonly logger: (namespace: string) => Logger
  /**
   * False in the private, LAN-free mode: every default bootstrap/router/tracker list is empty and LAN discovery,
   * LSD, UPnP/NAT-PMP and the version check are off. Addresses configured explicitly still work.
   */
  readonly publicNetwork: boolean
  readonly paths: StatePaths
  readonly ports: PortRegistry
  /** Aborts when the session begins to stop. */
  readonly signal: AbortSignal
  /** Reports an error no caller can handle: the core goes to EXCEPTION and sends `tribler_exception`. */
  readonly reportException: (err: unknown) => void
}

/** Builds a service from the session's deps. */
export type ServiceFactory<S extends Service = Service> = (deps: ServiceDeps) => S

/** How a service is started. */
export interface ServiceOptions {
  /** `readable_state` shown while it starts (e.g. `Starting libtorrent...`). */
  readonly readableState?: string
  /**
   * Starts before the database opens and migrations run, and stops last (the REST API, so that `/state` and
   * `/events` answer during the upgrade and carry the shutdown steps).
   */
  readonly early?: boolean
}

/** Internal lifecycle notifications of the session (not sent on `/events`). */
export interface LifecycleEvents {
  state: StateSnapshot
  /** The session finished stopping; `error` is set when a step failed. */
  stopped: { error?: unknown }
  /** `shutdown()` was requested (REST `PUT /shutdown`). */
  shutdown_requested: undefined
}

/** Codes of {@link SessionError}. */
export type SessionErrorCode = 'ALREADY_STARTED' | 'STOPPED' | 'SERVICE_EXISTS' | 'START_FAILED'
