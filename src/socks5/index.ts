export {
  decodeAddress,
  decodeCredentials,
  decodeMethods,
  decodeReply,
  decodeRequest,
  decodeUdpDatagram,
  encodeAddress,
  encodeCredentials,
  encodeReply,
  encodeRequest,
  encodeUdpDatagram,
} from './codec.js'
export { type ControlStep, Socks5Control } from './control.js'
export { Socks5Server } from './server.js'
export {
  circuitUpstream,
  parseCredentials,
  SOCKS5_PORT_KEY,
  type Socks5Config,
  type Socks5ProxyInfo,
  Socks5Service,
  type Socks5ServiceDeps,
  type Socks5ServiceOptions,
} from './service.js'
export * from './types.js'
