import { existsSync, readFileSync, renameSync } from 'node:fs'
import { isIP } from 'node:net'
import { logger, TypedEmitter, writeFileAtomic } from '../common/index.js'
import { ConfigError } from './errors.js'
import { SCHEMA } from './schema.js'
import type { ConfigSchema, SettingChange, SettingSpec, SettingsTree, SettingValue } from './types.js'

const log = logger('config')

/** Events of {@link TriblerConfig}. */
export interface ConfigEvents {
  /** Settings changed by an update or an override; one event per call with every changed leaf. */
  changed: readonly SettingChange[]
}

/**
 * The settings tree: declared sections and keys ({@link SCHEMA}) with validated values, persisted as JSON.
 * Runtime overrides (command-line flags) take effect without being written to the file.
 *
 * @example
 * ```ts
 * const config = TriblerConfig.load(join(stateDir, 'settings.json'))
 * config.update({ libtorrent: { max_download_rate: 50_000 } }) // validated, saved atomically
 * config.events.on('changed', (changes) => applyLive(changes))
 * ```
 */
export class TriblerConfig {
  /** Fired after every successful {@link TriblerConfig.update} and every {@link TriblerConfig.override} that changes a value. */
  readonly events = new TypedEmitter<ConfigEvents>()
  readonly schema: ConfigSchema
  readonly #path: string | undefined
  readonly #values = new Map<string, Map<string, SettingValue>>()
  readonly #overrides = new Map<string, SettingValue>()

  /** A config with defaults only; `path` (when given) is where {@link TriblerConfig.save} writes. */
  constructor(opts: { path?: string; schema?: ConfigSchema } = {}) {
    this.schema = opts.schema ?? SCHEMA
    this.#path = opts.path
    for (const [section, keys] of Object.entries(this.schema)) {
      this.#values.set(section, new Map(Object.entries(keys).map(([key, spec]) => [key, copy(spec.default)])))
    }
  }

  /**
   * Loads `path`, or defaults when it does not exist. A file that is not valid JSON is renamed aside
   * (`<path>.corrupt-<time>`) and defaults are used; unknown or invalid entries are dropped with a warning, so an
   * older or hand-edited file never stops the core from starting.
   */
  static load(path: string, opts: { schema?: ConfigSchema } = {}): TriblerConfig {
    const config = new TriblerConfig({ path, ...opts })
    if (!existsSync(path)) return config
    let tree: unknown
    try {
      tree = JSON.parse(readFileSync(path, 'utf8'))
    } catch (err) {
      const aside = `${path}.corrupt-${Date.now()}`
      renameSync(path, aside)
      log.warn('settings file unreadable, kept aside; using defaults', { path, keptAs: aside, err })
      return config
    }
    if (!isObject(tree)) return config
    for (const [section, keys] of Object.entries(tree)) {
      if (!isObject(keys)) continue
      for (const [key, value] of Object.entries(keys)) {
        try {
          config.#values.get(section)?.set(key, config.#check(section, key, value))
        } catch (err) {
          log.warn('ignoring a setting from the settings file', { section, key, err })
        }
      }
    }
    return config
  }

  /** The file this config saves to, if any. */
  get path(): string | undefined {
    return this.#path
  }

  /** The effective value of a setting (override first). Throws `UNKNOWN_KEY` for an undeclared one. */
  get(section: string, key: string): SettingValue {
    const name = `${section}~${key}`
    if (this.#overrides.has(name)) return copy(this.#overrides.get(name) as SettingValue)
    const value = this.#values.get(section)?.get(key)
    if (value === undefined) throw new ConfigError('UNKNOWN_KEY', { section, key })
    return copy(value)
  }

  /** {@link TriblerConfig.get} for a string setting. */
  getString(section: string, key: string): string {
    const value = this.get(section, key)
    return typeof value === 'string' ? value : ''
  }

  /** {@link TriblerConfig.get} for a number setting. */
  getNumber(section: string, key: string): number {
    const value = this.get(section, key)
    return typeof value === 'number' ? value : 0
  }

  /** {@link TriblerConfig.get} for a boolean setting. */
  getBoolean(section: string, key: string): boolean {
    return this.get(section, key) === true
  }

  /** The whole effective tree, a fresh copy. */
  tree(): SettingsTree {
    const out: SettingsTree = {}
    for (const [section, keys] of this.#values) {
      const entries: Record<string, SettingValue> = {}
      for (const key of keys.keys()) entries[key] = this.get(section, key)
      out[section] = entries
    }
    return out
  }

  /**
   * Sets a value for this run only: it is validated, takes effect, and is not saved. A later
   * {@link TriblerConfig.update} of the same key replaces it.
   */
  override(section: string, key: string, value: unknown): void {
    const checked = this.#check(section, key, value)
    const previous = this.get(section, key)
    this.#overrides.set(`${section}~${key}`, checked)
    if (!sameValue(previous, checked))
      this.events.emit('changed', [{ section, key, previous, value: copy(checked) }])
  }

  /**
   * Validates a partial tree completely, then applies it, saves the file (when the config has a path) and emits
   * `changed`. On any error nothing changes. Integers given for float settings and numeric strings are not
   * converted: the JSON type must match.
   */
  update(partial: unknown): SettingChange[] {
    if (!isObject(partial)) throw new ConfigError('NOT_AN_OBJECT', { path: '' })
    const pending: Array<{ section: string; key: string; value: SettingValue }> = []
    for (const [section, keys] of Object.entries(partial)) {
      if (!this.#values.has(section)) throw new ConfigError('UNKNOWN_SECTION', { section })
      if (!isObject(keys)) throw new ConfigError('NOT_AN_OBJECT', { section })
      for (const [key, value] of Object.entries(keys))
        pending.push({ section, key, value: this.#check(section, key, value) })
    }
    const changes: SettingChange[] = []
    const before = pending.map(({ section, key }) => ({
      section,
      key,
      value: this.#values.get(section)?.get(key),
    }))
    for (const { section, key, value } of pending) {
      const previous = this.get(section, key)
      this.#values.get(section)?.set(key, value)
      this.#overrides.delete(`${section}~${key}`)
      if (!sameValue(previous, value)) changes.push({ section, key, previous, value: copy(value) })
    }
    try {
      this.save()
    } catch (err) {
      for (const { section, key, value } of before)
        if (value !== undefined) this.#values.get(section)?.set(key, value)
      throw new ConfigError('WRITE_FAILED', { path: this.#path, cause: err })
    }
    if (changes.length > 0) this.events.emit('changed', changes)
    return changes
  }

  /** Writes the saved values (not the overrides) atomically to the config's path. */
  save(): void {
    if (this.#path === undefined) return
    const out: SettingsTree = {}
    for (const [section, keys] of this.#values) out[section] = Object.fromEntries(keys)
    writeFileAtomic(this.#path, `${JSON.stringify(out, null, 2)}\n`)
  }

  #check(section: string, key: string, value: unknown): SettingValue {
    const keys = this.schema[section]
    if (keys === undefined) throw new ConfigError('UNKNOWN_SECTION', { section })
    const spec = keys[key]
    if (spec === undefined) throw new ConfigError('UNKNOWN_KEY', { section, key })
    return validate(section, key, spec, value)
  }
}

function validate(section: string, key: string, spec: SettingSpec, value: unknown): SettingValue {
  const where = { section, key, expected: spec.type }
  const name = `${section}.${key}`
  const wrongType = (): ConfigError =>
    new ConfigError(
      'INVALID_TYPE',
      where,
      `${name} must be ${TYPE_NAMES[spec.type]}${spec.nullable ? ' or null' : ''}`,
    )
  if (isObject(value)) throw new ConfigError('TOO_DEEP', { section, key })
  if (value === null) {
    if (spec.nullable === true) return null
    throw wrongType()
  }
  switch (spec.type) {
    case 'boolean':
      if (typeof value !== 'boolean') throw wrongType()
      return value
    case 'integer':
    case 'float': {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw wrongType()
      if (spec.type === 'integer' && !Number.isSafeInteger(value)) throw wrongType()
      if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
        const range = `${spec.min ?? '-∞'}…${spec.max ?? '∞'}`
        throw new ConfigError(
          'OUT_OF_RANGE',
          { section, key, min: spec.min, max: spec.max, value },
          `${name} must be in ${range}`,
        )
      }
      return value
    }
    case 'string':
      if (typeof value !== 'string') throw wrongType()
      if (spec.choices !== undefined && !spec.choices.includes(value)) {
        throw new ConfigError(
          'INVALID_CHOICE',
          { section, key, choices: spec.choices },
          `${name} must be one of ${spec.choices.join(', ')}`,
        )
      }
      return value
    case 'ip_addr':
      if (typeof value !== 'string' || isIP(value) === 0) throw wrongType()
      return value
    case 'string_list':
      if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
        throw wrongType()
      }
      return [...value]
  }
}

const TYPE_NAMES: Record<SettingSpec['type'], string> = {
  boolean: 'a boolean',
  integer: 'an integer',
  float: 'a number',
  string: 'a string',
  string_list: 'a list of strings',
  ip_addr: 'an IP address',
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function copy(value: SettingValue): SettingValue {
  return Array.isArray(value) ? [...value] : value
}

function sameValue(a: SettingValue, b: SettingValue): boolean {
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((item, i) => item === b[i])
  return a === b
}
