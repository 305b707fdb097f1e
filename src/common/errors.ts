/**
 * Base class of every error Tribler.ts throws on purpose. Each subsystem declares one subclass with a union of
 * codes; callers and tests match `err.code`, never the message text.
 *
 * @example
 * ```ts
 * type BencodeErrorCode = 'UNEXPECTED_END' | 'INVALID_INTEGER'
 * class BencodeError extends TriblerError<BencodeErrorCode> {}
 * throw new BencodeError('UNEXPECTED_END', { offset: 12 })
 * ```
 */
export class TriblerError<Code extends string = string> extends Error {
  readonly code: Code
  readonly details: Readonly<Record<string, unknown>>

  constructor(code: Code, details: Record<string, unknown> = {}, message?: string) {
    super(message ?? describe(code, details), details.cause instanceof Error ? { cause: details.cause } : {})
    this.name = new.target.name
    this.code = code
    this.details = details
  }
}

function describe(code: string, details: Record<string, unknown>): string {
  const parts = Object.entries(details)
    .filter(([key]) => key !== 'cause')
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
  const text = code.toLowerCase().replaceAll('_', ' ')
  return parts.length === 0 ? text : `${text} (${parts.join(', ')})`
}

/** The message of anything thrown, for logs and error bodies. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
