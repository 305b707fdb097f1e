import { TriblerError } from '../common/index.js'
import type { ConfigErrorCode } from './types.js'

/**
 * A settings error. `UNKNOWN_SECTION`, `UNKNOWN_KEY`, `NOT_AN_OBJECT` and `TOO_DEEP` mean the tree names something that does
 * not exist; the others mean a known key got a value of the wrong type or outside its range.
 */
export class ConfigError extends TriblerError<ConfigErrorCode> {}
