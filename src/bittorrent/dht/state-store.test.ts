import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fileDhtStateStore, keyValueDhtStateStore } from './state-store.js'

const STATE = {
  nodeId: 'ab'.repeat(20),
  nodes: [{ id: 'cd'.repeat(20), host: '127.0.0.2', port: 6881 }],
}

describe('DHT state stores', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tribler-dht-state-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('saves the state to a file in a new folder and loads it back, leaving no temporary file', async () => {
    const store = fileDhtStateStore(join(dir, 'nested', 'dht.json'))
    expect(await store.load()).toBeUndefined()
    await store.save(STATE)
    expect(await store.load()).toEqual(STATE)
    expect(await readdir(join(dir, 'nested'))).toEqual(['dht.json'])
  })

  it('rejects a damaged file or key-value entry with INVALID_STATE', async () => {
    const path = join(dir, 'dht.json')
    await writeFile(path, '{"nodeId": "ab')
    await expect(fileDhtStateStore(path).load()).rejects.toMatchObject({ code: 'INVALID_STATE' })
    const kv = keyValueDhtStateStore({ get: () => '[1, 2]', set: () => undefined })
    await expect(kv.load()).rejects.toMatchObject({ code: 'INVALID_STATE' })
  })
})
