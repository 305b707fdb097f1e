/** Core states of GET /state. */
export type CoreStateName = 'STARTING' | 'UPGRADING' | 'STARTED' | 'EXCEPTION'

/** Body of GET /state. */
export interface CoreState {
  state: CoreStateName
  last_exception: string | null
  readable_state: string
}

/** Download states (`status`) of GET /downloads. */
export type DownloadStatus =
  | 'DLSTATUS_ALLOCATING_DISKSPACE'
  | 'DLSTATUS_WAITING4HASHCHECK'
  | 'DLSTATUS_HASHCHECKING'
  | 'DLSTATUS_DOWNLOADING'
  | 'DLSTATUS_SEEDING'
  | 'DLSTATUS_STOPPED'
  | 'DLSTATUS_STOPPED_ON_ERROR'
  | 'DLSTATUS_METADATA'
  | 'DLSTATUS_CIRCUITS'

/** A tracker entry of a download, including the `[DHT]` and `[PeX]` pseudo-trackers. */
export interface Tracker {
  url: string
  peers: number
  status: string
}

/** A connected peer of a download (`get_peers=1`). */
export interface Peer {
  id: string
  extended_version: string
  ip: string
  port: number
  optimistic: boolean
  uinterested: boolean
  uchoked: boolean
  dinterested: boolean
  dchoked: boolean
  snubbed: boolean
  seed: boolean
  upload_only: boolean
  direction: string
  uprate: number
  downrate: number
  utotal: number
  dtotal: number
  completed: number
  connection_type: number
}

/** A file of a download (`get_files=1`, GET /downloads/{infohash}/files). */
export interface DownloadFile {
  index: number
  name: string
  size: number
  included: boolean
  progress: number
}

/** One download of GET /downloads. */
export interface Download {
  name: string
  progress: number
  infohash: string
  speed_down: number
  speed_up: number
  status: DownloadStatus | string
  size: number
  eta: number
  num_peers: number
  num_seeds: number
  num_connected_peers: number
  num_connected_seeds: number
  total_up: number
  total_down: number
  ratio: number
  trackers: Tracker[]
  hops: number
  anon_download: boolean
  safe_seeding: boolean
  destination: string
  availability: number
  total_pieces: number
  error: string
  time_added: number
  peers?: Peer[]
  pieces?: string
  files?: DownloadFile[]
}

/** A file entry of a torrent's metainfo (`info.files`). */
export interface MetainfoFile {
  path: string[]
  length: number
}

/** Body of GET /torrentinfo: the decoded torrent plus whether it is already downloading. */
export interface TorrentInfo {
  metainfo: {
    info: { name?: string; length?: number; files?: MetainfoFile[]; 'piece length'?: number }
    announce?: string
    'announce-list'?: string[][]
    download_exists?: boolean
  }
}

/** The settings tree of GET /settings: sections of keys. */
export type SettingsTree = Record<string, Record<string, unknown>>

/** Body of GET /settings. */
export interface SettingsResponse {
  settings: SettingsTree
  ports: Record<string, number>
}

/** A tunnel circuit of GET /debug/circuits. */
export interface Circuit {
  id: number
  state: string
  goal_hops: number
  bytes_up: number
  bytes_down: number
  created: number
  hops: { host: string }[]
}

/** One line of the /events stream. */
export interface CoreEvent {
  type: string
  event?: unknown
}
