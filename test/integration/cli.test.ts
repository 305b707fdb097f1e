import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { apiUrl, type CliProcess, ROOT, runCli, tempStateDir } from './cli-harness.js'

const running: CliProcess[] = []
afterEach(() => {
  for (const cli of running.splice(0)) if (cli.child.exitCode === null) cli.child.kill('SIGKILL')
})

function start(...args: Parameters<typeof runCli>): CliProcess {
  const cli = runCli(...args)
  running.push(cli)
  return cli
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url)
  return res.json()
}

describe('tribler CLI', () => {
  it('prints the REST URL, serves /state and exits cleanly on SIGTERM', async () => {
    const cli = start(['start', '--port', '0'])
    const url = await apiUrl(cli)
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(cli.stdout()).toContain('public network off')
    expect(await getJson(`${url}/state`)).toMatchObject({ state: 'STARTED' })
    cli.child.kill('SIGTERM')
    expect(await cli.exited).toEqual({ code: 0, signal: null })
    const log = readFileSync(join(cli.stateDir, 'logs', 'tribler-core.log'), 'utf8')
    expect(log).toContain('"msg":"stopped"')
    expect(existsSync(join(cli.stateDir, 'settings.json'))).toBe(true)
  })

  it('exits with one clear line and a non-zero code when the port is in use', async () => {
    const blocker: Server = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    try {
      const cli = start(['--port', String(port)])
      const { code } = await cli.exited
      expect(code).not.toBe(0)
      const lines = cli.stderr().trimEnd().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toContain(`port ${port}`)
      expect(lines[0]).toContain('already in use')
      expect(cli.stdout()).toBe('')
    } finally {
      blocker.close()
    }
  })

  it('stops on PUT /shutdown', async () => {
    const cli = start(['--port', '0'])
    const url = await apiUrl(cli)
    const res = await fetch(`${url}/shutdown`, { method: 'PUT' })
    expect(await res.json()).toEqual({ shutdown: true })
    expect(await cli.exited).toEqual({ code: 0, signal: null })
  })

  it('forces the exit on a second signal when the shutdown hangs', async () => {
    const cli = start(['--port', '0'], { script: join(ROOT, 'test/integration/fixtures/slow-stop.mjs') })
    await apiUrl(cli)
    cli.child.kill('SIGINT')
    // the first signal starts a shutdown that cannot finish; the process must still be there
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(cli.child.exitCode).toBeNull()
    cli.child.kill('SIGINT')
    const { code } = await cli.exited
    expect(code).toBe(130)
    expect(cli.stderr()).toContain('exiting without a clean shutdown')
  })

  it('keeps settings across a restart', async () => {
    const stateDir = tempStateDir()
    const first = start(['--port', '0'], { stateDir })
    const url = await apiUrl(first)
    const res = await fetch(`${url}/settings`, {
      method: 'POST',
      body: JSON.stringify({ libtorrent: { max_upload_rate: 4321 } }),
    })
    expect(res.status).toBe(200)
    first.child.kill('SIGTERM')
    await first.exited
    const second = start(['--port', '0'], { stateDir })
    const url2 = await apiUrl(second)
    const body = (await getJson(`${url2}/settings`)) as {
      settings: { libtorrent: { max_upload_rate: number } }
    }
    expect(body.settings.libtorrent.max_upload_rate).toBe(4321)
    second.child.kill('SIGTERM')
    await second.exited
  })

  it('requires the --api-key for this run without saving it', async () => {
    const stateDir = tempStateDir()
    const cli = start(['--port', '0', '--api-key', 'k3y'], { stateDir })
    const url = await apiUrl(cli)
    expect((await fetch(`${url}/state`)).status).toBe(401)
    expect((await fetch(`${url}/state`, { headers: { 'x-api-key': 'k3y' } })).status).toBe(200)
    cli.child.kill('SIGTERM')
    await cli.exited
    expect(JSON.parse(readFileSync(join(stateDir, 'settings.json'), 'utf8')).api.key).toBe('')
  })

  it('reports a corrupt database as EXCEPTION and keeps the damaged file aside', async () => {
    const stateDir = tempStateDir()
    writeFileSync(join(stateDir, 'tribler.db'), Buffer.alloc(16384, 0x5a))
    const cli = start(['--port', '0'], { stateDir })
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const match = /GET (http:\/\/\S+)\/state reports it/.exec(cli.stderr())
        if (match?.[1] !== undefined) {
          clearInterval(timer)
          resolve(match[1])
        }
      }, 50)
      cli.exited.then(() => {
        clearInterval(timer)
        reject(new Error(`exited: ${cli.stderr()}`))
      })
    })
    const state = (await getJson(`${url}/state`)) as { state: string; last_exception: string }
    expect(state.state).toBe('EXCEPTION')
    expect(state.last_exception).toMatch(/corrupt/)
    const aside = readdirSync(stateDir).filter((name) => name.startsWith('tribler.db.corrupt-'))
    expect(aside).toHaveLength(1)
    expect(state.last_exception).toContain(aside[0])
    cli.child.kill('SIGTERM')
    expect((await cli.exited).code).toBe(0)
  })

  it('prints help and version, and rejects unknown options with usage errors', async () => {
    const help = start(['--help'])
    expect((await help.exited).code).toBe(0)
    expect(help.stdout()).toContain('--no-public-network')
    const version = start(['--version'])
    expect((await version.exited).code).toBe(0)
    expect(version.stdout().trim()).toMatch(/^tribler \d+\.\d+\.\d+/)
    const bad = start(['--bogus'])
    expect((await bad.exited).code).toBe(2)
    const badPort = start(['--port', '70000'])
    expect((await badPort.exited).code).toBe(2)
  })
})
