import { describe, expect, it } from 'vitest'
import { formatBytes, formatEta, formatPercent, formatRate } from './format.js'

describe('formatBytes', () => {
  it('uses binary units with three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1023)).toBe('1023 B')
    expect(formatBytes(1536)).toBe('1.50 KiB')
    expect(formatBytes(10 * 1024 * 1024 + 512 * 1024)).toBe('10.5 MiB')
    expect(formatBytes(700 * 1024 ** 3)).toBe('700 GiB')
  })

  it('shows a dash for values that are not sizes', () => {
    expect(formatBytes(Number.NaN)).toBe('–')
    expect(formatBytes(-1)).toBe('–')
  })
})

describe('formatRate', () => {
  it('keeps idle rates quiet', () => {
    expect(formatRate(0)).toBe('–')
    expect(formatRate(2048)).toBe('2.00 KiB/s')
  })
})

describe('formatEta', () => {
  it('shows the two largest units', () => {
    expect(formatEta(42)).toBe('42s')
    expect(formatEta(125)).toBe('2m 05s')
    expect(formatEta(3725)).toBe('1h 02m')
    expect(formatEta(90_000)).toBe('1d 01h')
  })

  it('treats libtorrent’s huge placeholder as unknown', () => {
    expect(formatEta(2 ** 31)).toBe('∞')
    expect(formatEta(Number.POSITIVE_INFINITY)).toBe('∞')
  })
})

describe('formatPercent', () => {
  it('clamps to 0..100 and keeps one decimal below 100', () => {
    expect(formatPercent(0.1234)).toBe('12.3%')
    expect(formatPercent(1)).toBe('100%')
    expect(formatPercent(1.5)).toBe('100%')
    expect(formatPercent(-1)).toBe('0.0%')
  })
})
