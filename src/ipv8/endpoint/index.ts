export {
  BEACON_HEADER,
  type EndpointDeps,
  type EndpointDrops,
  type EndpointOptions,
  type EndpointStats,
  Ipv8Endpoint,
  type PacketListener,
  type RegisterOptions,
  type TrafficCounters,
} from './endpoint.js'
export { type RateLimit, SourceRateLimiter } from './rate-limit.js'
