export { SESSION_EVENT_NAMES, type SessionEventName, type SessionEvents } from './events.js'
export { fileLogSink, tailFile } from './log-file.js'
export {
  defaultDownloadDir,
  publicNetworkFromEnv,
  resolveStateDir,
  type StatePaths,
  statePaths,
} from './paths.js'
export { Session, SessionError, type SessionOptions } from './session.js'
export type {
  CoreState,
  LifecycleEvents,
  PortRegistry,
  ServiceDeps,
  ServiceFactory,
  ServiceOptions,
  SessionErrorCode,
  StateSnapshot,
} from './types.js'
export { triblerVersion } from './version.js'
