import { describe, expect, it } from 'vitest'
import { udpTransport } from '../../src/net/index.js'

describe('UDP transport on loopback', () => {
  it('exchanges datagrams between two sockets on distinct 127.0.0.x addresses and counts them', async () => {
    const a = await udpTransport.bind({ host: '127.0.0.2' })
    const b = await udpTransport.bind({ host: '127.0.0.3' })
    try {
      const received = new Promise<{ data: string; host: string }>((resolve) =>
        b.onMessage((data, from) => resolve({ data: data.toString(), host: from.host })),
      )
      a.send(Buffer.from('ping'), b.local)
      expect(await received).toEqual({ data: 'ping', host: '127.0.0.2' })
      expect(a.stats.packetsSent).toBe(1)
      expect(b.stats.bytesReceived).toBe(4)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('works over IPv6 loopback', async () => {
    const a = await udpTransport.bind({ host: '::1' })
    const b = await udpTransport.bind({ host: '::1' })
    try {
      const received = new Promise<string>((resolve) => b.onMessage((data) => resolve(data.toString())))
      a.send(Buffer.from('v6'), b.local)
      expect(await received).toBe('v6')
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('counts a bad port and an oversized datagram as send errors without throwing', async () => {
    const a = await udpTransport.bind({ host: '127.0.0.2' })
    try {
      a.send(Buffer.from('x'), { host: '127.0.0.3', port: 0 })
      // Larger than any UDP datagram: the kernel refuses it (EMSGSIZE), reported asynchronously.
      a.send(Buffer.alloc(70_000), { host: '127.0.0.3', port: 9 })
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(a.stats.sendErrors).toBe(2)
    } finally {
      await a.close()
    }
  })
})
