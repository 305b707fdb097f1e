import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { configureLogging } from '../common/index.js'
import { TriblerConfig } from './config.js'
import { ConfigError } from './errors.js'
import { TRIBLER_SCHEMA } from './schema.js'

configureLogging({ level: 'silent' })

function tempFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'tribler-config-')), 'settings.json')
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof ConfigError ? err.code : `not a ConfigError: ${String(err)}`
  }
  return undefined
}

describe('TriblerConfig', () => {
  it('declares the 26 sections and 83 keys of config.spec', () => {
    const sections = Object.keys(TRIBLER_SCHEMA)
    expect(sections).toHaveLength(26)
    expect(sections.reduce((n, s) => n + Object.keys(TRIBLER_SCHEMA[s] ?? {}).length, 0)).toBe(83)
    const tree = new TriblerConfig().tree()
    expect(tree.libtorrent?.port).toBe(-1)
    expect(tree.credit_mining?.max_disk_space).toBe(53687091200)
    expect(tree.tunnel_community?.socks5_listen_ports).toEqual(['-1', '-1', '-1', '-1', '-1'])
    expect(tree.download_defaults?.saveas).toBeNull()
    expect(tree.api?.key).toBe('')
  })

  it('applies a valid partial tree, saves it, and reports only what changed', () => {
    const path = tempFile()
    const config = new TriblerConfig({ path })
    const seen: unknown[] = []
    config.events.on('changed', (changes) => seen.push(changes))
    const changes = config.update({
      general: { family_filter: false, megacache: true },
      libtorrent: { port: 7000 },
    })
    expect(changes.map((c) => `${c.section}.${c.key}`)).toEqual(['general.family_filter', 'libtorrent.port'])
    expect(seen).toHaveLength(1)
    expect(TriblerConfig.load(path).get('libtorrent', 'port')).toBe(7000)
  })

  it('changes nothing when any leaf is unknown or invalid', () => {
    const path = tempFile()
    const config = new TriblerConfig({ path })
    config.update({ general: { family_filter: false } })
    const before = readFileSync(path, 'utf8')
    expect(codeOf(() => config.update({ general: { testnet: true }, nope: { a: 1 } }))).toBe(
      'UNKNOWN_SECTION',
    )
    expect(codeOf(() => config.update({ general: { testnet: true, nope: 1 } }))).toBe('UNKNOWN_KEY')
    expect(codeOf(() => config.update({ general: { testnet: 'yes' } }))).toBe('INVALID_TYPE')
    expect(codeOf(() => config.update({ download_defaults: { number_hops: 4 } }))).toBe('OUT_OF_RANGE')
    expect(codeOf(() => config.update({ download_defaults: { seeding_mode: 'sometimes' } }))).toBe(
      'INVALID_CHOICE',
    )
    expect(codeOf(() => config.update({ general: { testnet: { deeper: true } } }))).toBe('TOO_DEEP')
    expect(codeOf(() => config.update({ general: 5 }))).toBe('NOT_AN_OBJECT')
    expect(codeOf(() => config.update([1]))).toBe('NOT_AN_OBJECT')
    expect(codeOf(() => config.update({ libtorrent: { max_download_rate: 1.5 } }))).toBe('INVALID_TYPE')
    expect(codeOf(() => config.update({ libtorrent: { anon_proxy_server_ip: 'not-an-ip' } }))).toBe(
      'INVALID_TYPE',
    )
    expect(config.get('general', 'testnet')).toBe(false)
    expect(readFileSync(path, 'utf8')).toBe(before)
  })

  it('round-trips any string, nulls where allowed and string lists', () => {
    const path = tempFile()
    const config = new TriblerConfig({ path })
    const text = 'ÿ€\u0000 "quoted" \\ 😀'
    config.update({
      ipv8: { bootstrap_override: text },
      download_defaults: { saveas: null },
      credit_mining: { sources: ['a', 'b'] },
    })
    const loaded = TriblerConfig.load(path)
    expect(loaded.get('ipv8', 'bootstrap_override')).toBe(text)
    expect(loaded.get('credit_mining', 'sources')).toEqual(['a', 'b'])
  })

  it('keeps overrides out of the file until the key is updated', () => {
    const path = tempFile()
    const config = new TriblerConfig({ path })
    config.override('api', 'key', 'secret')
    expect(config.get('api', 'key')).toBe('secret')
    config.save()
    expect(TriblerConfig.load(path).get('api', 'key')).toBe('')
    config.update({ api: { key: 'saved' } })
    expect(TriblerConfig.load(path).get('api', 'key')).toBe('saved')
  })

  it('starts from defaults when the file is not JSON, keeping the damaged file aside', () => {
    const path = tempFile()
    writeFileSync(path, '{"general": {"family_filter": fal')
    const config = TriblerConfig.load(path)
    expect(config.get('general', 'family_filter')).toBe(true)
    const dir = join(path, '..')
    expect(readdirSync(dir).some((name) => name.startsWith('settings.json.corrupt-'))).toBe(true)
  })

  it('drops unknown and invalid entries of a hand-edited file', () => {
    const path = tempFile()
    writeFileSync(
      path,
      JSON.stringify({ general: { family_filter: false, gone: 1 }, libtorrent: { port: 'x' } }),
    )
    const config = TriblerConfig.load(path)
    expect(config.get('general', 'family_filter')).toBe(false)
    expect(config.get('libtorrent', 'port')).toBe(-1)
  })
})
