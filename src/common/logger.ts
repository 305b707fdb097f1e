/** Log levels, most verbose first. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** One structured log record. */
export interface LogRecord {
  time: number
  level: Exclude<LogLevel, 'silent'>
  namespace: string
  msg: string
  context?: Record<string, unknown>
}

/** Where records go: stderr, a file, a test's array. */
export type LogSink = (record: LogRecord, line: string) => void

/** A namespaced logger. `context` is structured data, never pre-formatted into the message. */
export interface Logger {
  readonly namespace: string
  trace(msg: string, context?: Record<string, unknown>): void
  debug(msg: string, context?: Record<string, unknown>): void
  info(msg: string, context?: Record<string, unknown>): void
  warn(msg: string, context?: Record<string, unknown>): void
  error(msg: string, context?: Record<string, unknown>): void
  enabled(level: LogLevel): boolean
  child(suffix: string): Logger
}

const LEVEL_RANK: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, silent: 5 }

interface LoggingConfig {
  level: LogLevel
  /** Per-namespace-prefix levels, e.g. `{ 'ipv8:tunnel': 'debug' }`. Longest prefix wins. */
  overrides: Map<string, LogLevel>
  sinks: Set<LogSink>
}

/** Parses a level name, or returns undefined. */
export function parseLogLevel(value: string | undefined): LogLevel | undefined {
  const lower = value?.toLowerCase()
  return LOG_LEVELS.find((level) => level === lower)
}

const config: LoggingConfig = {
  level: parseLogLevel(process.env.TRIBLER_LOG_LEVEL) ?? 'warn',
  overrides: new Map(),
  sinks: new Set([stderrSink]),
}

function stderrSink(_record: LogRecord, line: string): void {
  process.stderr.write(`${line}\n`)
}

/** The sink that writes JSON lines to stderr (the default sink). */
export const STDERR_SINK: LogSink = stderrSink

/**
 * Sets the global level, per-namespace overrides and sinks. Fields not given keep their value.
 *
 * @example
 * ```ts
 * configureLogging({ level: 'info', overrides: { 'bittorrent:utp': 'debug' } })
 * ```
 */
export function configureLogging(opts: {
  level?: LogLevel
  overrides?: Record<string, LogLevel>
  sinks?: LogSink[]
}): void {
  if (opts.level !== undefined) config.level = opts.level
  if (opts.overrides !== undefined) config.overrides = new Map(Object.entries(opts.overrides))
  if (opts.sinks !== undefined) config.sinks = new Set(opts.sinks)
}

/** Adds a sink; returns the function that removes it. */
export function addLogSink(sink: LogSink): () => void {
  config.sinks.add(sink)
  return () => config.sinks.delete(sink)
}

function levelFor(namespace: string): LogLevel {
  let best: LogLevel = config.level
  let bestLength = -1
  for (const [prefix, level] of config.overrides) {
    if ((namespace === prefix || namespace.startsWith(`${prefix}:`)) && prefix.length > bestLength) {
      best = level
      bestLength = prefix.length
    }
  }
  return best
}

function serialise(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code
    return {
      name: value.name,
      message: value.message,
      ...(code === undefined ? {} : { code }),
      stack: value.stack,
    }
  }
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex')
  if (typeof value === 'bigint') return value.toString()
  return value
}

function format(record: LogRecord): string {
  const out: Record<string, unknown> = {
    time: new Date(record.time).toISOString(),
    level: record.level,
    ns: record.namespace,
    msg: record.msg,
  }
  if (record.context !== undefined) {
    for (const [key, value] of Object.entries(record.context)) out[key] = serialise(value)
  }
  try {
    return JSON.stringify(out)
  } catch {
    return JSON.stringify({ ...out, context: '[unserialisable]' })
  }
}

class NamespacedLogger implements Logger {
  constructor(readonly namespace: string) {}

  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= LEVEL_RANK[levelFor(this.namespace)]
  }

  trace(msg: string, context?: Record<string, unknown>): void {
    this.#log('trace', msg, context)
  }
  debug(msg: string, context?: Record<string, unknown>): void {
    this.#log('debug', msg, context)
  }
  info(msg: string, context?: Record<string, unknown>): void {
    this.#log('info', msg, context)
  }
  warn(msg: string, context?: Record<string, unknown>): void {
    this.#log('warn', msg, context)
  }
  error(msg: string, context?: Record<string, unknown>): void {
    this.#log('error', msg, context)
  }

  child(suffix: string): Logger {
    return new NamespacedLogger(`${this.namespace}:${suffix}`)
  }

  #log(level: Exclude<LogLevel, 'silent'>, msg: string, context?: Record<string, unknown>): void {
    if (!this.enabled(level) || config.sinks.size === 0) return
    const record: LogRecord = { time: Date.now(), level, namespace: this.namespace, msg }
    if (context !== undefined) record.context = context
    const line = format(record)
    for (const sink of config.sinks) {
      try {
        sink(record, line)
      } catch {
        // a failing sink must never take the caller down
      }
    }
  }
}

/**
 * A logger for a namespace such as `ipv8:tunnel`. Cheap: call it once per module.
 *
 * @example
 * ```ts
 * const log = logger('ipv8:tunnel')
 * log.debug('circuit ready', { circuitId, hops })
 * ```
 */
export function logger(namespace: string): Logger {
  return new NamespacedLogger(namespace)
}
