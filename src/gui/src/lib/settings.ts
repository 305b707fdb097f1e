import type { SettingsTree } from '../api/types.js'

/** How a setting is edited. */
export type FieldKind = 'bool' | 'int' | 'float' | 'text' | 'secret' | 'select' | 'list'

/** One editable setting of the settings tree. */
export interface FieldSpec {
  section: string
  key: string
  label: string
  kind: FieldKind
  min?: number
  max?: number
  unit?: string
  /** The stored value is the shown number times this (e.g. 1024 to show bytes/s in KiB/s). Whole numbers only. */
  scale?: number
  help?: string
  options?: { value: string | number; label: string }[]
  /** Text of an empty field means `null` (e.g. "platform default"). */
  emptyIsNull?: boolean
}

/** A titled group of settings on the settings page. */
export interface FieldGroup {
  id: string
  title: string
  description: string
  fields: FieldSpec[]
}

const PORT = { kind: 'int', min: -1, max: 65535, help: '-1 picks a free port at start' } as const

/** The settings the GUI presents in groups; every other leaf of the tree appears under "Advanced". */
export const GROUPS: FieldGroup[] = [
  {
    id: 'downloads',
    title: 'Downloads',
    description: 'Where downloads go and how new ones start.',
    fields: [
      {
        section: 'download_defaults',
        key: 'saveas',
        label: 'Download folder',
        kind: 'text',
        emptyIsNull: true,
        help: 'Empty uses the platform download folder',
      },
      {
        section: 'download_defaults',
        key: 'anonymity_enabled',
        label: 'Download anonymously by default',
        kind: 'bool',
      },
      {
        section: 'download_defaults',
        key: 'number_hops',
        label: 'Default anonymity hops',
        kind: 'select',
        options: [0, 1, 2, 3].map((n) => ({ value: n, label: `${n} ${n === 1 ? 'hop' : 'hops'}` })),
      },
      { section: 'download_defaults', key: 'safeseeding_enabled', label: 'Seed anonymously', kind: 'bool' },
      {
        section: 'download_defaults',
        key: 'seeding_mode',
        label: 'Seeding',
        kind: 'select',
        options: [
          { value: 'ratio', label: 'Until a ratio is reached' },
          { value: 'time', label: 'For a time' },
          { value: 'forever', label: 'Forever' },
          { value: 'never', label: 'Never' },
        ],
      },
      { section: 'download_defaults', key: 'seeding_ratio', label: 'Seeding ratio', kind: 'float', min: 0 },
      {
        section: 'download_defaults',
        key: 'seeding_time',
        label: 'Seeding time',
        kind: 'float',
        min: 0,
        unit: 's',
      },
    ],
  },
  {
    id: 'bandwidth',
    title: 'Bandwidth',
    description: 'Limits for all downloads together. 0 means unlimited.',
    fields: [
      {
        section: 'libtorrent',
        key: 'max_download_rate',
        label: 'Download rate limit',
        kind: 'int',
        min: 0,
        unit: 'KiB/s',
        scale: 1024,
      },
      {
        section: 'libtorrent',
        key: 'max_upload_rate',
        label: 'Upload rate limit',
        kind: 'int',
        min: 0,
        unit: 'KiB/s',
        scale: 1024,
      },
      {
        section: 'libtorrent',
        key: 'max_connections_download',
        label: 'Connections per download',
        kind: 'int',
        min: -1,
        help: '-1 means no limit',
      },
    ],
  },
  {
    id: 'connection',
    title: 'Connection',
    description: 'Ports and protocols of the BitTorrent engine.',
    fields: [
      { section: 'libtorrent', key: 'port', label: 'BitTorrent port', ...PORT },
      { section: 'libtorrent', key: 'anon_listen_port', label: 'Anonymous BitTorrent port', ...PORT },
      { section: 'libtorrent', key: 'utp', label: 'Use uTP', kind: 'bool' },
      { section: 'libtorrent', key: 'dht', label: 'Use the DHT', kind: 'bool' },
      {
        section: 'libtorrent',
        key: 'proxy_type',
        label: 'Proxy',
        kind: 'select',
        options: [
          'None',
          'SOCKS4',
          'SOCKS5',
          'SOCKS5 with authentication',
          'HTTP',
          'HTTP with authentication',
        ].map((label, value) => ({ value, label })),
      },
      { section: 'libtorrent', key: 'proxy_server', label: 'Proxy server', kind: 'text', help: 'host:port' },
      {
        section: 'libtorrent',
        key: 'proxy_auth',
        label: 'Proxy credentials',
        kind: 'secret',
        help: 'user:password',
      },
    ],
  },
  {
    id: 'anonymity',
    title: 'Anonymity',
    description: 'The onion-routing tunnels that hide who downloads what.',
    fields: [
      { section: 'tunnel_community', key: 'enabled', label: 'Enable anonymous tunnels', kind: 'bool' },
      {
        section: 'tunnel_community',
        key: 'exitnode_enabled',
        label: 'Act as an exit node',
        kind: 'bool',
        help: 'Relays other people’s traffic to the internet',
      },
      {
        section: 'tunnel_community',
        key: 'random_slots',
        label: 'Random relay slots',
        kind: 'int',
        min: 0,
        help: 'Circuits of others this node relays or exits, first come, first served (applies after a restart)',
      },
      {
        section: 'tunnel_community',
        key: 'competing_slots',
        label: 'Competing relay slots',
        kind: 'int',
        min: 0,
        help: 'More such circuits, won by bandwidth balance; without a ledger every balance is 0',
      },
    ],
  },
  {
    id: 'api',
    title: 'REST API',
    description: 'The API this interface talks to.',
    fields: [
      { section: 'http_api', key: 'port', label: 'API port', ...PORT },
      { section: 'http_api', key: 'retry_port', label: 'Try the next ports when taken', kind: 'bool' },
      {
        section: 'api',
        key: 'key',
        label: 'API key',
        kind: 'secret',
        help: 'Clients send it as X-Api-Key; empty turns the check off',
      },
    ],
  },
  {
    id: 'general',
    title: 'General',
    description: 'Content and folders.',
    fields: [
      {
        section: 'general',
        key: 'family_filter',
        label: 'Family filter',
        kind: 'bool',
        help: 'Hides adult content',
      },
      { section: 'watch_folder', key: 'enabled', label: 'Watch a folder for .torrent files', kind: 'bool' },
      { section: 'watch_folder', key: 'directory', label: 'Watch folder', kind: 'text' },
      { section: 'credit_mining', key: 'enabled', label: 'Credit mining', kind: 'bool' },
      {
        section: 'credit_mining',
        key: 'max_disk_space',
        label: 'Credit mining disk space',
        kind: 'int',
        min: 0,
        unit: 'bytes',
      },
    ],
  },
]

/** Name of a field in form state. */
export function fieldId(f: Pick<FieldSpec, 'section' | 'key'>): string {
  return `${f.section}.${f.key}`
}

/** The value of a leaf of the tree, or undefined when the tree lacks it. */
export function leaf(tree: SettingsTree, f: Pick<FieldSpec, 'section' | 'key'>): unknown {
  const section = tree[f.section]
  return section && Object.hasOwn(section, f.key) ? section[f.key] : undefined
}

/** The groups with only the fields the tree has, plus "Advanced" with every other scalar or list leaf. */
export function groupsFor(tree: SettingsTree): FieldGroup[] {
  const shown = new Set<string>()
  const groups: FieldGroup[] = []
  for (const group of GROUPS) {
    const fields = group.fields.filter((f) => leaf(tree, f) !== undefined)
    for (const f of fields) shown.add(fieldId(f))
    if (fields.length > 0) groups.push({ ...group, fields })
  }
  const advanced: FieldSpec[] = []
  for (const section of Object.keys(tree).sort()) {
    const keys = tree[section] ?? {}
    for (const key of Object.keys(keys).sort()) {
      if (shown.has(`${section}.${key}`)) continue
      const value = keys[key]
      const kind: FieldKind | undefined =
        typeof value === 'boolean'
          ? 'bool'
          : typeof value === 'number'
            ? Number.isInteger(value)
              ? 'int'
              : 'float'
            : typeof value === 'string' || value === null
              ? 'text'
              : Array.isArray(value)
                ? 'list'
                : undefined
      if (!kind) continue
      advanced.push({
        section,
        key,
        label: `${section} › ${key}`,
        kind,
        emptyIsNull: value === null,
      })
    }
  }
  if (advanced.length > 0) {
    groups.push({
      id: 'advanced',
      title: 'Advanced',
      description: 'Every other setting of the core, by section and key.',
      fields: advanced,
    })
  }
  return groups
}

/** What a form control holds: text for inputs and selects, a boolean for switches. */
export type FormValue = string | boolean

/** The form value of a tree value. */
export function toFormValue(f: FieldSpec, value: unknown): FormValue {
  if (f.kind === 'bool') return value === true
  if (value === null || value === undefined) return ''
  if (f.kind === 'list') return Array.isArray(value) ? value.map(String).join(', ') : String(value)
  if (f.scale !== undefined && typeof value === 'number') return String(Math.round(value / f.scale))
  return String(value)
}

/** A parsed form value, or the error to show beside the field. */
export type Parsed = { ok: true; value: unknown } | { ok: false; error: string }

/** Parses and checks a form value against its field. */
export function parseField(f: FieldSpec, input: FormValue): Parsed {
  if (f.kind === 'bool') return { ok: true, value: input === true }
  const text = String(input).trim()
  switch (f.kind) {
    case 'int':
    case 'float': {
      if (text === '') return { ok: false, error: 'Enter a number' }
      const n = Number(text)
      if (!Number.isFinite(n)) return { ok: false, error: 'Enter a number' }
      if (f.kind === 'int' && !Number.isInteger(n)) return { ok: false, error: 'Enter a whole number' }
      if (f.min !== undefined && n < f.min) return { ok: false, error: `At least ${f.min}` }
      if (f.max !== undefined && n > f.max) return { ok: false, error: `At most ${f.max}` }
      return { ok: true, value: f.scale === undefined ? n : Math.round(n * f.scale) }
    }
    case 'select': {
      const option = f.options?.find((o) => String(o.value) === text)
      return option ? { ok: true, value: option.value } : { ok: false, error: 'Choose a value' }
    }
    case 'list':
      return {
        ok: true,
        value: text === '' ? [] : text.split(',').map((s) => s.trim()),
      }
    default:
      return { ok: true, value: text === '' && f.emptyIsNull ? null : String(input) }
  }
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/**
 * The partial tree POST /settings needs for the edited fields, or the errors by field id when some value is
 * invalid. Fields whose value did not change are left out.
 */
export function changedTree(
  fields: readonly FieldSpec[],
  tree: SettingsTree,
  form: Record<string, FormValue>,
): { ok: true; changes: SettingsTree; count: number } | { ok: false; errors: Record<string, string> } {
  const errors: Record<string, string> = {}
  const changes: SettingsTree = {}
  let count = 0
  for (const f of fields) {
    const id = fieldId(f)
    const input = form[id]
    // Unchanged text (also "" for null) is not a change, whatever its parsed form.
    if (input === undefined || input === toFormValue(f, leaf(tree, f))) continue
    const parsed = parseField(f, input)
    if (!parsed.ok) {
      errors[id] = parsed.error
      continue
    }
    if (same(parsed.value, leaf(tree, f))) continue
    changes[f.section] ??= {}
    changes[f.section]![f.key] = parsed.value
    count++
  }
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, changes, count }
}
