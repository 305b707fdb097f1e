import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react'
import { type ApiClient, isStatus } from '../api/client.js'
import { EventStream, type StreamState } from '../api/events.js'
import type { CoreEvent, CoreState } from '../api/types.js'

/** What every page knows about the core. */
export interface CoreContextValue {
  api: ApiClient
  /** Last answer of GET /state; undefined until the first one. */
  state: CoreState | undefined
  /** Connection to the events stream. */
  stream: StreamState
  /** Latest `upgrader_tick` text while upgrading. */
  upgradeText: string
  /** Latest `shutdown` step, once the core is shutting down. */
  shutdownText: string | undefined
  /** Version from `events_start`. */
  version: string | undefined
  /** Subscribes to every event of the stream; returns the unsubscribe function. */
  subscribe(listener: (event: CoreEvent) => void): () => void
  /** Re-reads GET /state now. */
  refreshState(): void
  /**
   * Whether the core offers a REST path, from its OpenAPI description (`/openapi.json`): `pending` until that is
   * read, `unknown` when the core does not describe itself (callers then simply try the path).
   */
  offers(path: string): Offer
}

/** Whether the core offers a REST path; see `CoreContextValue.offers`. */
export type Offer = 'yes' | 'no' | 'unknown' | 'pending'

const CoreContext = createContext<CoreContextValue | undefined>(undefined)

const STATE_POLL_MS = 2000

/** The core context; only valid below `CoreProvider`. */
export function useCore(): CoreContextValue {
  const value = useContext(CoreContext)
  if (!value) throw new Error('useCore outside CoreProvider')
  return value
}

/** Subscribes `listener` to core events for the component's lifetime. */
export function useCoreEvents(listener: (event: CoreEvent) => void): void {
  const { subscribe } = useCore()
  const ref = useRef(listener)
  ref.current = listener
  useEffect(() => subscribe((event) => ref.current(event)), [subscribe])
}

function eventText(event: unknown, key: string): string | undefined {
  if (typeof event === 'string') return event
  if (typeof event === 'object' && event !== null) {
    const value = (event as Record<string, unknown>)[key]
    if (typeof value === 'string') return value
  }
  return undefined
}

/** Owns the REST client, the events stream and the core state for the whole GUI. */
export function CoreProvider({ api, children }: { api: ApiClient; children: ReactNode }) {
  const [state, setState] = useState<CoreState>()
  const [stream, setStream] = useState<StreamState>({ kind: 'connecting' })
  const [upgradeText, setUpgradeText] = useState('')
  const [shutdownText, setShutdownText] = useState<string>()
  const [version, setVersion] = useState<string>()
  const [paths, setPaths] = useState<ReadonlySet<string> | 'pending' | 'unknown'>('pending')
  const listeners = useRef(new Set<(event: CoreEvent) => void>())
  const stateRequest = useRef(0)

  const refreshState = useCallback(() => {
    const request = ++stateRequest.current
    api.get<CoreState>('/state').then(
      (next) => {
        if (request === stateRequest.current) setState(next)
      },
      (err: unknown) => {
        // A 401 the person declined leaves the last known state; network failures show as a lost stream.
        if (!isStatus(err, 401)) return
      },
    )
  }, [api])

  const subscribe = useCallback((listener: (event: CoreEvent) => void) => {
    listeners.current.add(listener)
    return () => {
      listeners.current.delete(listener)
    }
  }, [])

  useEffect(() => {
    const events = new EventStream(api, {
      onState: (next) => {
        setStream(next)
        if (next.kind === 'open') {
          setShutdownText(undefined)
          refreshState()
        }
      },
      onEvent: (event) => {
        switch (event.type) {
          case 'events_start':
            setVersion(eventText(event.event, 'version'))
            break
          case 'tribler_started':
          case 'upgrader_finished':
            refreshState()
            break
          case 'upgrader_started':
            setUpgradeText('')
            refreshState()
            break
          case 'upgrader_tick':
            setUpgradeText(eventText(event.event, 'text') ?? '')
            break
          case 'tribler_exception':
            refreshState()
            break
          case 'shutdown':
            setShutdownText(eventText(event.event, 'text') ?? 'Shutting down...')
            break
        }
        for (const listener of listeners.current) listener(event)
      },
    })
    events.start()
    const retryOnFocus = () => events.retryNow()
    window.addEventListener('online', retryOnFocus)
    return () => {
      window.removeEventListener('online', retryOnFocus)
      events.stop()
    }
  }, [api, refreshState])

  // GET /state is polled only until the core settles; events drive the rest.
  const settled = state?.state === 'STARTED' || state?.state === 'EXCEPTION'
  useEffect(() => {
    refreshState()
    if (settled || stream.kind !== 'open') return
    const timer = setInterval(refreshState, STATE_POLL_MS)
    return () => clearInterval(timer)
  }, [settled, stream.kind, refreshState])

  // The core's routes are read once per connection after it started: asking for a missing endpoint would only
  // produce a 404 (and a console error) on every poll.
  const started = state?.state === 'STARTED'
  useEffect(() => {
    if (!started || stream.kind !== 'open') return
    let cancelled = false
    setPaths('pending')
    api.get<{ paths?: Record<string, unknown> }>('/openapi.json').then(
      (doc) => {
        if (!cancelled) setPaths(doc?.paths ? new Set(Object.keys(doc.paths)) : 'unknown')
      },
      () => {
        if (!cancelled) setPaths('unknown')
      },
    )
    return () => {
      cancelled = true
    }
  }, [api, started, stream.kind])
  const offers = useCallback(
    (path: string): Offer => (typeof paths === 'string' ? paths : paths.has(path) ? 'yes' : 'no'),
    [paths],
  )

  const value = useMemo<CoreContextValue>(
    () => ({ api, state, stream, upgradeText, shutdownText, version, subscribe, refreshState, offers }),
    [api, state, stream, upgradeText, shutdownText, version, subscribe, refreshState, offers],
  )
  return <CoreContext.Provider value={value}>{children}</CoreContext.Provider>
}
