import { randomBytes } from 'node:crypto'
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createTorrent, type TorrentInfo } from '../../metainfo/index.js'
import { formatAddress, type SocketAddress } from '../../net/index.js'
import { duplexPair, PeerWire } from '../peer-wire/index.js'
import { Download, type DownloadOptions } from './download.js'
import type { DownloadDeps, PeerConnector } from './types.js'

/** A torrent made from random files in a temporary folder, for swarms in tests. */
export interface TestTorrent {
  readonly torrent: TorrentInfo
  /** Folder holding the complete data (seeders save here). */
  readonly seedDir: string
  readonly files: Map<string, Buffer>
  readonly root: string
}

export async function makeTorrent(
  sizes: Record<string, number>,
  opts: { pieceLength?: number; name?: string; private?: boolean } = {},
): Promise<TestTorrent> {
  const root = await fsp.mkdtemp(path.join(tmpdir(), 'download-test-'))
  const seedDir = path.join(root, 'seed')
  const name = opts.name ?? 'content'
  const files = new Map<string, Buffer>()
  const single = Object.keys(sizes).length === 1 && Object.keys(sizes)[0] === name
  for (const [relative, size] of Object.entries(sizes)) {
    const file = single ? path.join(seedDir, name) : path.join(seedDir, name, relative)
    await fsp.mkdir(path.dirname(file), { recursive: true })
    const data = randomBytes(size)
    await fsp.writeFile(file, data)
    files.set(relative, data)
  }
  const created = await createTorrent(path.join(seedDir, name), {
    pieceLength: opts.pieceLength ?? 32_768,
    ...(opts.private === true && { private: true }),
  })
  return { torrent: created.info, seedDir, files, root }
}

/** Reads back every file of a download folder and compares it with the source bytes. */
export async function sameBytes(t: TestTorrent, dir: string, only?: readonly string[]): Promise<boolean> {
  for (const [relative, data] of t.files) {
    if (only !== undefined && !only.includes(relative)) continue
    const single = t.files.size === 1 && relative === t.torrent.name
    const file = single ? path.join(dir, t.torrent.name) : path.join(dir, t.torrent.name, relative)
    const got = await fsp.readFile(file).catch(() => undefined)
    if (got === undefined || !got.equals(data)) return false
  }
  return true
}

/**
 * Downloads wired together over in-process duplex pairs: each node has an address, dialling it hands the other
 * end to that node's {@link Download.acceptIncoming}, as the engine's listener does with sockets.
 */
export class MemorySwarm {
  readonly #nodes = new Map<string, Download>()
  readonly #listeners = new Map<string, (wire: PeerWire, from: SocketAddress) => void>()
  readonly downloads: Download[] = []

  /** A connector for a node at `self`. */
  connector(self: SocketAddress): PeerConnector {
    return async (to) => {
      const key = formatAddress(to)
      const target = this.#nodes.get(key)
      const listener = this.#listeners.get(key)
      if (target === undefined && listener === undefined) throw new Error(`ECONNREFUSED ${key}`)
      const [ours, theirs] = duplexPair()
      if (listener !== undefined) {
        listener(new PeerWire(theirs, { peerId: randomBytes(20) }), self)
      } else {
        const wire = new PeerWire(theirs, target!.wireOptions(self))
        wire.once('handshake', (hs) => {
          if (!hs.infoHash.equals(target!.infoHash)) wire.destroy()
          else target!.acceptIncoming(wire, { address: self, transport: 'tcp' })
        })
      }
      return { stream: ours, transport: 'tcp' }
    }
  }

  /** A download at `address` in this swarm. */
  add(
    address: SocketAddress,
    opts: DownloadOptions,
    deps: Partial<Omit<DownloadDeps, 'connect' | 'peerId'>> = {},
  ): Download {
    const dl = new Download(
      { connect: this.connector(address), peerId: randomBytes(20), listenPort: address.port, ...deps },
      opts,
    )
    this.#nodes.set(formatAddress(address), dl)
    this.downloads.push(dl)
    return dl
  }

  /** A raw listener at `address` (a hand-written peer); it receives the accepting wire and the dialler's address. */
  listen(address: SocketAddress, onWire: (wire: PeerWire, from: SocketAddress) => void): void {
    this.#listeners.set(formatAddress(address), onWire)
  }

  async stopAll(): Promise<void> {
    for (const dl of this.downloads) await dl.stop()
  }
}

/** Polls `predicate` until it holds or `timeoutMs` passes. */
export async function until(predicate: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
