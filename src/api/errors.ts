import { TriblerError } from '../common/index.js'

/** Codes of {@link ApiError}. */
export type ApiErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'CONFLICT'
  | 'TIMEOUT'
  | 'PAYLOAD_TOO_LARGE'
  | 'SERVER_ERROR'
  | 'PORT_IN_USE'
  | 'LISTEN_FAILED'

const STATUS: Record<ApiErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  TIMEOUT: 408,
  PAYLOAD_TOO_LARGE: 413,
  SERVER_ERROR: 500,
  PORT_IN_USE: 500,
  LISTEN_FAILED: 500,
}

/**
 * An error a route answers with the plain body `{"error": message}` and the status of its code
 * (`BAD_REQUEST` 400, `NOT_FOUND` 404, `SERVER_ERROR` 500 where the contract documents a plain 500, …). The
 * message is what the client sees.
 *
 * @example
 * ```ts
 * throw new ApiError('BAD_REQUEST', {}, 'uri parameter missing')
 * ```
 */
export class ApiError extends TriblerError<ApiErrorCode> {
  get status(): number {
    return STATUS[this.code]
  }
}

/**
 * An anticipated failure the contract answers with the structured body, status 500 (REST contract §1.1), e.g.
 * `new HandledError('DuplicateTorrentFileError', 'This torrent already exists in your channel.')`. Pass
 * `handled: false` where the contract documents the reference's unhandled shape for a client error (POST
 * /settings with an unknown key); it is not logged as a failure of the core.
 */
export class HandledError extends Error {
  constructor(
    /** The `code` field: the reference's exception class name. */
    readonly errorCode: string,
    message: string,
    readonly handled = true,
  ) {
    super(message)
    this.name = 'HandledError'
  }
}

/** The plain error body. */
export function plainError(message: string): { error: string } {
  return { error: message }
}

/** The structured error body (REST contract §1.1). */
export function structuredError(
  handled: boolean,
  code: string,
  message: string,
): { error: { handled: boolean; code: string; message: string } } {
  return { error: { handled, code, message } }
}
