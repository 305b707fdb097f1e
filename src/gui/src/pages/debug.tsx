import { useCallback, useEffect, useRef, useState } from 'react'
import { isStatus } from '../api/client.js'
import type { Circuit, CoreEvent } from '../api/types.js'
import { Card } from '../components/card.js'
import { Icon } from '../components/icons.js'
import { formatBytes, formatTime } from '../lib/format.js'
import { type Offer, useCore, useCoreEvents } from '../state/core.js'

const POLL_MS = 3000
const MAX_EVENTS = 60

/** A polled resource: `absent` is the core's 404 for a part it does not run. */
type Polled<T> =
  | { kind: 'loading' }
  | { kind: 'ok'; value: T }
  | { kind: 'absent' }
  | { kind: 'failed'; message: string }

function usePolled<T>(load: () => Promise<T>, active: boolean, offered: Offer): Polled<T> {
  const [result, setResult] = useState<Polled<T>>({ kind: 'loading' })
  useEffect(() => {
    if (!active || offered === 'pending') return
    if (offered === 'no') {
      setResult({ kind: 'absent' })
      return
    }
    let cancelled = false
    const run = () =>
      load().then(
        (value) => {
          if (!cancelled) setResult({ kind: 'ok', value })
        },
        (err: unknown) => {
          if (cancelled) return
          setResult(
            isStatus(err, 404)
              ? { kind: 'absent' }
              : { kind: 'failed', message: err instanceof Error ? err.message : String(err) },
          )
        },
      )
    void run()
    const timer = setInterval(run, POLL_MS)
    return () => {
      cancelled = true
      clearInterval(timer)
    }
  }, [load, active, offered])
  return result
}

/** The debug page: core state, tunnel circuits (GET /debug/circuits), the latest events and the core log. */
export function DebugPage() {
  const { api, state, stream, version, offers } = useCore()
  const started = state?.state === 'STARTED'
  const [events, setEvents] = useState<{ id: number; at: number; event: CoreEvent }[]>([])
  const nextEventId = useRef(0)
  useCoreEvents((event) => {
    const id = nextEventId.current++
    setEvents((all) => [{ id, at: Date.now(), event }, ...all].slice(0, MAX_EVENTS))
  })

  const circuits = usePolled(
    useCallback(() => api.get<{ circuits: Circuit[] }>('/debug/circuits'), [api]),
    started,
    offers('/debug/circuits'),
  )
  const log = usePolled(
    useCallback(() => api.get<{ content: string }>('/debug/log', { process: 'core', max_lines: 200 }), [api]),
    started,
    offers('/debug/log'),
  )

  return (
    <div className="debug-page">
      <div className="page-header">
        <h1>Debug</h1>
      </div>
      <div className="debug-scroll">
        <Card id="debug-core" title="Core">
          <dl className="facts">
            <div>
              <dt>State</dt>
              <dd data-testid="debug-state">{state?.state ?? '–'}</dd>
            </div>
            <div>
              <dt>Startup step</dt>
              <dd>{state?.readable_state || '–'}</dd>
            </div>
            <div>
              <dt>Version</dt>
              <dd>{version ?? '–'}</dd>
            </div>
            <div>
              <dt>Events stream</dt>
              <dd>{stream.kind}</dd>
            </div>
            {state?.last_exception && (
              <div className="wide">
                <dt>Last exception</dt>
                <dd>
                  <pre className="log">{state.last_exception}</pre>
                </dd>
              </div>
            )}
          </dl>
        </Card>

        <Card id="debug-circuits" title="Tunnel circuits" testId="circuits">
          {circuits.kind === 'loading' && (
            <p className="muted">{started ? 'Loading…' : 'Waiting for the core to start…'}</p>
          )}
          {circuits.kind === 'absent' && (
            <p className="notice notice-info" data-testid="circuits-absent">
              <Icon name="circuits" size={16} /> No tunnel community running: this core has no anonymous
              tunnels.
            </p>
          )}
          {circuits.kind === 'failed' && <p className="notice notice-warn">{circuits.message}</p>}
          {circuits.kind === 'ok' && <CircuitTable circuits={circuits.value.circuits ?? []} />}
        </Card>

        <Card id="debug-events" title="Latest events">
          {events.length === 0 ? (
            <p className="muted">No events since this page opened.</p>
          ) : (
            <ul className="event-list">
              {events.map(({ id, at, event }) => (
                <li key={id}>
                  <time className="muted mono">{new Date(at).toLocaleTimeString()}</time>
                  <span className="event-type">{event.type}</span>
                  {event.event !== undefined && (
                    <code className="ellipsis">{JSON.stringify(event.event)}</code>
                  )}
                </li>
              ))}
            </ul>
          )}
        </Card>

        <Card id="debug-log" title="Core log">
          {log.kind === 'loading' && <p className="muted">Loading…</p>}
          {log.kind === 'absent' && <p className="muted">This core does not expose its log.</p>}
          {log.kind === 'failed' && <p className="notice notice-warn">{log.message}</p>}
          {log.kind === 'ok' &&
            (log.value.content ? (
              <pre className="log">{log.value.content}</pre>
            ) : (
              <p className="muted">The log is empty.</p>
            ))}
        </Card>
      </div>
    </div>
  )
}

function CircuitTable({ circuits }: { circuits: Circuit[] }) {
  if (circuits.length === 0)
    return (
      <p className="muted" data-testid="circuits-empty">
        No circuits yet.
      </p>
    )
  const headings = ['Circuit', 'State', 'Hops', 'Route', 'Up', 'Down', 'Created']
  return (
    <table className="table compact">
      <thead>
        <tr>
          {headings.map((h) => (
            <th key={h} scope="col" className={h === 'Up' || h === 'Down' ? 'num' : undefined}>
              {h}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {circuits.map((c) => (
          <tr key={c.id}>
            <td className="mono">{c.id}</td>
            <td>{c.state}</td>
            <td>
              {c.hops.length} / {c.goal_hops}
            </td>
            <td className="mono ellipsis">{c.hops.map((h) => h.host).join(' → ') || '–'}</td>
            <td className="num">{formatBytes(c.bytes_up)}</td>
            <td className="num">{formatBytes(c.bytes_down)}</td>
            <td>{formatTime(c.created)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
