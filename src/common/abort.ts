/** Options of anything that waits: it gives up when `signal` aborts. */
export interface AbortOptions {
  signal?: AbortSignal | undefined
}

/**
 * One signal that aborts when any of the given signals aborts, or after `timeoutMs` when a number is given.
 *
 * @example
 * ```ts
 * const signal = anySignal(this.#stopped.signal, opts.signal, LOOKUP_TIMEOUT_MS)
 * ```
 */
export function anySignal(...sources: Array<AbortSignal | number | undefined>): AbortSignal {
  const signals: AbortSignal[] = []
  for (const source of sources) {
    if (source === undefined) continue
    signals.push(typeof source === 'number' ? AbortSignal.timeout(source) : source)
  }
  return AbortSignal.any(signals)
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, opts: AbortOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const { signal } = opts
    if (signal?.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
