export * from './community/index.js'
export * from './discovery/index.js'
export * from './endpoint/index.js'
export * from './errors.js'
export * from './keys/index.js'
export * from './serialization/index.js'
export {
  DEFAULT_IPV8_PORT,
  type Ipv8Config,
  Ipv8Service,
  type Ipv8ServiceDeps,
  type Ipv8ServiceOptions,
  KEY_FILE_NAME,
  type OverlayFactory,
  parseBootstrap,
} from './service.js'
