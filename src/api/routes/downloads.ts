import { constants } from 'node:fs'
import { access, mkdir, stat } from 'node:fs/promises'
import { isAbsolute } from 'node:path'
import {
  DOWNLOAD_MANAGER_SERVICE,
  DOWNLOAD_STATES,
  type DownloadHandle,
  type DownloadManager,
  type DownloadSource,
  EngineError,
  type FileStatus,
  isDownloadManager,
  type PeerStatus,
  type RateLimits,
} from '../../bittorrent/engine/index.js'
import { errorMessage } from '../../common/index.js'
import {
  MagnetError,
  MetainfoError,
  parseMagnet,
  parseTorrent,
  type TorrentInfo,
} from '../../metainfo/index.js'
import type { Session } from '../../session/index.js'
import { ApiError, HandledError } from '../errors.js'
import { type FormParams, formArray, formString, isFlag } from '../form.js'
import { COMMON_ERRORS, PLAIN_ERROR, STRUCTURED_ERROR } from '../schemas.js'
import {
  fetchTorrentUrl,
  filePathOfUri,
  readTorrentFile,
  TorrentSourceError,
  unquotePlus,
} from '../torrent-source.js'
import type { RouteModule } from '../types.js'

/** The running download manager, if the BitTorrent engine is enabled and started. */
export function findDownloadManager(session: Session): DownloadManager | undefined {
  const service = session.service(DOWNLOAD_MANAGER_SERVICE)
  return isDownloadManager(service) ? service : undefined
}

/** The running download manager, or the structured 500 the contract uses for a failure the core anticipates. */
export function requireDownloadManager(session: Session): DownloadManager {
  const manager = findDownloadManager(session)
  if (manager === undefined) throw new HandledError('RuntimeError', 'BitTorrent engine is not running')
  return manager
}

/** A `{infohash}` path parameter: hex, lowercased. Invalid hex is 400; valid hex of another length is unknown. */
export function infohashParam(params: unknown): string {
  const raw = (params as { infohash?: string }).infohash ?? ''
  if (raw.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(raw)) {
    throw new ApiError('BAD_REQUEST', {}, 'invalid infohash')
  }
  return raw.toLowerCase()
}

const NOT_FOUND = 'this download does not exist'

function findDownload(
  session: Session,
  infohash: string,
): { manager: DownloadManager; handle: DownloadHandle } {
  const manager = findDownloadManager(session)
  const handle = manager?.get(infohash)
  if (manager === undefined || handle === undefined) throw new ApiError('NOT_FOUND', {}, NOT_FOUND)
  return { manager, handle }
}

/** `GET /downloads/{infohash}/files` and `get_files=1`'s File object. */
export function fileJson(file: FileStatus): Record<string, unknown> {
  return {
    index: file.index,
    name: file.name,
    size: file.size,
    included: file.included,
    progress: file.progress,
  }
}

/**
 * A peer in libtorrent's `peer_info` shape as Tribler reports it (`have` left out). libtorrent's `remote_choked`
 * (the peer chokes us, `weChoked`) is Tribler's `uchoked` and its `choked` (we choke the peer, `peerChoked`) is
 * `dchoked`. Fields the engine
 * does not track are derived: `speed` (the peer's own download rate) from what we send it, `uhasqueries` from an
 * unchoked, interested peer we are uploading to, `uflushed` (bytes waiting in the send buffer) from the same.
 */
export function peerJson(peer: PeerStatus): Record<string, unknown> {
  const uploading = !peer.peerChoked && peer.peerInterested && peer.upRate > 0
  return {
    id: peer.id,
    extended_version: peer.client,
    ip: peer.ip,
    port: peer.port,
    optimistic: peer.optimistic,
    direction: peer.direction,
    uprate: peer.upRate,
    uinterested: peer.peerInterested,
    uchoked: peer.weChoked,
    uhasqueries: uploading,
    uflushed: uploading,
    downrate: peer.downRate,
    dinterested: peer.weInterested,
    dchoked: peer.peerChoked,
    snubbed: peer.snubbed,
    utotal: peer.totalUp,
    dtotal: peer.totalDown,
    completed: peer.completed,
    speed: peer.upRate,
    connection_type: peer.connectionType,
    seed: peer.seed,
    upload_only: peer.uploadOnly,
  }
}

/** One download as `GET /downloads` reports it (REST contract §4.2). */
export function downloadJson(
  manager: DownloadManager,
  handle: DownloadHandle,
  extra: { peers?: boolean; pieces?: boolean; files?: boolean } = {},
): Record<string, unknown> {
  const s = handle.status()
  const limits = manager.rateLimits()
  const out: Record<string, unknown> = {
    name: s.name,
    progress: s.progress,
    infohash: s.infoHash,
    speed_down: s.speedDown,
    speed_up: s.speedUp,
    status: s.state,
    size: s.size,
    eta: s.eta,
    num_peers: s.numPeers,
    num_seeds: s.numSeeds,
    num_connected_peers: s.numConnectedPeers,
    num_connected_seeds: s.numConnectedSeeds,
    total_up: s.totalUp,
    total_down: s.totalDown,
    ratio: s.ratio,
    trackers: s.trackers.map((t) => ({ url: t.url, peers: t.peers, status: t.status })),
    hops: s.hops,
    anon_download: s.hops > 0,
    safe_seeding: s.safeSeeding,
    max_upload_speed: limits.upload,
    max_download_speed: limits.download,
    download_limit: s.rateLimits.downloadBytesPerSec,
    upload_limit: s.rateLimits.uploadBytesPerSec,
    destination: s.destination,
    availability: s.availability,
    total_pieces: s.totalPieces,
    vod_mode: false,
    vod_prebuffering_progress: 0,
    vod_prebuffering_progress_consec: 0,
    error: s.error,
    time_added: s.timeAdded,
    credit_mining: false,
    channel_download: false,
  }
  if (extra.peers === true) out.peers = handle.peers().map(peerJson)
  if (extra.pieces === true) out.pieces = Buffer.from(handle.pieces()).toString('base64')
  if (extra.files === true) out.files = handle.files().map(fileJson)
  return out
}

/** A source resolved from a `uri` parameter, with the parsed torrent when it is a .torrent. */
export type ResolvedUri =
  | { readonly kind: 'torrent'; readonly torrent: Buffer; readonly info: TorrentInfo }
  | { readonly kind: 'magnet'; readonly magnet: string; readonly infoHash: string }

/**
 * Turns a `uri` parameter into a torrent or a magnet: `file:` (read the file), `http(s):` (fetch it; it may
 * redirect to a magnet) or `magnet:`. Failures are {@link TorrentSourceError}, {@link MetainfoError} (a torrent
 * that does not parse) and {@link MagnetError}.
 */
export async function resolveUri(uri: string, signal?: AbortSignal): Promise<ResolvedUri> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase()
  if (scheme === 'file') return torrentOf(await readTorrentFile(filePathOfUri(uri)))
  if (scheme === 'magnet') return magnetOf(uri)
  if (scheme === 'http' || scheme === 'https') {
    const fetched = await fetchTorrentUrl(uri, { signal })
    return fetched.kind === 'magnet' ? magnetOf(fetched.magnet) : torrentOf(fetched.torrent)
  }
  throw new TorrentSourceError('INVALID_URI', { uri }, 'invalid uri')
}

function torrentOf(torrent: Buffer): ResolvedUri {
  return { kind: 'torrent', torrent, info: parseTorrent(torrent) }
}

function magnetOf(magnet: string): ResolvedUri {
  return { kind: 'magnet', magnet, infoHash: parseMagnet(magnet).infoHashHex }
}

/** The error body of a magnet link that does not parse. */
export function magnetErrorMessage(err: MagnetError): string {
  return err.code === 'MISSING_INFO_HASH' ? 'missing infohash' : `invalid magnet link (${err.message})`
}

/** The user-facing text of a .torrent that does not parse. */
export function torrentErrorMessage(err: MetainfoError): string {
  return `invalid torrent file (${err.message})`
}

async function writableDirectory(dir: string): Promise<void> {
  if (!isAbsolute(dir)) throw new ApiError('BAD_REQUEST', {}, 'destination must be an absolute path')
  try {
    await mkdir(dir, { recursive: true })
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory')
    await access(dir, constants.W_OK | constants.X_OK)
  } catch (err) {
    throw new ApiError(
      'BAD_REQUEST',
      { cause: err },
      `destination is not a writable directory: ${dir} (${(err as { code?: string }).code ?? errorMessage(err)})`,
    )
  }
}

/**
 * File names of `selected_files[]` to indices. A name may be the path inside the torrent with or without the
 * torrent's folder, as Tribler's file lists show it.
 */
function selectedIndices(info: TorrentInfo, names: readonly string[]): number[] {
  const byName = new Map<string, number>()
  const multi = info.files.length > 1 || info.files[0]?.pathComponents.length !== 1
  for (const file of info.files) {
    if (file.padding) continue
    for (const name of [file.path, file.displayPath]) {
      byName.set(name, file.index)
      if (multi) byName.set(name.split('/').slice(1).join('/'), file.index)
    }
  }
  return names.map((name) => {
    const index = byName.get(name) ?? byName.get(name.replaceAll('\\', '/'))
    if (index === undefined) throw new ApiError('BAD_REQUEST', {}, `file not in the torrent: ${name}`)
    return index
  })
}

/** An engine failure as the contract's error body. */
export function engineError(err: unknown): unknown {
  if (!(err instanceof EngineError)) return err
  switch (err.code) {
    case 'DESTINATION_NOT_WRITABLE':
    case 'INVALID_MAGNET':
      return new ApiError('BAD_REQUEST', { cause: err }, err.message)
    case 'METADATA_TIMEOUT':
      return new ApiError('TIMEOUT', { cause: err }, 'timeout')
    case 'NOT_RUNNING':
      return new HandledError('RuntimeError', 'BitTorrent engine is not running')
    default:
      return new ApiError('SERVER_ERROR', { cause: err }, err.message)
  }
}

/** `GET /downloads/{ih}/files` and `get_files=1`'s item. */
export const DOWNLOAD_FILE = {
  type: 'object',
  properties: {
    index: { type: 'integer' },
    name: { type: 'string', description: 'path inside the torrent' },
    size: { type: 'integer' },
    included: { type: 'boolean' },
    progress: { type: 'number' },
  },
  required: ['index', 'name', 'size', 'included', 'progress'],
} as const

const DOWNLOAD = {
  type: 'object',
  description: 'REST contract §4.2; `peers`, `pieces` and `files` only when asked for',
  properties: {
    name: { type: 'string' },
    progress: { type: 'number' },
    infohash: { type: 'string' },
    speed_down: { type: 'number' },
    speed_up: { type: 'number' },
    status: { type: 'string', enum: [...DOWNLOAD_STATES] },
    size: { type: 'integer' },
    eta: { type: 'number' },
    num_peers: { type: 'integer' },
    num_seeds: { type: 'integer' },
    num_connected_peers: { type: 'integer' },
    num_connected_seeds: { type: 'integer' },
    total_up: { type: 'integer' },
    total_down: { type: 'integer' },
    ratio: { type: 'number' },
    trackers: {
      type: 'array',
      items: {
        type: 'object',
        properties: { url: { type: 'string' }, peers: { type: 'integer' }, status: { type: 'string' } },
      },
    },
    hops: { type: 'integer' },
    anon_download: { type: 'boolean' },
    safe_seeding: { type: 'boolean' },
    max_upload_speed: {
      type: 'integer',
      description: 'the session-wide upload limit, bytes/s, 0 = unlimited',
    },
    max_download_speed: {
      type: 'integer',
      description: 'the session-wide download limit, bytes/s, 0 = unlimited',
    },
    download_limit: {
      type: 'integer',
      description: "Tribler.ts extension: this download's own download limit, bytes/s, 0 = unlimited",
    },
    upload_limit: {
      type: 'integer',
      description: "Tribler.ts extension: this download's own upload limit, bytes/s, 0 = unlimited",
    },
    destination: { type: 'string' },
    availability: { type: 'number' },
    total_pieces: { type: 'integer' },
    vod_mode: { type: 'boolean' },
    vod_prebuffering_progress: { type: 'number' },
    vod_prebuffering_progress_consec: { type: 'number' },
    error: { type: 'string' },
    time_added: { type: 'integer' },
    credit_mining: { type: 'boolean' },
    channel_download: { type: 'boolean' },
    peers: { type: 'array', items: { type: 'object', additionalProperties: true } },
    pieces: { type: 'string', description: 'base64 bitfield, one bit per piece, most significant bit first' },
    files: { type: 'array', items: DOWNLOAD_FILE },
  },
} as const

const INFOHASH_PARAMS = {
  type: 'object',
  properties: { infohash: { type: 'string', description: '40 hex characters' } },
  required: ['infohash'],
} as const

/** The `download_limit` / `upload_limit` form fields (a Tribler.ts extension) of PUT and PATCH. */
const LIMIT_FIELDS = {
  download_limit: {
    type: 'string',
    description:
      "Tribler.ts extension: the download's own download limit in bytes/s, 0 = unlimited; the session-wide " +
      '`libtorrent.max_download_rate` applies on top (the lower wins)',
  },
  upload_limit: {
    type: 'string',
    description:
      "Tribler.ts extension: the download's own upload limit in bytes/s, 0 = unlimited; the session-wide " +
      '`libtorrent.max_upload_rate` applies on top (the lower wins)',
  },
} as const

/** The per-download limits a form body gives; a field left out is absent. Not a whole number >= 0: 400. */
function rateLimitsOf(body: FormParams): Partial<RateLimits> {
  const read = (name: string): number | undefined => {
    const text = formString(body, name)
    if (text === undefined) return undefined
    const value = /^[0-9]{1,15}$/.test(text.trim()) ? Number(text.trim()) : Number.NaN
    if (!Number.isSafeInteger(value)) {
      throw new ApiError(
        'BAD_REQUEST',
        {},
        `${name} must be a whole number of bytes per second (0 = unlimited)`,
      )
    }
    return value
  }
  const down = read('download_limit')
  const up = read('upload_limit')
  return {
    ...(down !== undefined && { downloadBytesPerSec: down }),
    ...(up !== undefined && { uploadBytesPerSec: up }),
  }
}

const MODIFIED = {
  type: 'object',
  properties: { modified: { type: 'boolean' }, infohash: { type: 'string' } },
  required: ['modified', 'infohash'],
} as const

/**
 * `/downloads` (REST contract §4): list, start, change, remove and export downloads of the BitTorrent engine.
 * Without a running engine the list is empty, every download is unknown and starting one is a structured 500.
 */
export const downloadsRoutes: RouteModule = (app, { session }) => {
  app.get(
    '/downloads',
    {
      schema: {
        tags: ['downloads'],
        summary: 'Every download with its status',
        querystring: {
          type: 'object',
          properties: {
            get_peers: { type: 'string', description: '`1` adds `peers`' },
            get_pieces: { type: 'string', description: '`1` adds `pieces`' },
            get_files: { type: 'string', description: '`1` adds `files`' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { downloads: { type: 'array', items: DOWNLOAD } },
            required: ['downloads'],
          },
          ...COMMON_ERRORS,
        },
      },
    },
    (request) => {
      const query = request.query as FormParams
      const extra = {
        peers: isFlag(formString(query, 'get_peers')),
        pieces: isFlag(formString(query, 'get_pieces')),
        files: isFlag(formString(query, 'get_files')),
      }
      const manager = findDownloadManager(session)
      if (manager === undefined) return { downloads: [] }
      return { downloads: manager.list().map((handle) => downloadJson(manager, handle, extra)) }
    },
  )

  app.put(
    '/downloads',
    {
      schema: {
        tags: ['downloads'],
        summary: 'Start a download from a file:, magnet: or http(s): URI',
        description:
          'Adding an infohash that is already downloading merges its trackers and answers the same 200. A ' +
          '`file:` URI holds the percent-encoded absolute path; other URIs are unquoted (`+` is a space) first. ' +
          '`selected_files[]` names files by their path inside the torrent (not possible for a magnet link). ' +
          'An http(s) URL is fetched with a 30 s timeout and at most 64 MiB; a redirect to a magnet link is ' +
          'followed. The destination is created when missing and must be writable. `download_limit` and ' +
          "`upload_limit` (a Tribler.ts extension) set the new download's own rate limits.",
        body: {
          type: 'object',
          properties: {
            uri: { type: 'string' },
            anon_hops: { type: 'string', description: '0–3; not all digits counts as 0' },
            safe_seeding: {
              type: 'string',
              description: '`1` seeds anonymously; required when anon_hops > 0',
            },
            destination: {
              type: 'string',
              description: 'absolute directory; default download_defaults.saveas',
            },
            'selected_files[]': { type: 'array', items: { type: 'string' } },
            ...LIMIT_FIELDS,
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { started: { type: 'boolean' }, infohash: { type: 'string' } },
            required: ['started', 'infohash'],
          },
          400: {
            description:
              'uri missing, anon_hops without safe_seeding, bad magnet ("missing infohash"), bad destination, ' +
              'unknown selected file, a rate limit that is not a whole number >= 0',
            ...PLAIN_ERROR,
          },
          ...COMMON_ERRORS,
          500: {
            description:
              'plain `{"error": …}`: invalid uri scheme, unreachable URL, unreadable file, corrupt torrent; ' +
              'structured: the engine is not running',
            oneOf: [PLAIN_ERROR, STRUCTURED_ERROR],
          },
        },
      },
    },
    async (request) => {
      const body = request.body as FormParams
      const rawUri = formString(body, 'uri')
      if (rawUri === undefined || rawUri === '')
        throw new ApiError('BAD_REQUEST', {}, 'uri parameter missing')
      const hopsText = formString(body, 'anon_hops') ?? ''
      const hops = /^[0-9]+$/.test(hopsText) ? Number(hopsText) : 0
      const safeSeeding = isFlag(formString(body, 'safe_seeding'))
      if (hops > 0 && !safeSeeding) {
        throw new ApiError('BAD_REQUEST', {}, 'Cannot set anonymous download without safe seeding enabled')
      }
      if (hops > 3) throw new ApiError('BAD_REQUEST', {}, 'anon_hops must be between 0 and 3')
      const uri = /^file:/i.test(rawUri) ? rawUri : unquotePlus(rawUri)
      const destination = formString(body, 'destination')
      const selected = formArray(body, 'selected_files')
      const rateLimits = rateLimitsOf(body)

      await refuseChannelMetadata(uri)
      let resolved: ResolvedUri
      try {
        resolved = await resolveUri(uri)
      } catch (err) {
        throw putSourceError(err)
      }
      let selectedFiles: number[] | undefined
      if (selected.length > 0) {
        if (resolved.kind === 'magnet') {
          throw new ApiError(
            'BAD_REQUEST',
            {},
            'selected_files[] needs the file list of a .torrent; a magnet link has none yet',
          )
        }
        selectedFiles = selectedIndices(resolved.info, selected)
      }
      if (destination !== undefined && destination !== '') await writableDirectory(destination)
      const manager = requireDownloadManager(session)
      const source: DownloadSource =
        resolved.kind === 'torrent'
          ? { kind: 'torrent', torrent: resolved.torrent }
          : { kind: 'magnet', magnet: resolved.magnet }
      try {
        const result = await manager.add({
          source,
          hops,
          safeSeeding,
          ...(destination !== undefined && destination !== '' ? { destination } : {}),
          ...(selectedFiles !== undefined ? { selectedFiles } : {}),
          ...(Object.keys(rateLimits).length > 0 ? { rateLimits } : {}),
        })
        return { started: true, infohash: result.infoHash }
      } catch (err) {
        throw engineError(err)
      }
    },
  )

  app.patch(
    '/downloads/:infohash',
    {
      schema: {
        tags: ['downloads'],
        summary: 'Resume, stop or recheck a download, select its files, change its hops or its rate limits',
        description:
          'Checks in order: unknown infohash 404; `anon_hops` together with anything else 400; a bad ' +
          '`selected_files[]` index, `state`, `download_limit` or `upload_limit` 400 (nothing is changed then). ' +
          '`anon_hops` re-adds the download with the new hop count, keeping its data, selection, safe seeding ' +
          'and rate limits. `download_limit` and `upload_limit` (a Tribler.ts extension) apply at once, also to ' +
          'open connections, and are kept across restarts; a limit left out stays as it was.',
        params: INFOHASH_PARAMS,
        body: {
          type: 'object',
          properties: {
            anon_hops: { type: 'string', description: '0–3; must be the only parameter' },
            'selected_files[]': { type: 'array', items: { type: 'string' }, description: 'file indices' },
            state: { type: 'string', description: '`resume`, `stop` or `recheck`' },
            ...LIMIT_FIELDS,
          },
        },
        response: {
          200: MODIFIED,
          400: { description: 'see the description', ...PLAIN_ERROR },
          ...COMMON_ERRORS,
          404: { description: 'unknown infohash, or the core is not STARTED', ...PLAIN_ERROR },
        },
      },
    },
    async (request) => {
      const infohash = infohashParam(request.params)
      const { manager, handle } = findDownload(session, infohash)
      const body = request.body as FormParams
      const keys = Object.keys(body)
      if (keys.includes('anon_hops')) {
        if (keys.length > 1) {
          throw new ApiError('BAD_REQUEST', {}, 'anon_hops must be the only parameter in this request')
        }
        const text = formString(body, 'anon_hops') ?? ''
        const hops = /^[0-9]+$/.test(text) ? Number(text) : 0
        if (hops > 3) throw new ApiError('BAD_REQUEST', {}, 'anon_hops must be between 0 and 3')
        try {
          await manager.setHops(infohash, hops)
        } catch (err) {
          throw new HandledError(err instanceof EngineError ? err.code : errorName(err), errorMessage(err))
        }
        return { modified: true, infohash }
      }
      let indices: number[] | undefined
      if ('selected_files[]' in body || 'selected_files' in body) {
        const count = handle.files().length
        indices = formArray(body, 'selected_files').map((text) => {
          const index = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN
          if (!(index < count)) throw new ApiError('BAD_REQUEST', {}, `index ${text} out of range`)
          return index
        })
      }
      const state = formString(body, 'state')
      if (state !== undefined && !['resume', 'stop', 'recheck'].includes(state)) {
        throw new ApiError('BAD_REQUEST', {}, 'unknown state parameter')
      }
      const rateLimits = rateLimitsOf(body)
      if (indices !== undefined) {
        try {
          await handle.setSelectedFiles(indices)
        } catch (err) {
          if (err instanceof RangeError) throw new ApiError('BAD_REQUEST', {}, err.message)
          throw err
        }
      }
      if (Object.keys(rateLimits).length > 0) handle.setRateLimits(rateLimits)
      if (state === 'resume') await handle.resume()
      else if (state === 'stop') await handle.stop()
      else if (state === 'recheck') await handle.recheck()
      return { modified: true, infohash }
    },
  )

  app.delete(
    '/downloads/:infohash',
    {
      schema: {
        tags: ['downloads'],
        summary: 'Remove a download, and its data with remove_data=1',
        description:
          '`remove_data` is required (checked before the infohash); only `1` deletes the files. It is read ' +
          'from the form body, or from the query string when the body lacks it.',
        params: INFOHASH_PARAMS,
        body: {
          type: 'object',
          properties: { remove_data: { type: 'string', description: '`1` also deletes the files' } },
        },
        response: {
          200: {
            type: 'object',
            properties: { removed: { type: 'boolean' }, infohash: { type: 'string' } },
            required: ['removed', 'infohash'],
          },
          400: { description: 'remove_data parameter missing, or invalid hex', ...PLAIN_ERROR },
          ...COMMON_ERRORS,
          404: { description: 'unknown infohash, or the core is not STARTED', ...PLAIN_ERROR },
          500: { description: 'removal failed (structured, handled)', ...STRUCTURED_ERROR },
        },
      },
    },
    async (request) => {
      const removeData =
        formString(request.body as FormParams, 'remove_data') ??
        formString(request.query as FormParams, 'remove_data')
      if (removeData === undefined) throw new ApiError('BAD_REQUEST', {}, 'remove_data parameter missing')
      const infohash = infohashParam(request.params)
      const { manager } = findDownload(session, infohash)
      let removed: boolean
      try {
        removed = await manager.remove(infohash, { removeData: isFlag(removeData) })
      } catch (err) {
        throw new HandledError(errorName(err), errorMessage(err))
      }
      if (!removed) throw new ApiError('NOT_FOUND', {}, NOT_FOUND)
      return { removed: true, infohash }
    },
  )

  app.get(
    '/downloads/:infohash/torrent',
    {
      schema: {
        tags: ['downloads'],
        summary: 'The .torrent file of a download',
        params: INFOHASH_PARAMS,
        produces: ['application/x-bittorrent'],
        response: {
          200: { description: 'the bencoded .torrent', type: 'string', format: 'binary' },
          400: { description: 'invalid hex', ...PLAIN_ERROR },
          ...COMMON_ERRORS,
          404: { description: 'unknown infohash, or its metadata is not known yet', ...PLAIN_ERROR },
        },
      },
    },
    (request, reply) => {
      const infohash = infohashParam(request.params)
      const torrent = findDownload(session, infohash).handle.torrentFile()
      if (torrent === undefined) throw new ApiError('NOT_FOUND', {}, NOT_FOUND)
      return reply
        .type('application/x-bittorrent')
        .header('content-disposition', `attachment; filename=${infohash}.torrent`)
        .send(Buffer.from(torrent.buffer, torrent.byteOffset, torrent.byteLength))
    },
  )

  app.get(
    '/downloads/:infohash/files',
    {
      schema: {
        tags: ['downloads'],
        summary: 'The files of a download with their progress',
        params: INFOHASH_PARAMS,
        response: {
          200: {
            type: 'object',
            properties: { files: { type: 'array', items: DOWNLOAD_FILE } },
            required: ['files'],
          },
          400: { description: 'invalid hex', ...PLAIN_ERROR },
          ...COMMON_ERRORS,
          404: { description: 'unknown infohash, or the core is not STARTED', ...PLAIN_ERROR },
        },
      },
    },
    (request) => {
      const infohash = infohashParam(request.params)
      return { files: findDownload(session, infohash).handle.files().map(fileJson) }
    },
  )
}

/** The message for channel metadata, which needs the channels subsystem. */
export const MDBLOB_NOT_SUPPORTED = 'channel metadata (.mdblob) is not supported yet'

// A `file:` URI of channel metadata (`.mdblob`): a missing one is 400 "file not found" as in the contract, an
// existing one cannot be opened without channels.
async function refuseChannelMetadata(uri: string): Promise<void> {
  if (!/^file:/i.test(uri) || !/\.mdblob$/i.test(uri)) return
  let path: string
  try {
    path = filePathOfUri(uri)
  } catch {
    return // resolveUri reports the URI itself
  }
  if (!(await stat(path).catch(() => undefined))?.isFile())
    throw new ApiError('BAD_REQUEST', {}, 'file not found')
  throw new ApiError('SERVER_ERROR', {}, MDBLOB_NOT_SUPPORTED)
}

// PUT /downloads answers a source that cannot be read with the plain 500 of the contract, bad input with 400
function putSourceError(err: unknown): unknown {
  if (err instanceof MagnetError) return new ApiError('BAD_REQUEST', { cause: err }, magnetErrorMessage(err))
  if (err instanceof MetainfoError)
    return new ApiError('SERVER_ERROR', { cause: err }, torrentErrorMessage(err))
  if (err instanceof TorrentSourceError) {
    if (err.code === 'INVALID_URI' && err.message !== 'invalid uri') {
      return new ApiError('BAD_REQUEST', { cause: err }, err.message)
    }
    return new ApiError('SERVER_ERROR', { cause: err }, err.message)
  }
  return err
}

function errorName(err: unknown): string {
  if (err instanceof Error) return err.name === 'Error' ? 'RuntimeError' : err.name
  return 'RuntimeError'
}
