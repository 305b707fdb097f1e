import { describe, expect, it } from 'vitest'
import { ManualClock } from './clock.js'
import { TaskScope } from './task-scope.js'

describe('TaskScope', () => {
  it('runs a periodic task every interval until stopped', () => {
    const clock = new ManualClock()
    const controller = new AbortController()
    const tasks = new TaskScope(controller.signal, clock)
    let runs = 0
    tasks.every('tick', 100, () => runs++)
    clock.advance(350)
    expect(runs).toBe(3)
    controller.abort()
    clock.advance(1000)
    expect(runs).toBe(3)
    expect(clock.pending).toBe(0)
  })

  it('replaces a task scheduled again under the same name', () => {
    const clock = new ManualClock()
    const tasks = new TaskScope(undefined, clock)
    const fired: string[] = []
    tasks.after('once', 100, () => fired.push('first'))
    tasks.after('once', 200, () => fired.push('second'))
    clock.advance(500)
    expect(fired).toEqual(['second'])
    expect(tasks.has('once')).toBe(false)
  })

  it('keeps running a periodic task whose run throws', () => {
    const clock = new ManualClock()
    const tasks = new TaskScope(undefined, clock)
    let runs = 0
    tasks.every('flaky', 10, () => {
      runs++
      throw new Error('boom')
    })
    clock.advance(30)
    expect(runs).toBe(3)
  })

  it('ignores scheduling after stopAll', () => {
    const clock = new ManualClock()
    const tasks = new TaskScope(undefined, clock)
    tasks.stopAll()
    tasks.every('late', 10, () => {
      throw new Error('must not run')
    })
    clock.advance(100)
    expect(tasks.names).toEqual([])
  })
})
