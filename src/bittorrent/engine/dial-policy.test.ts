import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { ManualClock } from '../../common/index.js'
import type { SocketAddress } from '../../net/index.js'
import { UtpError } from '../utp/index.js'
import { type Dialer, DialPolicy, type DialTransport, UTP_FALLBACK_MS } from './dial-policy.js'

const PEER = { host: '10.0.0.1', port: 6881 }
const OTHER = { host: '10.0.0.2', port: 6881 }

/** Dialers whose answer per transport the test sets; they record every attempt. */
function dialers(answers: Partial<Record<DialTransport, 'ok' | 'refused' | 'silent'>>) {
  const attempts: Array<{ transport: DialTransport; peer: SocketAddress }> = []
  const make =
    (transport: DialTransport): Dialer =>
    (peer, signal) => {
      attempts.push({ transport, peer })
      const answer = answers[transport] ?? 'refused'
      if (answer === 'ok') return Promise.resolve(new PassThrough())
      if (answer === 'refused') return Promise.reject(new Error(`${transport} refused`))
      return new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      })
    }
  return { attempts, dial: { tcp: make('tcp'), utp: make('utp') } }
}

function policy(transports = { tcp: true, utp: true }, maxPeers?: number) {
  const clock = new ManualClock()
  return {
    clock,
    policy: new DialPolicy({
      clock,
      transports: () => transports,
      ...(maxPeers !== undefined && { maxPeers }),
    }),
  }
}

const signal = () => new AbortController().signal

describe('DialPolicy', () => {
  it('dials uTP first when both transports are on, and keeps dialling uTP to a peer it worked with', async () => {
    const { policy: p } = policy()
    const d = dialers({ utp: 'ok', tcp: 'ok' })
    expect(p.order(PEER)).toEqual(['utp', 'tcp'])
    expect((await p.dial(PEER, d.dial, { signal: signal() })).transport).toBe('utp')
    expect(p.memory(PEER)).toEqual({ noUtp: false, confirmedUtp: true })
    expect(p.order(PEER)).toEqual(['utp', 'tcp'])
    expect(d.attempts.map((a) => a.transport)).toEqual(['utp'])
  })

  it('falls back to TCP at once when uTP is refused, and then dials that peer over TCP only', async () => {
    const { policy: p } = policy()
    const d = dialers({ utp: 'refused', tcp: 'ok' })
    expect((await p.dial(PEER, d.dial, { signal: signal() })).transport).toBe('tcp')
    expect(p.memory(PEER)).toEqual({ noUtp: true, confirmedUtp: false })
    expect(p.order(PEER)).toEqual(['tcp'])
    expect((await p.dial(PEER, d.dial, { signal: signal() })).transport).toBe('tcp')
    expect(d.attempts.map((a) => a.transport)).toEqual(['utp', 'tcp', 'tcp'])
    // Other peers are still assumed to speak uTP.
    expect(p.order(OTHER)).toEqual(['utp', 'tcp'])
  })

  it('falls back to TCP when our own uTP socket is full or closed, without ruling uTP out for the peer', async () => {
    const { policy: p } = policy()
    for (const code of ['TOO_MANY_CONNECTIONS', 'SOCKET_CLOSED'] as const) {
      const attempts: DialTransport[] = []
      const dial: Record<DialTransport, Dialer> = {
        utp: () => {
          attempts.push('utp')
          return Promise.reject(new UtpError(code, {}))
        },
        tcp: () => {
          attempts.push('tcp')
          return Promise.resolve(new PassThrough())
        },
      }
      expect((await p.dial(PEER, dial, { signal: signal() })).transport).toBe('tcp')
      expect(attempts).toEqual(['utp', 'tcp'])
      expect(p.memory(PEER)?.noUtp ?? false).toBe(false)
      expect(p.order(PEER)).toEqual(['utp', 'tcp'])
    }
  })

  it('gives a silent uTP dial UTP_FALLBACK_MS on the clock, then dials TCP', async () => {
    const { policy: p, clock } = policy()
    const d = dialers({ utp: 'silent', tcp: 'ok' })
    const dialing = p.dial(PEER, d.dial, { signal: signal() })
    await Promise.resolve()
    expect(d.attempts.map((a) => a.transport)).toEqual(['utp'])
    clock.advance(UTP_FALLBACK_MS - 1)
    await Promise.resolve()
    expect(d.attempts).toHaveLength(1)
    clock.advance(1)
    expect((await dialing).transport).toBe('tcp')
    expect(p.order(PEER)).toEqual(['tcp'])
  })

  it('does not time out the only transport, nor fall back once the caller aborts', async () => {
    const utpOnly = policy({ tcp: false, utp: true })
    const silent = dialers({ utp: 'silent' })
    const controller = new AbortController()
    const dialing = utpOnly.policy.dial(PEER, silent.dial, { signal: controller.signal })
    utpOnly.clock.advance(UTP_FALLBACK_MS * 10)
    await Promise.resolve()
    controller.abort(new Error('dial timeout'))
    await expect(dialing).rejects.toThrow('dial timeout')
    expect(silent.attempts.map((a) => a.transport)).toEqual(['utp'])

    const both = policy()
    const aborted = new AbortController()
    const d = dialers({ utp: 'silent', tcp: 'ok' })
    const second = both.policy.dial(PEER, d.dial, { signal: aborted.signal })
    aborted.abort(new Error('stopped'))
    await expect(second).rejects.toThrow('stopped')
    expect(d.attempts.map((a) => a.transport)).toEqual(['utp'])
    // An abort says nothing about the peer.
    expect(both.policy.memory(PEER)).toBeUndefined()
  })

  it('dials only the transport that is on, and rejects with the last failure', async () => {
    expect(policy({ tcp: true, utp: false }).policy.order(PEER)).toEqual(['tcp'])
    expect(policy({ tcp: false, utp: true }).policy.order(PEER)).toEqual(['utp'])
    expect(policy({ tcp: false, utp: false }).policy.order(PEER)).toEqual([])
    const { policy: p } = policy()
    await expect(p.dial(PEER, dialers({}).dial, { signal: signal() })).rejects.toThrow('tcp refused')
    await expect(
      policy({ tcp: false, utp: false }).policy.dial(PEER, dialers({}).dial, { signal: signal() }),
    ).rejects.toThrow('no transport')
  })

  it('keeps a confirmed uTP peer on uTP after a failure, and a peer list can restore uTP for the others', async () => {
    const { policy: p } = policy()
    await p.dial(PEER, dialers({ utp: 'ok' }).dial, { signal: signal() })
    await p.dial(PEER, dialers({ utp: 'refused', tcp: 'ok' }).dial, { signal: signal() })
    expect(p.order(PEER)).toEqual(['utp', 'tcp'])
    await p.dial(OTHER, dialers({ utp: 'refused', tcp: 'ok' }).dial, { signal: signal() })
    expect(p.order(OTHER)).toEqual(['tcp'])
    p.supportsUtp(OTHER)
    expect(p.order(OTHER)).toEqual(['utp', 'tcp'])
  })

  it('remembers a bounded number of peers, forgetting the oldest', async () => {
    const { policy: p } = policy({ tcp: true, utp: true }, 2)
    const refused = dialers({ utp: 'refused', tcp: 'ok' })
    for (let i = 1; i <= 3; i++)
      await p.dial({ host: `10.0.1.${i}`, port: 1 }, refused.dial, { signal: signal() })
    expect(p.memory({ host: '10.0.1.1', port: 1 })).toBeUndefined()
    expect(p.order({ host: '10.0.1.1', port: 1 })).toEqual(['utp', 'tcp'])
    expect(p.order({ host: '10.0.1.3', port: 1 })).toEqual(['tcp'])
  })
})
