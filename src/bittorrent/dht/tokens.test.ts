import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import { TokenIssuer } from './tokens.js'

describe('TokenIssuer', () => {
  it('accepts a token from the same IP for two rotation periods, then refuses it', () => {
    const clock = new ManualClock()
    const tokens = new TokenIssuer(clock, 5 * 60_000)
    const token = tokens.issue('10.0.0.1')
    expect(tokens.check(token, '10.0.0.1')).toBe(true)
    clock.advance(5 * 60_000 + 1)
    expect(tokens.check(token, '10.0.0.1')).toBe(true)
    clock.advance(5 * 60_000)
    expect(tokens.check(token, '10.0.0.1')).toBe(false)
  })

  it('refuses a token issued to another IP', () => {
    const tokens = new TokenIssuer(new ManualClock())
    expect(tokens.check(tokens.issue('10.0.0.1'), '10.0.0.2')).toBe(false)
    expect(tokens.check(Buffer.alloc(8), '10.0.0.1')).toBe(false)
  })
})
