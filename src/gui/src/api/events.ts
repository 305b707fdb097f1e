import { JsonLineSplitter } from '../lib/lines.js'
import type { ApiClient } from './client.js'
import type { CoreEvent } from './types.js'

/** Connection to the events stream: `open` after `events_start`, `lost` while waiting to reconnect. */
export type StreamState = { kind: 'connecting' } | { kind: 'open' } | { kind: 'lost'; retryAtMs: number }

/** Callbacks of an `EventStream`. */
export interface EventStreamHandlers {
  onEvent(event: CoreEvent): void
  onState(state: StreamState): void
}

const FIRST_RETRY_MS = 500
const MAX_RETRY_MS = 10_000

/**
 * Follows GET /events with a streaming fetch (so the `X-Api-Key` header can be sent), parses its JSON lines and
 * reconnects with exponential backoff when the stream ends or fails.
 *
 * @example
 * const stream = new EventStream(api, { onEvent: console.log, onState: console.log })
 * stream.start()
 */
export class EventStream {
  readonly #api: ApiClient
  readonly #handlers: EventStreamHandlers
  #controller: AbortController | undefined
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #retryMs = FIRST_RETRY_MS
  #stopped = true

  constructor(api: ApiClient, handlers: EventStreamHandlers) {
    this.#api = api
    this.#handlers = handlers
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    void this.#connect()
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#retryTimer)
    this.#controller?.abort()
  }

  /** Reconnects now instead of waiting for the backoff timer. */
  retryNow(): void {
    if (this.#stopped || this.#controller) return
    clearTimeout(this.#retryTimer)
    void this.#connect()
  }

  async #connect(): Promise<void> {
    const controller = new AbortController()
    this.#controller = controller
    this.#handlers.onState({ kind: 'connecting' })
    try {
      const response = await fetch(this.#api.url('/events'), {
        headers: { ...this.#api.headers(), Accept: 'application/json' },
        signal: controller.signal,
        cache: 'no-store',
      })
      if (response.status === 401) {
        this.#controller = undefined
        const retry = await this.#api.recoverFromUnauthorized()
        if (retry && !this.#stopped) return this.#connect()
        return this.#scheduleRetry()
      }
      if (!response.ok || !response.body) throw new Error(`events stream answered ${response.status}`)
      await this.#read(response.body, controller.signal)
    } catch {
      // A refused connection or a dropped stream: both mean "lost", handled below.
    }
    if (this.#controller === controller) this.#controller = undefined
    if (!this.#stopped) this.#scheduleRetry()
  }

  async #read(body: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<void> {
    const reader = body.getReader()
    const decoder = new TextDecoder()
    const splitter = new JsonLineSplitter()
    try {
      while (!signal.aborted) {
        const { done, value } = await reader.read()
        if (done) break
        for (const obj of splitter.push(decoder.decode(value, { stream: true }))) {
          if (typeof obj.type !== 'string') continue
          if (obj.type === 'events_start') {
            this.#retryMs = FIRST_RETRY_MS
            this.#handlers.onState({ kind: 'open' })
          }
          this.#handlers.onEvent({ type: obj.type, event: obj.event })
        }
      }
    } finally {
      reader.releaseLock()
    }
  }

  #scheduleRetry(): void {
    const delay = this.#retryMs
    this.#retryMs = Math.min(MAX_RETRY_MS, this.#retryMs * 2)
    this.#handlers.onState({ kind: 'lost', retryAtMs: Date.now() + delay })
    this.#retryTimer = setTimeout(() => {
      if (!this.#stopped) void this.#connect()
    }, delay)
  }
}
