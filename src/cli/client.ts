import { TriblerError } from '../common/index.js'

/** Why a call to the core failed. */
export type CoreClientErrorCode =
  /** Nothing answers at the address (connection refused, host unknown, timeout). */
  | 'UNREACHABLE'
  /** The core refused the API key. */
  | 'UNAUTHORIZED'
  /** The core answered with an error status and body. */
  | 'REST_ERROR'
  /** The answer is not what the REST contract says. */
  | 'BAD_RESPONSE'
  /** The core did not reach STARTED in time. */
  | 'NOT_STARTED'

/** A failure of a {@link CoreClient} call; the message is one line for users. */
export class CoreClientError extends TriblerError<CoreClientErrorCode> {}

/** Where the core is and how to authenticate. */
export interface CoreAddress {
  readonly host: string
  readonly port: number
  readonly apiKey?: string | undefined
}

/** One line of `GET /events`. */
export interface CoreEvent {
  readonly type: string
  readonly event?: unknown
}

/** The text of a REST error body: the plain `{"error": "…"}` or the structured `{"error": {"message": …}}`. */
export function restErrorText(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const error = (body as { error?: unknown }).error
  if (typeof error === 'string') return error
  if (typeof error === 'object' && error !== null) {
    const { message, code } = error as { message?: unknown; code?: unknown }
    if (typeof message === 'string') return typeof code === 'string' ? `${message} (${code})` : message
  }
  return undefined
}

/**
 * A client of a running core's REST API, for the CLI's download commands: form-encoded bodies, the API key in
 * `X-Api-Key`, errors as {@link CoreClientError} with one clear line.
 *
 * @example
 * ```ts
 * const core = new CoreClient({ host: '127.0.0.1', port: 8085, apiKey })
 * const { downloads } = await core.request<{ downloads: unknown[] }>('GET', '/downloads')
 * ```
 */
export class CoreClient {
  readonly url: string
  readonly #apiKey: string | undefined

  constructor(address: CoreAddress) {
    const host = address.host.includes(':') ? `[${address.host}]` : address.host
    this.url = `http://${host}:${address.port}`
    this.#apiKey = address.apiKey === '' ? undefined : address.apiKey
  }

  /** Calls `method path` with an optional form body; resolves with the parsed JSON body of a 2xx answer. */
  async request<T>(
    method: string,
    path: string,
    form?: Record<string, string | readonly string[] | undefined>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.#apiKey !== undefined) headers['x-api-key'] = this.#apiKey
    let body: string | undefined
    if (form !== undefined) {
      const params = new URLSearchParams()
      for (const [key, value] of Object.entries(form)) {
        if (value === undefined) continue
        if (typeof value === 'string') params.append(key, value)
        else for (const item of value) params.append(key, item)
      }
      body = params.toString()
      headers['content-type'] = 'application/x-www-form-urlencoded'
    }
    const response = await this.#fetch(`${this.url}${path}`, { method, headers, body, signal: opts.signal })
    const text = await response.text()
    let json: unknown
    try {
      json = text === '' ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    if (response.status === 401) {
      throw new CoreClientError(
        'UNAUTHORIZED',
        { status: 401 },
        this.#apiKey === undefined
          ? `the Tribler core at ${this.url} needs an API key: pass --api-key or set TRIBLER_API_KEY`
          : `the Tribler core at ${this.url} refused the API key`,
      )
    }
    if (!response.ok) {
      const reason = restErrorText(json) ?? (text.trim().slice(0, 200) || response.statusText)
      throw new CoreClientError('REST_ERROR', { status: response.status, reason }, reason)
    }
    if (json === undefined) {
      throw new CoreClientError(
        'BAD_RESPONSE',
        { status: response.status },
        `the core sent no JSON for ${path}`,
      )
    }
    return json as T
  }

  /**
   * Waits until the core reports `STARTED` (late endpoints answer 404 before that). Rejects with `NOT_STARTED`
   * after `timeoutMs`, or with `UNREACHABLE` when nothing answers.
   */
  async waitStarted(opts: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
    const deadline = Date.now() + opts.timeoutMs
    for (;;) {
      const { state, last_exception, readable_state } = await this.request<{
        state?: string
        last_exception?: string | null
        readable_state?: string
      }>('GET', '/state', undefined, opts)
      if (state === 'STARTED') return
      // EXCEPTION stays after any unhandled error; a core that got as far as Started still serves every endpoint.
      if (state === 'EXCEPTION' && readable_state === 'Started') return
      if (state === 'EXCEPTION') {
        throw new CoreClientError(
          'NOT_STARTED',
          { state },
          `the Tribler core failed to start: ${last_exception ?? 'unknown error'}`,
        )
      }
      if (Date.now() > deadline) {
        throw new CoreClientError(
          'NOT_STARTED',
          { state },
          `the Tribler core at ${this.url} is still starting (${state})`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }

  /**
   * Reads `GET /events` and calls `onEvent` for each line until `signal` aborts or the stream ends. Resolves when
   * the stream ends; rejects like {@link CoreClient.request} when it cannot be opened.
   */
  async events(onEvent: (event: CoreEvent) => void, opts: { signal: AbortSignal }): Promise<void> {
    const headers: Record<string, string> = {}
    if (this.#apiKey !== undefined) headers['x-api-key'] = this.#apiKey
    const response = await this.#fetch(`${this.url}/events`, { method: 'GET', headers, signal: opts.signal })
    if (!response.ok || response.body === null) {
      throw new CoreClientError(
        'REST_ERROR',
        { status: response.status },
        `GET /events answered ${response.status}`,
      )
    }
    const decoder = new TextDecoder()
    let pending = ''
    try {
      for await (const chunk of response.body) {
        pending += decoder.decode(chunk as Uint8Array, { stream: true })
        let newline = pending.indexOf('\n')
        while (newline >= 0) {
          const line = pending.slice(0, newline).trim()
          pending = pending.slice(newline + 1)
          newline = pending.indexOf('\n')
          if (line === '') continue
          try {
            const parsed = JSON.parse(line) as CoreEvent
            if (typeof parsed.type === 'string') onEvent(parsed)
          } catch {
            // a line that is not JSON is skipped; the stream goes on
          }
        }
      }
    } catch (err) {
      if (opts.signal.aborted) return
      throw err
    }
  }

  async #fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, init)
    } catch (err) {
      if (init.signal?.aborted) throw err
      throw new CoreClientError(
        'UNREACHABLE',
        { url: this.url, cause: err },
        `cannot reach the Tribler core at ${this.url}: is it running? (start it with \`tribler\`)`,
      )
    }
  }
}
