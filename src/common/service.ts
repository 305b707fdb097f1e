/**
 * A part of the session with a lifecycle. `Session` starts services in order and stops them in reverse order.
 */
export interface Service {
  /** A short name for logs and the startup state text. */
  readonly name: string
  start(): Promise<void>
  /** Stops and flushes; must be safe to call once after a failed or partial start. */
  stop(): Promise<void>
}
