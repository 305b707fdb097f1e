import { describe, expect, it } from 'vitest'
import { UtpSocket } from '../../src/bittorrent/utp/index.js'
import { connectPair, digestStream, withPair, writeRandom } from '../../src/bittorrent/utp/test-helpers.js'
import { udpTransport } from '../../src/net/index.js'

describe('uTP over real UDP on loopback', () => {
  it('moves 64 MiB between two sockets and the hash matches', async () => {
    await withPair([udpTransport, {}, ['127.0.0.41', '127.0.0.42']], async (pair) => {
      const { conn, remote } = await connectPair(pair.client, pair.server)
      const total = 64 * 1024 * 1024
      const [sent, got] = await Promise.all([writeRandom(conn, total, 1024 * 1024), digestStream(remote)])
      expect(got.bytes).toBe(total)
      expect(got.sha1).toBe(sent)
      expect(pair.client.stats.bytesSent).toBe(total)
      expect(pair.server.stats.bytesReceived).toBe(total)
    })
  })

  it('shares its port: a datagram that is not uTP reaches the fallback handler over UDP', async () => {
    const socket = await udpTransport.bind({ host: '127.0.0.43' })
    const other = await udpTransport.bind({ host: '127.0.0.44' })
    const utp = new UtpSocket({ socket })
    try {
      const got = new Promise<string>((resolve) => utp.onFallback((data) => resolve(data.toString())))
      other.send(Buffer.from('d1:q4:pinge'), socket.local)
      expect(await got).toBe('d1:q4:pinge')
    } finally {
      await utp.close()
      await Promise.all([socket.close(), other.close()])
    }
  })
})
