export { type AbortOptions, anySignal, sleep } from './abort.js'
export { writeFileAtomic } from './atomic-file.js'
export { asBuffer, fromHex, isHexOfLength, toHex } from './bytes.js'
export { type Clock, ManualClock, systemClock, type TimerHandle } from './clock.js'
export { errorMessage, TriblerError } from './errors.js'
export {
  addLogSink,
  configureLogging,
  LOG_LEVELS,
  type Logger,
  type LogLevel,
  type LogRecord,
  type LogSink,
  logger,
  parseLogLevel,
  STDERR_SINK,
} from './logger.js'
export type { Service } from './service.js'
export { TaskScope } from './task-scope.js'
export { TypedEmitter } from './typed-emitter.js'
