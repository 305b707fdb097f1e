import { describe, expect, it } from 'vitest'
import type { SettingsTree } from '../api/types.js'
import { changedTree, type FieldSpec, groupsFor, parseField, toFormValue } from './settings.js'

const tree: SettingsTree = {
  libtorrent: { port: -1, max_download_rate: 0, utp: true },
  download_defaults: { saveas: null, number_hops: 1 },
  general: { family_filter: true },
  custom: { ratio: 1.5, names: ['a', 'b'], nested: { deep: 1 } },
}

const port: FieldSpec = {
  section: 'libtorrent',
  key: 'port',
  label: 'Port',
  kind: 'int',
  min: -1,
  max: 65535,
}

describe('parseField', () => {
  it('checks integers against their range', () => {
    expect(parseField(port, '6881')).toEqual({ ok: true, value: 6881 })
    expect(parseField(port, '70000')).toEqual({ ok: false, error: 'At most 65535' })
    expect(parseField(port, '1.5')).toEqual({ ok: false, error: 'Enter a whole number' })
    expect(parseField(port, 'abc')).toEqual({ ok: false, error: 'Enter a number' })
  })

  it('reads an empty "platform default" field as null', () => {
    const saveas: FieldSpec = {
      section: 'download_defaults',
      key: 'saveas',
      label: '',
      kind: 'text',
      emptyIsNull: true,
    }
    expect(parseField(saveas, '')).toEqual({ ok: true, value: null })
  })

  it('splits lists on commas', () => {
    const list: FieldSpec = { section: 's', key: 'k', label: '', kind: 'list' }
    expect(parseField(list, 'a, b ,c')).toEqual({ ok: true, value: ['a', 'b', 'c'] })
    expect(parseField(list, '')).toEqual({ ok: true, value: [] })
  })

  it('stores a scaled field in base units and shows it in the field unit', () => {
    const rate: FieldSpec = {
      section: 's',
      key: 'k',
      label: '',
      kind: 'int',
      min: 0,
      unit: 'KiB/s',
      scale: 1024,
    }
    expect(parseField(rate, '512')).toEqual({ ok: true, value: 512 * 1024 })
    expect(toFormValue(rate, 512 * 1024)).toBe('512')
    expect(toFormValue(rate, 0)).toBe('0')
  })
})

describe('groupsFor', () => {
  it('shows known fields the tree has and puts every other leaf under Advanced', () => {
    const groups = groupsFor(tree)
    const ids = groups.flatMap((g) => g.fields.map((f) => `${f.section}.${f.key}`))
    expect(ids).toContain('libtorrent.port')
    expect(ids).not.toContain('libtorrent.proxy_type')
    const advanced = groups.find((g) => g.id === 'advanced')
    expect(advanced?.fields.map((f) => `${f.section}.${f.key}:${f.kind}`)).toEqual([
      'custom.names:list',
      'custom.ratio:float',
    ])
  })
})

describe('changedTree', () => {
  const fields = groupsFor(tree).flatMap((g) => g.fields)

  it('sends only the fields whose value changed, as a partial tree', () => {
    const result = changedTree(fields, tree, {
      'libtorrent.port': '6881',
      'libtorrent.max_download_rate': '0',
      'general.family_filter': false,
      'download_defaults.saveas': '',
    })
    expect(result).toEqual({
      ok: true,
      count: 2,
      changes: { libtorrent: { port: 6881 }, general: { family_filter: false } },
    })
  })

  it('reports every invalid field and sends nothing', () => {
    const result = changedTree(fields, tree, { 'libtorrent.port': '-5', 'libtorrent.max_download_rate': 'x' })
    expect(result).toEqual({
      ok: false,
      errors: { 'libtorrent.port': 'At least -1', 'libtorrent.max_download_rate': 'Enter a number' },
    })
  })
})
