import { createHash, randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { DatagramTransport } from '../../net/index.js'
import type { UtpConnection } from './connection.js'
import { UtpSocket } from './socket.js'
import type { UtpOptions } from './types.js'

/** Two uTP sockets on their own addresses; `server` listens. */
export async function utpPair(
  transport: DatagramTransport,
  opts: UtpOptions = {},
  hosts: [string, string] = ['127.0.0.2', '127.0.0.3'],
): Promise<{ client: UtpSocket; server: UtpSocket; close(): Promise<void> }> {
  const a = await transport.bind({ host: hosts[0] })
  const b = await transport.bind({ host: hosts[1] })
  const client = new UtpSocket({ socket: a }, opts)
  const server = new UtpSocket({ socket: b }, opts)
  server.listen()
  return {
    client,
    server,
    async close() {
      await Promise.all([client.close(), server.close()])
      await Promise.all([a.close(), b.close()])
    },
  }
}

/** Runs `fn` with a fresh {@link utpPair} and closes the pair afterwards, whatever happens. */
export async function withPair<T>(
  args: Parameters<typeof utpPair>,
  fn: (pair: Awaited<ReturnType<typeof utpPair>>) => Promise<T>,
): Promise<T> {
  const pair = await utpPair(...args)
  try {
    return await fn(pair)
  } finally {
    await pair.close()
  }
}

/** Connects `client` to `server`; resolves with both ends of the connection. */
export async function connectPair(
  client: UtpSocket,
  server: UtpSocket,
): Promise<{ conn: UtpConnection; remote: UtpConnection }> {
  const accepted = nextConnection(server)
  const conn = await client.connect(server.local)
  return { conn, remote: await accepted }
}

/** The next incoming connection of `socket`. */
export function nextConnection(socket: UtpSocket): Promise<UtpConnection> {
  return new Promise((resolve) => socket.events.once('connection', resolve))
}

/** Reads a stream to its end; resolves with the SHA-1 and byte count of everything read. */
export function digestStream(stream: Duplex): Promise<{ sha1: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha1')
    let bytes = 0
    stream.on('data', (chunk: Buffer) => {
      hash.update(chunk)
      bytes += chunk.length
    })
    stream.once('end', () => resolve({ sha1: hash.digest('hex'), bytes }))
    stream.once('error', reject)
  })
}

/** Writes `total` random bytes in chunks of `chunkBytes`, honouring backpressure, then ends; resolves with the SHA-1. */
export async function writeRandom(stream: Duplex, total: number, chunkBytes = 64 * 1024): Promise<string> {
  const hash = createHash('sha1')
  let sent = 0
  while (sent < total) {
    const chunk = randomBytes(Math.min(chunkBytes, total - sent))
    hash.update(chunk)
    sent += chunk.length
    if (!stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => reject(err)
        stream.once('error', onError)
        stream.once('drain', () => {
          stream.off('error', onError)
          resolve()
        })
      })
    }
  }
  stream.end()
  return hash.digest('hex')
}
