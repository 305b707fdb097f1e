import { describe, expect, it } from 'vitest'
import {
  type DownloadView,
  formatBytes,
  formatDownloads,
  formatEta,
  formatPercent,
  formatProgress,
  formatRate,
  truncate,
} from './format.js'

const base: DownloadView = {
  infohash: 'a'.repeat(40),
  name: 'ubuntu.iso',
  status: 'DLSTATUS_DOWNLOADING',
  progress: 0.42,
  size: 10 * 1024 * 1024,
  speed_down: 1024 * 1024,
  speed_up: 0,
  eta: 6,
  num_connected_peers: 2,
  num_connected_seeds: 1,
}

describe('formatBytes and formatRate', () => {
  it('uses binary units with three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1023)).toBe('1023 B')
    expect(formatBytes(1024)).toBe('1.00 KiB')
    expect(formatBytes(1536)).toBe('1.50 KiB')
    expect(formatBytes(10 * 1024 * 1024)).toBe('10.0 MiB')
    expect(formatBytes(700 * 1024 * 1024)).toBe('700 MiB')
    expect(formatBytes(1024 * 1024 - 1)).toBe('1.00 MiB')
    expect(formatBytes(3 * 1024 ** 4)).toBe('3.00 TiB')
    expect(formatBytes(-1)).toBe('?')
    expect(formatRate(2.5 * 1024)).toBe('2.50 KiB/s')
  })
})

describe('formatEta', () => {
  it('gives h:mm:ss, and ∞ when unknown', () => {
    expect(formatEta(0)).toBe('0:00:00')
    expect(formatEta(6)).toBe('0:00:06')
    expect(formatEta(3661)).toBe('1:01:01')
    expect(formatEta(36_000.2)).toBe('10:00:01')
    expect(formatEta(Number.MAX_SAFE_INTEGER)).toBe('∞')
    expect(formatEta(Number.POSITIVE_INFINITY)).toBe('∞')
    expect(formatEta(-5)).toBe('∞')
  })
})

describe('formatPercent', () => {
  it('never shows 100.0% before the end', () => {
    expect(formatPercent(0)).toBe('0.0%')
    expect(formatPercent(0.4219)).toBe('42.1%')
    expect(formatPercent(0.99999)).toBe('99.9%')
    expect(formatPercent(1)).toBe('100.0%')
    expect(formatPercent(Number.NaN)).toBe('0.0%')
  })
})

describe('formatProgress', () => {
  it('shows percentage, bytes, rates, peers, ETA and state', () => {
    expect(formatProgress(base)).toBe(
      ' 42.0% 4.20 MiB/10.0 MiB  down 1.00 MiB/s  up 0 B/s  peers 3  eta 0:00:06  downloading',
    )
  })

  it('draws a bar when asked and shows no ETA once seeding', () => {
    const line = formatProgress({ ...base, status: 'DLSTATUS_SEEDING', progress: 1 }, { barWidth: 10 })
    expect(line).toBe(
      '100.0% [##########] 10.0 MiB/10.0 MiB  down 1.00 MiB/s  up 0 B/s  peers 3  eta -  seeding',
    )
  })

  it('shows an unknown size and ETA while fetching metadata', () => {
    const line = formatProgress({ ...base, status: 'DLSTATUS_METADATA', size: 0, progress: 0, eta: 1e300 })
    expect(line).toBe('  0.0% ?/?  down 1.00 MiB/s  up 0 B/s  peers 3  eta ∞  fetching metadata')
  })
})

describe('formatDownloads', () => {
  it('lays the downloads out in aligned columns with a short infohash', () => {
    const lines = formatDownloads([
      base,
      {
        ...base,
        infohash: 'b'.repeat(40),
        name: 'x'.repeat(50),
        status: 'DLSTATUS_STOPPED_ON_ERROR',
        error: 'disk full',
      },
    ])
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(/^INFOHASH\s+NAME\s+SIZE\s+PROGRESS\s+STATE\s+DOWN\s+UP\s+PEERS$/)
    expect(lines[1]).toMatch(
      /^aaaaaaaa\s+ubuntu\.iso\s+10\.0 MiB\s+42\.0%\s+downloading\s+1\.00 MiB\/s\s+0 B\/s\s+3$/,
    )
    expect(lines[2]).toContain(`${'x'.repeat(39)}…`)
    expect(lines[2]).toContain('error: disk full')
    expect(truncate('abc', 5)).toBe('abc')
  })
})
