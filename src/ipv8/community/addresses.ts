import { isIPv6 } from 'node:net'
import { networkInterfaces } from 'node:os'
import { formatAddress, type SocketAddress } from '../../net/index.js'
import { ipv4Number, NO_ADDRESS } from '../serialization/index.js'

/** Map key of an address. */
export function addressKey(address: SocketAddress): string {
  return formatAddress(address)
}

/** Whether two addresses are the same host and port. */
export function sameAddress(a: SocketAddress, b: SocketAddress): boolean {
  return a.port === b.port && a.host === b.host
}

/** Whether an address is `0.0.0.0:0` (or has port 0 / an unspecified host): py-ipv8's "none". */
export function isNoAddress(address: SocketAddress): boolean {
  return address.port === 0 || address.host === '0.0.0.0' || address.host === '::'
}

/** Whether `host` is a loopback address (127.0.0.0/8, ::1). */
export function isLoopback(host: string): boolean {
  return host === '::1' || ipv4Number(host) >>> 24 === 127 || host.startsWith('::ffff:127.')
}

/** Whether `host` is in a private, link-local or loopback range: reachable only from the same LAN. */
export function isLanHost(host: string): boolean {
  const ipv4 = ipv4Number(host)
  if (ipv4 >= 0) {
    const a = ipv4 >>> 24
    const b = (ipv4 >>> 16) & 0xff
    return (
      a === 10 ||
      a === 127 ||
      (a === 172 && b >= 16 && b < 32) ||
      (a === 192 && b === 168) ||
      (a === 169 && b === 254)
    )
  }
  if (isIPv6(host)) {
    const lower = host.toLowerCase()
    return lower === '::1' || lower.startsWith('fc') || lower.startsWith('fd') || lower.startsWith('fe80:')
  }
  return false
}

/**
 * Our LAN address as peers should see it: the socket's address, or for a wildcard bind the first non-internal
 * interface address of the same family (loopback when there is none).
 */
export function lanAddressOf(local: SocketAddress): SocketAddress {
  if (local.host !== '0.0.0.0' && local.host !== '::') return local
  const family = local.host === '::' ? 'IPv6' : 'IPv4'
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (!entry.internal && entry.family === family) return { host: entry.address, port: local.port }
    }
  }
  return { host: family === 'IPv4' ? '127.0.0.1' : '::1', port: local.port }
}

/** The address itself when it is IPv4, else `0.0.0.0:0` (old-style messages carry IPv4 only). */
export function ipv4OrNone(address: SocketAddress): SocketAddress {
  return ipv4Number(address.host) >= 0 ? address : NO_ADDRESS
}
