import type { ConfigSchema, SettingSpec } from './types.js'

const bool = (value: boolean, doc?: string): SettingSpec => ({ type: 'boolean', default: value, doc })
const int = (value: number, range: { min?: number; max?: number } = {}, doc?: string): SettingSpec => ({
  type: 'integer',
  default: value,
  ...range,
  doc,
})
const float = (value: number, doc?: string): SettingSpec => ({ type: 'float', default: value, doc })
const str = (value: string | null, doc?: string): SettingSpec => ({
  type: 'string',
  default: value,
  nullable: value === null,
  doc,
})
const list = (value: string[], doc?: string): SettingSpec => ({ type: 'string_list', default: value, doc })
const port = (doc?: string): SettingSpec =>
  int(-1, { min: -1, max: 65536 }, doc ?? '-1 picks a free port at start')
const enabled = (doc?: string): Record<string, SettingSpec> => ({ enabled: bool(true, doc) })
const UNSET_PORTS = ['-1', '-1', '-1', '-1', '-1']

/**
 * Tribler's config.spec (26 sections, 83 keys) with its types, defaults and ranges. The REST contract (§3.1)
 * lists it; `GET /settings` returns a tree of exactly these sections plus {@link TRIBLER_TS_SCHEMA}.
 */
export const TRIBLER_SCHEMA: ConfigSchema = {
  general: {
    family_filter: bool(true, 'hide adult channels and torrents'),
    state_dir: str(''),
    ec_keypair_filename: str(''),
    megacache: bool(true, 'mount the channel and search endpoints'),
    log_dir: str(null),
    testnet: bool(false),
  },
  allchannel_community: enabled(),
  channel_community: enabled(),
  preview_channel_community: enabled(),
  search_community: enabled(),
  tunnel_community: {
    enabled: bool(true),
    socks5_listen_ports: list(UNSET_PORTS),
    exitnode_enabled: bool(false, 'relay traffic of others to the internet'),
    random_slots: int(5, { min: 0 }, 'circuits relayed or exited for others, first come, first served'),
    competing_slots: int(
      15,
      { min: 0 },
      'more such circuits, won by bandwidth balance (always 0: no ledger)',
    ),
  },
  market_community: { enabled: bool(true), matchmaker: bool(true), ec_keypair_filename: str('') },
  dht: enabled('run the IPv8 DHT, where hidden-service introduction points are announced and found'),
  trustchain: {
    enabled: bool(true),
    ec_keypair_filename: str(''),
    testnet_keypair_filename: str(''),
    live_edges_enabled: bool(true),
  },
  wallets: { bitcoinlib_enabled: bool(true), dummy_wallets_enabled: bool(false) },
  chant: { enabled: bool(true), channel_edit: bool(false), channels_dir: str('channels') },
  metadata: { enabled: bool(true), store_dir: str('collected_metadata') },
  mainline_dht: { enabled: bool(true), port: port() },
  torrent_checking: enabled(),
  torrent_store: { enabled: bool(true), store_dir: str('collected_torrents') },
  torrent_collecting: { enabled: bool(true), max_torrents: int(50000), directory: str('') },
  libtorrent: {
    enabled: bool(true),
    port: port(),
    proxy_type: int(0, { min: 0, max: 5 }, '0 none, 1 SOCKS4, 2 SOCKS5, 3 SOCKS5+auth, 4 HTTP, 5 HTTP+auth'),
    proxy_server: str(':'),
    proxy_auth: str(':'),
    max_connections_download: int(-1),
    max_download_rate: int(0, {}, 'bytes per second, 0 is unlimited; applied live'),
    max_upload_rate: int(0, {}, 'bytes per second, 0 is unlimited; applied live'),
    utp: bool(true),
    dht: bool(true),
    anon_listen_port: port(),
    anon_proxy_type: int(0, { min: 0, max: 5 }),
    anon_proxy_server_ip: { type: 'ip_addr', default: '127.0.0.1' },
    anon_proxy_server_ports: list(UNSET_PORTS),
    anon_proxy_auth: str(''),
  },
  download_defaults: {
    anonymity_enabled: bool(true),
    number_hops: int(1, { min: 0, max: 3 }),
    safeseeding_enabled: bool(true),
    saveas: str(null, 'download folder; null means ~/Downloads/TriblerDownloads'),
    seeding_mode: { type: 'string', default: 'ratio', choices: ['ratio', 'time', 'never', 'forever'] },
    seeding_ratio: float(2.0),
    seeding_time: float(60),
    channel_download: bool(false),
  },
  dispersy: { enabled: bool(true), port: port() },
  ipv8: {
    enabled: bool(true),
    address: str('0.0.0.0'),
    bootstrap_override: str('', 'host:port of a bootstrap peer to use instead of the defaults'),
    statistics: bool(false),
  },
  video_server: { enabled: bool(true), port: port() },
  watch_folder: {
    enabled: bool(false, 'start every .torrent put in the folder once; applied live'),
    directory: str('', 'the folder to watch, sub-folders included'),
  },
  http_api: {
    enabled: bool(false, 'the CLI always serves the REST API'),
    port: port('REST API port; -1 means the CLI default (8085)'),
    retry_port: bool(false, 'when the port is taken, try the next nine'),
  },
  resource_monitor: {
    enabled: bool(true),
    cpu_priority: int(1, { min: 0, max: 5 }),
    poll_interval: int(5, { min: 1 }),
    history_size: int(20, { min: 1 }),
  },
  credit_mining: {
    enabled: bool(true),
    sources: list([]),
    max_disk_space: int(53687091200, { min: 0 }),
  },
  popularity_community: { enabled: bool(true), cache_dir: str('health_cache') },
}

/** Settings Tribler.ts adds to config.spec. */
export const TRIBLER_TS_SCHEMA: ConfigSchema = {
  api: {
    key: str(
      '',
      'when set, every REST request needs it in the X-Api-Key header or the apikey query parameter',
    ),
    host: str('127.0.0.1', 'address the REST API listens on'),
    cors_origins: list([], 'origins allowed to call the REST API from a browser; empty closes CORS'),
    max_body_bytes: int(8 * 1024 * 1024, { min: 1024 }, 'largest accepted request body'),
  },
  log: {
    level: {
      type: 'string',
      default: 'info',
      choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'],
      doc: 'log level of the core log file and stderr',
    },
    max_file_bytes: int(10 * 1024 * 1024, { min: 64 * 1024 }, 'the log file is rotated beyond this size'),
  },
  tunnels: {
    min_circuits: int(
      3,
      { min: 1, max: 32 },
      'circuits kept per hop count while anonymous traffic needs them, at least',
    ),
    max_circuits: int(8, { min: 1, max: 32 }, 'circuits kept per hop count, at most'),
  },
}

/** Every declared setting: config.spec followed by the Tribler.ts additions. */
export const SCHEMA: ConfigSchema = { ...TRIBLER_SCHEMA, ...TRIBLER_TS_SCHEMA }
