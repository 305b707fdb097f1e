import { execFileSync, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

// Real multicast is only ever sent inside a network namespace this test creates: it has nothing but its own
// loopback interface, so no packet can reach the LAN.
const NAMESPACE = `tribler-lsd-${process.pid}`
const PEER = fileURLToPath(new URL('../support/lsd-netns-peer.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' })
}

function namespaceUsable(): boolean {
  if (process.getuid?.() !== 0) return false
  const created = spawnSync('ip', ['netns', 'add', NAMESPACE], { stdio: 'ignore' })
  if (created.status !== 0) return false
  try {
    ip('-n', NAMESPACE, 'link', 'set', 'lo', 'up')
    ip('-n', NAMESPACE, 'link', 'set', 'lo', 'multicast', 'on')
    ip('-n', NAMESPACE, 'route', 'add', '224.0.0.0/4', 'dev', 'lo')
    return true
  } catch {
    spawnSync('ip', ['netns', 'del', NAMESPACE], { stdio: 'ignore' })
    return false
  }
}

const usable = namespaceUsable()

describe.skipIf(!usable)('LSD over real multicast sockets, inside a private network namespace', () => {
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', NAMESPACE], { stdio: 'ignore' })
  })

  function runPeers(group: string): Array<Array<{ infoHash: string; host: string; port: number }>> {
    const result = spawnSync(
      'ip',
      ['netns', 'exec', NAMESPACE, process.execPath, '--import', 'tsx', PEER, group],
      { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
    )
    if (result.status !== 0) throw new Error(`LSD peer failed: ${result.stderr}`)
    return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '[]')
  }

  it('two nodes on the BEP 14 IPv4 group find each other', () => {
    const [first, second] = runPeers('239.192.152.143')
    const infoHash = '42'.repeat(20)
    expect(first).toContainEqual({ infoHash, host: '127.0.0.1', port: 7001 })
    expect(second).toContainEqual({ infoHash, host: '127.0.0.1', port: 7000 })
  })
})
