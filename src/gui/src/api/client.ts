const API_KEY_STORAGE = 'tribler.apiKey'

/** An error answer of the REST API, with its status and the text of its error body. */
export class ApiError extends Error {
  readonly status: number
  readonly body: unknown

  constructor(status: number, message: string, body: unknown) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.body = body
  }
}

/**
 * The readable text of a REST error body: either shape of the contract (`{"error": "text"}` or
 * `{"error": {"handled", "code", "message"}}`), else `fallback`.
 */
export function errorText(body: unknown, fallback: string): string {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const error = (body as { error: unknown }).error
    if (typeof error === 'string' && error !== '') return error
    if (typeof error === 'object' && error !== null) {
      const { message, code } = error as { message?: unknown; code?: unknown }
      if (typeof message === 'string' && message !== '') {
        return typeof code === 'string' && code !== '' ? `${message} (${code})` : message
      }
    }
  }
  return fallback
}

/** Query or form parameters; arrays repeat the key (`selected_files[]=a&selected_files[]=b`). */
export type Params = Record<string, string | number | boolean | readonly string[] | undefined>

function encodeParams(params: Params): URLSearchParams {
  const out = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue
    if (Array.isArray(value)) for (const v of value) out.append(key, v)
    else out.append(key, String(value))
  }
  return out
}

interface RequestOptions {
  query?: Params
  /** Form-encoded body (every mutating endpoint but POST /settings). */
  form?: Params
  /** JSON body (POST /settings). */
  json?: unknown
  signal?: AbortSignal
}

/**
 * Asks the person for an API key after a 401; resolves with the new key, or null when they cancel.
 */
export type KeyPrompt = (reason: 'missing' | 'rejected') => Promise<string | null>

/**
 * The REST client: sends the stored API key as `X-Api-Key`, asks for a key once on a 401 and retries, and turns
 * error answers into `ApiError`s carrying the body's text.
 *
 * @example
 * const api = new ApiClient()
 * const { downloads } = await api.get<{ downloads: Download[] }>('/downloads')
 */
export class ApiClient {
  readonly #base: string
  #prompt: KeyPrompt | undefined
  #pendingPrompt: Promise<string | null> | undefined

  constructor(base = '') {
    this.#base = base
  }

  /** The key the GUI sends, from localStorage. */
  get apiKey(): string {
    try {
      return localStorage.getItem(API_KEY_STORAGE) ?? ''
    } catch {
      return ''
    }
  }

  set apiKey(key: string) {
    try {
      if (key === '') localStorage.removeItem(API_KEY_STORAGE)
      else localStorage.setItem(API_KEY_STORAGE, key)
    } catch {
      // Storage may be disabled; the key then lives only as long as the page.
    }
  }

  /** Installs the function that asks for a key on a 401. */
  setKeyPrompt(prompt: KeyPrompt | undefined): void {
    this.#prompt = prompt
  }

  /** Absolute URL of an API path, with query parameters. */
  url(path: string, query: Params = {}): string {
    const qs = encodeParams(query).toString()
    return `${this.#base}${path}${qs ? `?${qs}` : ''}`
  }

  /** Headers every request carries. */
  headers(): Record<string, string> {
    const key = this.apiKey
    return key ? { 'X-Api-Key': key } : {}
  }

  /**
   * After a 401: asks for a key (one prompt shared by all requests that failed meanwhile); true when a new key
   * was entered and the request should be retried.
   */
  async recoverFromUnauthorized(): Promise<boolean> {
    if (!this.#prompt) return false
    const reason = this.apiKey ? 'rejected' : 'missing'
    this.#pendingPrompt ??= this.#prompt(reason).finally(() => {
      this.#pendingPrompt = undefined
    })
    const key = await this.#pendingPrompt
    if (key === null) return false
    this.apiKey = key
    return true
  }

  get<T>(path: string, query?: Params, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, { query, signal })
  }

  put<T>(path: string, form?: Params): Promise<T> {
    return this.request<T>('PUT', path, { form })
  }

  patch<T>(path: string, form?: Params): Promise<T> {
    return this.request<T>('PATCH', path, { form })
  }

  delete<T>(path: string, form?: Params): Promise<T> {
    return this.request<T>('DELETE', path, { form })
  }

  postJson<T>(path: string, json: unknown): Promise<T> {
    return this.request<T>('POST', path, { json })
  }

  /** Sends a request; retries once with a new key after a 401 the person answered. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const response = await this.#send(method, path, options)
      if (response.status === 401 && attempt === 0 && (await this.recoverFromUnauthorized())) continue
      return this.#parse<T>(response)
    }
  }

  /** Fetches a binary resource (e.g. an exported .torrent). */
  async blob(path: string): Promise<Blob> {
    const response = await fetch(this.url(path), { headers: this.headers() })
    if (!response.ok) await this.#parse(response)
    return response.blob()
  }

  #send(method: string, path: string, options: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = this.headers()
    let body: BodyInit | undefined
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json'
      body = JSON.stringify(options.json)
    } else if (options.form !== undefined) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded'
      body = encodeParams(options.form).toString()
    }
    return fetch(this.url(path, options.query), { method, headers, body, signal: options.signal })
  }

  async #parse<T>(response: Response): Promise<T> {
    const text = await response.text()
    let body: unknown
    try {
      body = text === '' ? undefined : JSON.parse(text)
    } catch {
      body = text
    }
    if (!response.ok) {
      throw new ApiError(
        response.status,
        errorText(body, `HTTP ${response.status} ${response.statusText}`),
        body,
      )
    }
    return body as T
  }
}

/** True when `err` is an `ApiError` with one of the given statuses. */
export function isStatus(err: unknown, ...statuses: number[]): err is ApiError {
  return err instanceof ApiError && statuses.includes(err.status)
}
