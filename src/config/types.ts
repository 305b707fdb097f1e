/** The value types a setting can have (names follow Tribler's config.spec). */
export type SettingType = 'boolean' | 'integer' | 'float' | 'string' | 'string_list' | 'ip_addr'

/** A setting's value as it appears in the JSON tree. */
export type SettingValue = boolean | number | string | string[] | null

/** How one setting is declared: type, default and constraints. */
export interface SettingSpec {
  readonly type: SettingType
  readonly default: SettingValue
  /** `null` is accepted (config.spec `default=None`). */
  readonly nullable?: boolean
  /** Inclusive bounds for numbers. */
  readonly min?: number
  readonly max?: number
  /** The only accepted values of a string setting. */
  readonly choices?: readonly string[]
  /** One sentence for the configuration docs. */
  readonly doc?: string
}

/** The declared settings: section name → key name → spec. */
export type ConfigSchema = Readonly<Record<string, Readonly<Record<string, SettingSpec>>>>

/** A whole or partial settings tree: section → key → value. */
export type SettingsTree = Record<string, Record<string, SettingValue>>

/** One applied change, as given to change listeners. */
export interface SettingChange {
  readonly section: string
  readonly key: string
  readonly previous: SettingValue
  readonly value: SettingValue
}

/** Codes of {@link ConfigError}. */
export type ConfigErrorCode =
  | 'UNKNOWN_SECTION'
  | 'UNKNOWN_KEY'
  | 'NOT_AN_OBJECT'
  | 'TOO_DEEP'
  | 'INVALID_TYPE'
  | 'OUT_OF_RANGE'
  | 'INVALID_CHOICE'
  | 'WRITE_FAILED'
