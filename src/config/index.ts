export { type ConfigEvents, TriblerConfig } from './config.js'
export { ConfigError } from './errors.js'
export { SCHEMA, TRIBLER_SCHEMA, TRIBLER_TS_SCHEMA } from './schema.js'
export type {
  ConfigErrorCode,
  ConfigSchema,
  SettingChange,
  SettingSpec,
  SettingsTree,
  SettingType,
  SettingValue,
} from './types.js'
