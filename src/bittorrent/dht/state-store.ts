import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { isHexOfLength, writeFileAtomic } from '../../common/index.js'
import { DhtError, type DhtState, type DhtStateStore } from './types.js'

/** Most nodes kept in a saved state. */
const MAX_SAVED_NODES = 400

/** Checks a state read from storage; anything malformed is rejected with `INVALID_STATE`. */
export function parseDhtState(value: unknown): DhtState {
  if (typeof value !== 'object' || value === null)
    throw new DhtError('INVALID_STATE', { reason: 'not an object' })
  const { nodeId, nodes } = value as { nodeId?: unknown; nodes?: unknown }
  if (typeof nodeId !== 'string' || !isHexOfLength(nodeId, 20))
    throw new DhtError('INVALID_STATE', { field: 'nodeId' })
  if (!Array.isArray(nodes)) throw new DhtError('INVALID_STATE', { field: 'nodes' })
  const valid: Array<{ id: string; host: string; port: number }> = []
  for (const node of nodes.slice(0, MAX_SAVED_NODES)) {
    const { id, host, port } = (node ?? {}) as { id?: unknown; host?: unknown; port?: unknown }
    if (typeof id !== 'string' || !isHexOfLength(id, 20)) continue
    if (
      typeof host !== 'string' ||
      typeof port !== 'number' ||
      !Number.isInteger(port) ||
      port <= 0 ||
      port > 0xffff
    ) {
      continue
    }
    valid.push({ id, host, port })
  }
  return { nodeId, nodes: valid }
}

/**
 * Saves the DHT state as a JSON file, written atomically (temporary file, then rename).
 *
 * @example
 * ```ts
 * const dht = new DhtNode({ socket, store: fileDhtStateStore(path.join(stateDir, 'dht.json')) })
 * ```
 */
export function fileDhtStateStore(file: string): DhtStateStore {
  return {
    async load() {
      let text: string
      try {
        text = await readFile(file, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
        throw new DhtError('INVALID_STATE', { cause: err })
      }
      return parseDhtStateText(text)
    },
    async save(state) {
      await mkdir(dirname(file), { recursive: true })
      writeFileAtomic(file, JSON.stringify(state))
    },
  }
}

function parseDhtStateText(text: string): DhtState {
  try {
    return parseDhtState(JSON.parse(text))
  } catch (err) {
    if (err instanceof DhtError) throw err
    throw new DhtError('INVALID_STATE', { reason: 'not JSON' })
  }
}

/** A string key-value store, such as the session's settings store. */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined> | string | undefined
  set(key: string, value: string): Promise<void> | void
}

/** Saves the DHT state as JSON under one key of a key-value store. */
export function keyValueDhtStateStore(store: KeyValueStore, key = 'dht.state'): DhtStateStore {
  return {
    async load() {
      const text = await store.get(key)
      if (text === undefined) return undefined
      return parseDhtStateText(text)
    },
    async save(state) {
      await store.set(key, JSON.stringify(state))
    },
  }
}

/** Keeps the state in memory (tests, or nodes that should forget). */
export function memoryDhtStateStore(initial?: DhtState): DhtStateStore & { state: DhtState | undefined } {
  return {
    state: initial,
    async load() {
      return this.state
    },
    async save(state) {
      this.state = state
    },
  }
}
