import { afterEach, describe, expect, it } from 'vitest'
import { configureLogging, type LogRecord, logger, STDERR_SINK } from './logger.js'

afterEach(() => configureLogging({ level: 'warn', overrides: {}, sinks: [STDERR_SINK] }))

describe('logger', () => {
  it('writes structured records at or above the configured level only', () => {
    const records: LogRecord[] = []
    const lines: string[] = []
    configureLogging({
      level: 'info',
      sinks: [
        (r, l) => {
          records.push(r)
          lines.push(l)
        },
      ],
    })
    const log = logger('ipv8:tunnel')
    log.debug('hidden')
    log.info('circuit ready', { circuitId: 7, key: new Uint8Array([1, 2]) })
    expect(records.map((r) => r.msg)).toEqual(['circuit ready'])
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      ns: 'ipv8:tunnel',
      level: 'info',
      circuitId: 7,
      key: '0102',
    })
  })

  it('lets the longest namespace prefix override the global level', () => {
    const seen: string[] = []
    configureLogging({
      level: 'error',
      overrides: { ipv8: 'info', 'ipv8:tunnel': 'debug' },
      sinks: [(r) => seen.push(r.namespace)],
    })
    logger('ipv8:tunnel:exit').debug('a')
    logger('ipv8:discovery').debug('b')
    logger('ipv8:discovery').info('c')
    logger('bittorrent').warn('d')
    expect(seen).toEqual(['ipv8:tunnel:exit', 'ipv8:discovery'])
  })

  it('serialises errors with their code', () => {
    const lines: string[] = []
    configureLogging({ level: 'warn', sinks: [(_r, l) => lines.push(l)] })
    const err = Object.assign(new Error('disk full'), { code: 'ENOSPC' })
    logger('storage').error('write failed', { err })
    expect(JSON.parse(lines[0] ?? '').err).toMatchObject({ message: 'disk full', code: 'ENOSPC' })
  })
})
