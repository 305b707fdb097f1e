import type { ServerResponse } from 'node:http'
import { logger, type TypedEmitter } from '../common/index.js'
import { SESSION_EVENT_NAMES, type SessionEventName, type SessionEvents } from '../session/index.js'

const log = logger('api:events')

/** Bytes a listener may have unread before it is dropped. */
export const DEFAULT_MAX_BUFFERED_BYTES = 4 * 1024 * 1024

/**
 * Fans session notifications out to every `GET /events` listener as newline-delimited JSON. Each event is
 * serialised once. A listener that stops reading is dropped once `maxBufferedBytes` wait for it, so a slow client
 * never holds memory without bound or stalls the core.
 */
export class EventStream {
  readonly #listeners = new Set<ServerResponse>()
  readonly #unsubscribe: Array<() => void> = []
  readonly #maxBufferedBytes: number
  #dropped = 0

  constructor(events: TypedEmitter<SessionEvents>, opts: { maxBufferedBytes?: number } = {}) {
    this.#maxBufferedBytes = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES
    for (const name of SESSION_EVENT_NAMES) {
      if (name === 'events_start') continue
      this.#unsubscribe.push(events.on(name, (payload) => this.broadcast(name, payload)))
    }
  }

  /** Listeners connected now. */
  get size(): number {
    return this.#listeners.size
  }

  /** Listeners dropped for not reading. */
  get dropped(): number {
    return this.#dropped
  }

  /** Takes over a response: sends the headers and `events_start`, then every event until either side closes. */
  add(res: ServerResponse, start: SessionEvents['events_start'], headers: Record<string, string> = {}): void {
    res.writeHead(200, {
      ...headers,
      'content-type': 'application/x-ndjson; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    })
    res.socket?.setNoDelay(true)
    this.#listeners.add(res)
    res.on('close', () => this.#listeners.delete(res))
    this.#write(res, line('events_start', start))
  }

  /** Sends one event to every listener. */
  broadcast<K extends SessionEventName>(name: K, payload: SessionEvents[K]): void {
    if (this.#listeners.size === 0) return
    const text = line(name, payload)
    for (const res of this.#listeners) this.#write(res, text)
  }

  /** Ends every stream and stops listening to the session. */
  close(): void {
    for (const off of this.#unsubscribe.splice(0)) off()
    for (const res of this.#listeners) res.end()
    this.#listeners.clear()
  }

  #write(res: ServerResponse, text: string): void {
    if (res.writableLength > this.#maxBufferedBytes) {
      this.#dropped++
      this.#listeners.delete(res)
      log.debug('dropping an events listener that does not read', { buffered: res.writableLength })
      res.destroy()
      return
    }
    res.write(text)
  }
}

function line(name: string, payload: unknown): string {
  return `${JSON.stringify(payload === undefined ? { type: name } : { type: name, event: payload })}\n`
}
