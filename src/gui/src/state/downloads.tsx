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
import { errorText, isStatus } from '../api/client.js'
import type { Download } from '../api/types.js'
import { useCore, useCoreEvents } from './core.js'

/** Whether the core offers /downloads: `absent` is the honest 404 of a core without the endpoints. */
export type DownloadsAvailability = 'loading' | 'ok' | 'absent' | 'error'

/** The live download list shared by the downloads page and the status bar. */
export interface DownloadsContextValue {
  downloads: Download[]
  availability: DownloadsAvailability
  /** Text of the last failed poll, for `error`. */
  error: string
  /** Re-reads GET /downloads now. */
  refresh(): void
  /** Asks for peers, pieces and files of every download while a details pane is open. */
  setDetailed(detailed: boolean): void
}

const DownloadsContext = createContext<DownloadsContextValue | undefined>(undefined)

const POLL_MS = 2000
// A core without /downloads is asked again rarely, and at once when it reports it has started.
const ABSENT_POLL_MS = 15_000

/** The downloads context; only valid below `DownloadsProvider`. */
export function useDownloads(): DownloadsContextValue {
  const value = useContext(DownloadsContext)
  if (!value) throw new Error('useDownloads outside DownloadsProvider')
  return value
}

const REFRESHING_EVENTS = new Set(['tribler_started', 'torrent_finished', 'torrent_error', 'events_start'])

/** Polls GET /downloads (lightly, and again on download events) while the core is reachable. */
export function DownloadsProvider({ children }: { children: ReactNode }) {
  const { api, state, stream, offers } = useCore()
  const [downloads, setDownloads] = useState<Download[]>([])
  const [availability, setAvailability] = useState<DownloadsAvailability>('loading')
  const [error, setError] = useState('')
  const [detailed, setDetailed] = useState(false)
  const [tick, setTick] = useState(0)
  const inFlight = useRef(false)

  const refresh = useCallback(() => setTick((t) => t + 1), [])
  useCoreEvents((event) => {
    if (REFRESHING_EVENTS.has(event.type)) refresh()
  })

  const started = state?.state === 'STARTED'
  const connected = stream.kind === 'open'
  const offered = offers('/downloads')
  useEffect(() => {
    void tick
    if (!connected || !started || offered === 'pending') return
    if (offered === 'no') {
      setAvailability('absent')
      setDownloads([])
      return
    }
    let cancelled = false
    const load = async () => {
      if (inFlight.current) return
      inFlight.current = true
      try {
        const query = detailed ? { get_peers: 1, get_pieces: 1, get_files: 1 } : undefined
        const body = await api.get<{ downloads: Download[] }>('/downloads', query)
        if (cancelled) return
        setDownloads(Array.isArray(body?.downloads) ? body.downloads : [])
        setAvailability('ok')
        setError('')
      } catch (err) {
        if (cancelled) return
        if (isStatus(err, 404)) {
          setAvailability('absent')
          setDownloads([])
        } else {
          setAvailability('error')
          setError(err instanceof Error ? err.message : errorText(err, 'request failed'))
        }
      } finally {
        inFlight.current = false
      }
    }
    void load()
    const timer = setInterval(load, availability === 'absent' ? ABSENT_POLL_MS : POLL_MS)
    return () => {
      cancelled = true
      clearInterval(timer)
    }
  }, [api, connected, started, offered, detailed, tick, availability])

  const value = useMemo<DownloadsContextValue>(
    () => ({ downloads, availability, error, refresh, setDetailed }),
    [downloads, availability, error, refresh],
  )
  return <DownloadsContext.Provider value={value}>{children}</DownloadsContext.Provider>
}
