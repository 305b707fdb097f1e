import { describe, expect, it } from 'vitest'
import { encodeCredentials, encodeRequest } from './codec.js'
import { type ControlStep, Socks5Control } from './control.js'
import { Command, Reply } from './types.js'

const writes = (steps: ControlStep[]): Buffer[] => steps.flatMap((s) => (s.kind === 'write' ? [s.data] : []))
const closed = (steps: ControlStep[]): string | undefined =>
  steps.flatMap((s) => (s.kind === 'close' ? [s.reason] : []))[0]
const ASSOCIATE = encodeRequest(Command.UDP_ASSOCIATE, { host: '0.0.0.0', port: 0 })

describe('SOCKS5 control connection', () => {
  it('negotiates no authentication, then asks for a UDP association and answers with the relay address', () => {
    const control = new Socks5Control()
    expect(writes(control.push(Buffer.of(5, 1, 0)))).toEqual([Buffer.of(5, 0)])
    const steps = control.push(ASSOCIATE)
    expect(steps).toEqual([{ kind: 'associate', client: { host: '0.0.0.0', port: 0 } }])
    const reply = writes(control.associated({ host: '127.0.0.1', port: 5000 }))
    expect(reply).toEqual([Buffer.of(5, Reply.SUCCEEDED, 0, 1, 127, 0, 0, 1, 0x13, 0x88)])
    expect(control.state).toBe('associated')
    expect(control.push(Buffer.from('anything after'))).toEqual([])
  })

  it('accepts the handshake split at every byte and coalesced in one chunk', () => {
    const all = Buffer.concat([Buffer.of(5, 2, 2, 0), ASSOCIATE])
    const whole = new Socks5Control().push(all)
    expect(whole.map((s) => s.kind)).toEqual(['write', 'associate'])
    const control = new Socks5Control()
    const steps = [...all].flatMap((byte) => control.push(Buffer.of(byte)))
    expect(steps).toEqual(whole)
  })

  it('answers CONNECT and BIND with "command not supported" and closes', () => {
    for (const command of [Command.CONNECT, Command.BIND, 0x09]) {
      const control = new Socks5Control()
      control.push(Buffer.of(5, 1, 0))
      const steps = control.push(encodeRequest(command, { host: 'example.org', port: 80 }))
      expect(writes(steps)[0]?.[1]).toBe(Reply.COMMAND_NOT_SUPPORTED)
      expect(closed(steps)).toBe('command')
    }
  })

  it('refuses a client without an acceptable method, and a wrong version', () => {
    const noMethod = new Socks5Control().push(Buffer.of(5, 1, 2))
    expect(writes(noMethod)).toEqual([Buffer.of(5, 0xff)])
    expect(closed(noMethod)).toBe('method')
    expect(closed(new Socks5Control().push(Buffer.of(4, 1, 0)))).toBe('malformed')
  })

  it('answers an unknown address type with "address type not supported"', () => {
    const control = new Socks5Control()
    control.push(Buffer.of(5, 1, 0))
    const steps = control.push(Buffer.of(5, 3, 0, 9, 0, 0))
    expect(writes(steps)[0]?.[1]).toBe(Reply.ADDRESS_TYPE_NOT_SUPPORTED)
    expect(closed(steps)).toBe('malformed')
  })

  it('requires username and password (RFC 1929) when credentials are set', () => {
    const good = new Socks5Control({ username: 'tribler', password: 'secret' })
    expect(writes(good.push(Buffer.of(5, 2, 0, 2)))).toEqual([Buffer.of(5, 2)])
    expect(writes(good.push(encodeCredentials('tribler', 'secret')))).toEqual([Buffer.of(1, 0)])
    expect(good.push(ASSOCIATE).map((s) => s.kind)).toEqual(['associate'])

    const bad = new Socks5Control({ username: 'tribler', password: 'secret' })
    bad.push(Buffer.of(5, 1, 2))
    const steps = bad.push(encodeCredentials('tribler', 'wrong'))
    expect(writes(steps)).toEqual([Buffer.of(1, 1)])
    expect(closed(steps)).toBe('auth')

    expect(closed(new Socks5Control({ username: 'a', password: 'b' }).push(Buffer.of(5, 1, 0)))).toBe(
      'method',
    )
  })

  it('answers a failed association with the failure reply and closes', () => {
    const control = new Socks5Control()
    control.push(Buffer.concat([Buffer.of(5, 1, 0), ASSOCIATE]))
    const steps = control.associated(undefined)
    expect(writes(steps)[0]?.[1]).toBe(Reply.GENERAL_FAILURE)
    expect(closed(steps)).toBe('command')
  })

  it('never throws on random input and always ends closed, waiting, or asking for more (fuzz)', () => {
    let seed = 0x9e3779b9
    const next = (): number => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return seed >>> 0
    }
    const states = new Set<string>()
    for (let i = 0; i < 5_000; i++) {
      const control = new Socks5Control(i % 3 === 0 ? { username: 'u', password: 'p' } : undefined)
      const prefix = i % 2 === 0 ? Buffer.of(5, 1, i % 3 === 0 ? 2 : 0) : Buffer.alloc(0)
      const noise = Buffer.alloc(next() % 24)
      for (let j = 0; j < noise.length; j++) noise[j] = next() & 0xff
      if (noise.length > 0 && i % 4 === 0) noise[0] = 5
      try {
        control.push(Buffer.concat([prefix, noise]))
      } catch (err) {
        expect.unreachable(`threw ${String(err)}`)
      }
      states.add(control.state)
    }
    expect(states.has('closed')).toBe(true)
    expect([...states].every((s) => ['methods', 'auth', 'request', 'waiting', 'closed'].includes(s))).toBe(
      true,
    )
  })
})
