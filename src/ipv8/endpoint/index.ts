export {
  BEACON_HEADER,
  type EndpointDeps,
  type EndpointDrops,
  type EndpointOptions,
  type EndpointStats,
  Ipv8Endpoint,
  type PacketListener,
  type RateLimit,
  type TrafficCounters,
} from './endpoint.js'
