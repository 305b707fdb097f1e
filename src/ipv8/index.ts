export * from './errors.js'
export * from './keys/index.js'
export * from './serialization/index.js'
