/**
 * A BitTorrent engine in the test process with hand-built session deps (in-memory settings, a SQLite store in a
 * state folder, no public network), listening on loopback.
 *
 * @example
 * ```ts
 * const node = await startEngine({ stateDir, host: '127.0.0.1' })
 * const { infoHash } = await node.engine.add({ source: { kind: 'torrent', torrent }, destination })
 * await node.stop()
 * ```
 */
import { BitTorrentEngine, type EngineOptions } from '../../src/bittorrent/engine/index.js'
import { logger, systemClock, TypedEmitter } from '../../src/common/index.js'
import { TriblerConfig } from '../../src/config/index.js'
import { type SessionEvents, statePaths } from '../../src/session/index.js'
import { Store } from '../../src/store/index.js'

export interface TestEngine {
  readonly engine: BitTorrentEngine
  readonly events: TypedEmitter<SessionEvents>
  readonly config: TriblerConfig
  stop(): Promise<void>
}

export async function startEngine(
  opts: {
    stateDir: string
    host?: string
    settings?: Record<string, Record<string, unknown>>
  } & EngineOptions,
): Promise<TestEngine> {
  const config = new TriblerConfig()
  config.override('libtorrent', 'dht', false)
  for (const [section, values] of Object.entries(opts.settings ?? {})) {
    for (const [key, value] of Object.entries(values)) config.override(section, key, value)
  }
  const paths = statePaths(opts.stateDir)
  const store = new Store(paths.database)
  const events = new TypedEmitter<SessionEvents>()
  const { stateDir: _s, host, settings: _x, ...engineOptions } = opts
  const engine = new BitTorrentEngine(
    { config, store, events, clock: systemClock, logger, publicNetwork: false, paths },
    { listenHost: host ?? '127.0.0.1', port: 0, ...engineOptions },
  )
  store.open()
  store.migrate()
  await engine.start()
  let stopped = false
  return {
    engine,
    events,
    config,
    async stop() {
      if (stopped) return
      stopped = true
      await engine.stop()
      store.close()
    },
  }
}
