// The parts of the untyped npm `bittorrent-tracker` server that the interop tests use.
declare module 'bittorrent-tracker' {
  import { EventEmitter } from 'node:events'

  export class Server extends EventEmitter {
    constructor(opts: { udp?: boolean; http?: boolean; ws?: boolean; stats?: boolean; interval?: number })
    listen(port: number, hostname: { udp?: string; udp6?: string }, onListening: () => void): void
    close(callback: () => void): void
  }
}
