import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { LogRecord } from '../common/index.js'
import { fileLogSink, tailFile } from './log-file.js'

const record = { time: 0, level: 'info', namespace: 't', msg: 'm' } as LogRecord

describe('log file', () => {
  it('rotates the file so it never grows much beyond its cap', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tribler-log-')), 'core.log')
    const sink = fileLogSink(path, 1000)
    for (let i = 0; i < 100; i++) sink(record, `line ${i} ${'x'.repeat(40)}`)
    sink.close()
    expect(statSync(path).size).toBeLessThanOrEqual(1000)
    expect(existsSync(`${path}.1`)).toBe(true)
    expect(readFileSync(path, 'utf8').trimEnd().split('\n').at(-1)).toMatch(/^line 99 /)
  })

  it('tails the last lines across read chunks', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tribler-log-')), 'core.log')
    const sink = fileLogSink(path, 1e9)
    for (let i = 0; i < 5000; i++) sink(record, `line ${i} ${'y'.repeat(30)}`)
    sink.close()
    const tail = tailFile(path, 3).split('\n')
    expect(tail.map((l) => l.split(' ')[1])).toEqual(['4997', '4998', '4999'])
    expect(tailFile(path, 4000).split('\n')).toHaveLength(4000)
    expect(tailFile(join(path, '..', 'missing.log'), 10)).toBe('')
  })
})
