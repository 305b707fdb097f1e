// One exit node of bench:tunnel in a process of its own (forked by bench/tunnel.ts with a host and the client's
// address). It reports its address once started, answers 'cpu' with its user + system microseconds so far, and
// stops on 'stop'.
import { Ipv8Endpoint, PrivateKey, TunnelCommunity } from '../src/ipv8/index.js'
import { batchedUdpTransport } from '../src/net/index.js'

const [host = '127.0.0.82', bootHost = '127.0.0.81', bootPort = '0'] = process.argv.slice(2)
const send = (message: unknown): void => {
  process.send?.(message)
}

const socket = await batchedUdpTransport.bind({ host, port: 0 })
const endpoint = new Ipv8Endpoint({ socket })
const community = new TunnelCommunity(
  { endpoint, key: PrivateKey.generate(), publicNetwork: false },
  {
    walkIntervalMs: 100,
    bootstrap: {
      publicNetwork: false,
      addresses: [{ host: bootHost, port: Number(bootPort) }],
      intervalMs: 1_000,
    },
    tunnel: { exit: true },
    exitBindHost: host,
  },
)
await community.start()
process.on('message', (message) => {
  if (message === 'cpu') {
    const used = process.cpuUsage()
    send({ cpu: used.user + used.system })
  } else if (message === 'stop') {
    void (async () => {
      await community.stop()
      endpoint.close()
      await socket.close()
      process.exit(0)
    })()
  }
})
process.on('disconnect', () => process.exit(0))
send({ ready: socket.local })
