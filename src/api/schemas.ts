/** JSON schemas shared by route modules, for validation and the OpenAPI description. */

/** The plain error body `{"error": string}`. */
export const PLAIN_ERROR = {
  type: 'object',
  properties: { error: { type: 'string' } },
  required: ['error'],
} as const

/** The structured error body of REST contract §1.1. */
export const STRUCTURED_ERROR = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { handled: { type: 'boolean' }, code: { type: 'string' }, message: { type: 'string' } },
      required: ['handled', 'code', 'message'],
    },
  },
  required: ['error'],
} as const

/** Error responses every route can give (API key, late endpoints, shutdown, unhandled errors). */
export const COMMON_ERRORS = {
  401: { description: 'API key missing or wrong', ...PLAIN_ERROR },
  404: { description: 'not found (late endpoints answer 404 until the core is STARTED)', ...PLAIN_ERROR },
  500: { description: 'unhandled error, or "Tribler is shutting down"', ...STRUCTURED_ERROR },
} as const
