import { stat } from 'node:fs/promises'
import { dirname, isAbsolute, resolve, sep } from 'node:path'
import { EngineError } from '../../bittorrent/engine/index.js'
import { errorMessage, logger } from '../../common/index.js'
import { TORRENT_STORE_SERVICE, TorrentService } from '../../content/torrents/index.js'
import { createTorrent, MagnetError, MetainfoError, parseMagnet, parseTorrent } from '../../metainfo/index.js'
import { ApiError, HandledError } from '../errors.js'
import { type FormParams, formArray, formString, isFlag } from '../form.js'
import { COMMON_ERRORS, PLAIN_ERROR, STRUCTURED_ERROR } from '../schemas.js'
import {
  fetchTorrentUrl,
  filePathOfUri,
  metainfoJson,
  readTorrentFile,
  TorrentSourceError,
} from '../torrent-source.js'
import type { RouteModule } from '../types.js'
import {
  findDownloadManager,
  MDBLOB_NOT_SUPPORTED,
  magnetErrorMessage,
  requireDownloadManager,
} from './downloads.js'

const log = logger('api:torrentinfo')

/** How long `GET /torrentinfo` waits for a magnet's metadata unless `timeout` says otherwise. */
export const TORRENTINFO_TIMEOUT_MS = 20_000
const MAX_TIMEOUT_S = 300

/**
 * `GET /torrentinfo` (REST contract §5.3): the metainfo of a `file:`, `http(s):` or `magnet:` URI, a magnet's
 * fetched from peers by the engine. `POST /createtorrent` (§5.2): a .torrent of local files, optionally seeded.
 */
export const torrentinfoRoutes: RouteModule = (app, { session }) => {
  app.get(
    '/torrentinfo',
    {
      schema: {
        tags: ['torrentinfo'],
        summary: 'The metainfo of a .torrent file, an http(s) URL of one, or a magnet link',
        description:
          'Byte strings are UTF-8 text when valid, else one character per byte; `info.pieces` is base64. ' +
          '`download_exists` sits beside `info` inside `metainfo`. A magnet needs the BitTorrent engine; its ' +
          'metadata is awaited `timeout` seconds (default 20) before 408. An http(s) URL may redirect to a magnet.',
        querystring: {
          type: 'object',
          properties: {
            uri: { type: 'string', description: 'file:, http:, https: or magnet: (URL-encoded)' },
            timeout: { type: 'string', description: 'seconds to wait for a magnet’s metadata, default 20' },
            hops: {
              type: 'string',
              description:
                'anonymity hops 0–3 for fetching a magnet’s metadata (through circuits when > 0); default ' +
                '`download_defaults.number_hops` when anonymity is enabled and the tunnels run, else 0',
            },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              metainfo: {
                type: 'object',
                additionalProperties: true,
                properties: {
                  info: { type: 'object', additionalProperties: true },
                  download_exists: { type: 'boolean' },
                },
              },
            },
            required: ['metainfo'],
          },
          400: { description: 'uri missing, invalid uri, missing infohash, bad timeout', ...PLAIN_ERROR },
          408: { description: 'the metadata did not arrive in time: `{"error": "timeout"}`', ...PLAIN_ERROR },
          ...COMMON_ERRORS,
          500: {
            description:
              'plain: undecodable torrent, unreadable file, failed http fetch; structured: engine not running',
            oneOf: [PLAIN_ERROR, STRUCTURED_ERROR],
          },
        },
      },
    },
    async (request) => {
      const query = request.query as FormParams
      const uri = formString(query, 'uri')
      if (uri === undefined || uri === '') throw new ApiError('BAD_REQUEST', {}, 'uri parameter missing')
      const timeoutMs = timeoutOf(formString(query, 'timeout'))
      const hops = hopsOf(formString(query, 'hops'))
      const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase()
      let torrent: Buffer
      if (scheme === 'file') {
        torrent = await fromFile(uri)
      } else if (scheme === 'magnet') {
        torrent = await fromMagnet(uri, timeoutMs, hops)
      } else if (scheme === 'http' || scheme === 'https') {
        const fetched = await fetchTorrentUrl(uri).catch((err: unknown) => {
          throw new ApiError('SERVER_ERROR', { cause: err }, errorMessage(err))
        })
        torrent =
          fetched.kind === 'magnet'
            ? await fromMagnet(fetched.magnet, timeoutMs, hops)
            : checked(fetched.torrent, 'invalid torrent file')
      } else {
        throw new ApiError('BAD_REQUEST', {}, 'invalid uri')
      }
      const metainfo = metainfoJson(torrent)
      const infohash = parseTorrent(torrent).infoHashHex
      remember(torrent)
      metainfo.download_exists = findDownloadManager(session)?.get(infohash) !== undefined
      return { metainfo }
    },
  )

  // the torrent store keeps every torrent the core learns of (`/torrents/{infohash}`)
  function remember(torrent: Buffer): void {
    const store = session.service(TORRENT_STORE_SERVICE)
    if (!(store instanceof TorrentService)) return
    try {
      store.remember(torrent)
    } catch (err) {
      log.debug('could not remember a torrent', { err: errorMessage(err) })
    }
  }

  async function fromFile(uri: string): Promise<Buffer> {
    let bytes: Buffer
    try {
      const path = filePathOfUri(uri)
      if (/\.mdblob$/i.test(path)) throw new ApiError('SERVER_ERROR', {}, MDBLOB_NOT_SUPPORTED)
      bytes = await readTorrentFile(path)
    } catch (err) {
      if (err instanceof ApiError) throw err
      if (err instanceof TorrentSourceError && err.code === 'INVALID_URI') {
        throw new ApiError('BAD_REQUEST', { cause: err }, err.message)
      }
      throw new ApiError('SERVER_ERROR', { cause: err }, errorMessage(err))
    }
    return checked(bytes, 'error while decoding torrent file')
  }

  async function fromMagnet(magnet: string, timeoutMs: number, hops: number | undefined): Promise<Buffer> {
    try {
      parseMagnet(magnet)
    } catch (err) {
      if (err instanceof MagnetError)
        throw new ApiError('BAD_REQUEST', { cause: err }, magnetErrorMessage(err))
      throw err
    }
    const manager = requireDownloadManager(session)
    let bytes: Uint8Array
    try {
      bytes = await manager.fetchMetadata(magnet, { timeoutMs, ...(hops !== undefined && { hops }) })
    } catch (err) {
      if (err instanceof EngineError && err.code === 'METADATA_TIMEOUT') {
        throw new ApiError('TIMEOUT', { cause: err }, 'timeout')
      }
      if (err instanceof EngineError && err.code === 'ANON_NOT_SUPPORTED') {
        throw new HandledError('ANON_NOT_SUPPORTED', err.message)
      }
      if (err instanceof EngineError && err.code === 'NOT_RUNNING') {
        throw new HandledError('RuntimeError', 'BitTorrent engine is not running')
      }
      throw new ApiError('SERVER_ERROR', { cause: err }, 'invalid response')
    }
    return checked(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'invalid torrent file')
  }

  app.post(
    '/createtorrent',
    {
      schema: {
        tags: ['torrentinfo'],
        summary: 'Make a .torrent of local files; with download=1 also seed it',
        description:
          'One file gives a single-file torrent; several give a multi-file torrent of their closest common ' +
          'folder (named after it unless `name` is given). `created by` is `Tribler version: <version>`, the ' +
          'piece length is chosen from the size. With `?download=1` the torrent is added as a download of the ' +
          'folder holding the files (an existing download of it is left as it is); seeding needs the torrent’s ' +
          'name to be the name of the file or folder.',
        querystring: {
          type: 'object',
          properties: { download: { type: 'string', description: '`1` starts seeding it' } },
        },
        body: {
          type: 'object',
          properties: {
            'files[]': { type: 'array', items: { type: 'string' }, description: 'absolute paths' },
            name: { type: 'string' },
            description: { type: 'string', description: 'stored as the comment' },
            'trackers[]': {
              type: 'array',
              items: { type: 'string' },
              description: 'first is `announce`, all make `announce-list`',
            },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { torrent: { type: 'string', description: 'base64 of the .torrent' } },
            required: ['torrent'],
          },
          400: { description: 'files parameter missing, or a path that is not absolute', ...PLAIN_ERROR },
          ...COMMON_ERRORS,
          500: {
            description: 'a file is missing or unreadable (structured, handled, code IOError)',
            ...STRUCTURED_ERROR,
          },
        },
      },
    },
    async (request) => {
      const body = request.body as FormParams
      const files = formArray(body, 'files').filter((file) => file !== '')
      if (files.length === 0) throw new ApiError('BAD_REQUEST', {}, 'files parameter missing')
      for (const file of files) {
        if (!isAbsolute(file)) throw new ApiError('BAD_REQUEST', {}, `not an absolute path: ${file}`)
        const info = await stat(file).catch(() => undefined)
        if (info === undefined) throw new HandledError('IOError', `Path does not exist: ${file}`)
        if (!info.isFile()) throw new HandledError('IOError', `Not a file: ${file}`)
      }
      const name = formString(body, 'name')
      const description = formString(body, 'description')
      const trackers = formArray(body, 'trackers').filter((t) => t !== '')
      const root = files.length === 1 ? resolve(files[0] ?? '') : commonFolder(files)
      let created: Awaited<ReturnType<typeof createTorrent>>
      try {
        created = await createTorrent(root, {
          ...(files.length > 1 ? { files } : {}),
          ...(name !== undefined && name !== '' ? { name } : {}),
          ...(description !== undefined && description !== '' ? { comment: description } : {}),
          trackers,
          createdBy: `Tribler version: ${session.version}`,
        })
      } catch (err) {
        if (err instanceof MetainfoError) throw new HandledError('IOError', errorMessage(err))
        throw err
      }
      remember(created.torrent)
      if (isFlag(formString(request.query as FormParams, 'download'))) {
        const manager = requireDownloadManager(session)
        try {
          await manager.add({
            source: { kind: 'torrent', torrent: created.torrent },
            destination: dirname(root),
            hops: 0,
            safeSeeding: false,
          })
        } catch (err) {
          throw new HandledError(
            err instanceof EngineError ? err.code : 'RuntimeError',
            `the torrent was made but could not be started: ${errorMessage(err)}`,
          )
        }
      }
      return { torrent: created.torrent.toString('base64') }
    },
  )
}

function checked(torrent: Buffer, message: string): Buffer {
  try {
    parseTorrent(torrent)
  } catch (err) {
    if (!(err instanceof MetainfoError)) throw err
    throw new ApiError('SERVER_ERROR', { cause: err }, `${message}: ${errorMessage(err)}`)
  }
  return torrent
}

/** `hops`: 0–3, or undefined when not given (the engine's default then). */
function hopsOf(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined
  if (!/^[0-3]$/.test(text)) throw new ApiError('BAD_REQUEST', {}, 'hops must be 0, 1, 2 or 3')
  return Number(text)
}

function timeoutOf(text: string | undefined): number {
  if (text === undefined || text === '') return TORRENTINFO_TIMEOUT_MS
  const seconds = Number(text)
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_TIMEOUT_S) {
    throw new ApiError('BAD_REQUEST', {}, `timeout must be a number of seconds from 0 to ${MAX_TIMEOUT_S}`)
  }
  return Math.round(seconds * 1000)
}

// The deepest folder holding every file: the root of a multi-file torrent.
function commonFolder(files: readonly string[]): string {
  const split = files.map((file) => dirname(resolve(file)).split(sep))
  const first = split[0] ?? []
  let length = first.length
  for (const parts of split) {
    let i = 0
    while (i < length && parts[i] === first[i]) i++
    length = i
  }
  const joined = first.slice(0, length).join(sep)
  return joined === '' ? sep : joined
}
