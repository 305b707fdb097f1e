import { DOWNLOAD_MANAGER_SERVICE, isDownloadManager } from '../../bittorrent/engine/index.js'
import {
  type KnownTorrent,
  TORRENT_STORE_SERVICE,
  TorrentService,
  TorrentsError,
} from '../../content/torrents/index.js'
import { ApiError } from '../errors.js'
import { COMMON_ERRORS, PLAIN_ERROR } from '../schemas.js'
import type { RouteModule } from '../types.js'

const DEFAULT_RANDOM_LIMIT = 10
const DEFAULT_HEALTH_TIMEOUT_SEC = 20
const MAX_HEALTH_TIMEOUT_SEC = 600

/** The torrent object of REST contract §5.1. */
const TORRENT_PROPERTIES = {
  id: { type: 'integer' },
  infohash: { type: 'string', description: '40 lowercase hex' },
  name: { type: 'string', description: '"Unnamed torrent" when the torrent has no name' },
  size: { type: 'integer', description: 'bytes' },
  category: {
    type: 'string',
    description: 'Video, VideoClips, Audio, Document, CD/DVD/BD, Compressed, Picture, xxx, other or unknown',
  },
  num_seeders: { type: 'integer' },
  num_leechers: { type: 'integer' },
  last_tracker_check: { type: 'integer', description: 'unix seconds of the last health check, 0 = never' },
} as const
const TORRENT = {
  type: 'object',
  properties: TORRENT_PROPERTIES,
  required: Object.keys(TORRENT_PROPERTIES),
} as const

const INFOHASH_PARAM = {
  type: 'object',
  properties: { infohash: { type: 'string', description: '40 hex characters' } },
  required: ['infohash'],
} as const

function torrentJson(torrent: KnownTorrent) {
  return {
    id: torrent.id,
    infohash: torrent.infohash,
    name: torrent.name === '' ? 'Unnamed torrent' : torrent.name,
    size: torrent.size,
    category: torrent.category,
    num_seeders: torrent.numSeeders,
    num_leechers: torrent.numLeechers,
    last_tracker_check: torrent.lastTrackerCheck,
  }
}

/** A positive integer query parameter, or `fallback` when absent. */
function positiveInt(value: unknown, fallback: number): number | undefined {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !/^\s*\+?\d+\s*$/.test(value)) return undefined
  const n = Number(value)
  return n > 0 ? n : undefined
}

/**
 * `/torrents` (REST contract §5.4–5.7): torrents the core knows, their trackers and their swarm health.
 */
export const torrentsRoutes: RouteModule = (app, { session }) => {
  const store = (): TorrentService => {
    const service = session.service(TORRENT_STORE_SERVICE)
    if (!(service instanceof TorrentService))
      throw new ApiError('NOT_FOUND', {}, 'the torrent store is not running')
    return service
  }
  // Valid hex of another length is simply not found, as in the reference; anything else cannot be an infohash.
  const checkHex = (infohash: string): void => {
    if (!/^[0-9a-fA-F]*$/.test(infohash) || infohash.length % 2 !== 0)
      throw new ApiError('BAD_REQUEST', {}, 'invalid infohash')
  }

  app.get(
    '/torrents/random',
    {
      schema: {
        tags: ['torrents'],
        summary: 'Random known torrents',
        description:
          'Torrents in random order, leaving out nameless ones, those being downloaded and, with the family ' +
          'filter on, the `xxx` category.',
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'string', description: `positive integer, default ${DEFAULT_RANDOM_LIMIT}` },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { torrents: { type: 'array', items: TORRENT } },
            required: ['torrents'],
          },
          400: { description: 'limit is not a positive number', ...PLAIN_ERROR },
          ...COMMON_ERRORS,
        },
      },
    },
    (request) => {
      const limit = positiveInt((request.query as { limit?: unknown }).limit, DEFAULT_RANDOM_LIMIT)
      if (limit === undefined)
        throw new ApiError('BAD_REQUEST', {}, 'the limit parameter must be a positive number')
      const manager = session.service(DOWNLOAD_MANAGER_SERVICE)
      const downloading = isDownloadManager(manager) ? manager : undefined
      const familyFilter = session.config.getBoolean('general', 'family_filter')
      const torrents = store().table.random(
        limit,
        (t) =>
          t.name === '' ||
          (familyFilter && t.category === 'xxx') ||
          downloading?.get(t.infohash) !== undefined,
      )
      return { torrents: torrents.map(torrentJson) }
    },
  )

  app.get(
    '/torrents/:infohash',
    {
      schema: {
        tags: ['torrents'],
        summary: 'A known torrent with its files and trackers',
        params: INFOHASH_PARAM,
        response: {
          200: {
            type: 'object',
            properties: {
              ...TORRENT_PROPERTIES,
              files: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    path: { type: 'string', description: 'path inside the torrent' },
                    size: { type: 'integer' },
                  },
                  required: ['path', 'size'],
                },
              },
              trackers: {
                type: 'array',
                items: { type: 'string' },
                description: 'announce URLs, and the pseudo-tracker `DHT` unless the torrent is private',
              },
            },
            required: [...Object.keys(TORRENT_PROPERTIES), 'files', 'trackers'],
          },
          400: { description: 'not an infohash', ...PLAIN_ERROR },
          404: { description: '"Unknown torrent"', ...PLAIN_ERROR },
          401: COMMON_ERRORS[401],
          500: COMMON_ERRORS[500],
        },
      },
    },
    (request) => {
      const { infohash } = request.params as { infohash: string }
      checkHex(infohash)
      const torrent = store().get(infohash)
      if (torrent === undefined) throw new ApiError('NOT_FOUND', {}, 'Unknown torrent')
      return {
        ...torrentJson(torrent),
        files: torrent.files.map((f) => ({ path: f.path, size: f.size })),
        trackers: [...torrent.trackers],
      }
    },
  )

  app.get(
    '/torrents/:infohash/trackers',
    {
      schema: {
        tags: ['torrents'],
        summary: 'The trackers of a known torrent',
        params: INFOHASH_PARAM,
        response: {
          200: {
            type: 'object',
            properties: { trackers: { type: 'array', items: { type: 'string' } } },
            required: ['trackers'],
          },
          400: { description: 'not an infohash', ...PLAIN_ERROR },
          404: { description: '"torrent not found in database"', ...PLAIN_ERROR },
          401: COMMON_ERRORS[401],
          500: COMMON_ERRORS[500],
        },
      },
    },
    (request) => {
      const { infohash } = request.params as { infohash: string }
      checkHex(infohash)
      const torrent = store().get(infohash)
      if (torrent === undefined) throw new ApiError('NOT_FOUND', {}, 'torrent not found in database')
      return { trackers: [...torrent.trackers] }
    },
  )

  app.get(
    '/torrents/:infohash/health',
    {
      schema: {
        tags: ['torrents'],
        summary: 'Seeders and leechers from every tracker of a known torrent',
        description:
          'Scrapes every HTTP and UDP tracker of the torrent at once. A torrent checked in the last 15 minutes ' +
          'answers with the single key `db` (the stored figures) unless `refresh=1`. A tracker that fails or does ' +
          'not answer in time gives `{"error": …}`. The `DHT` entry (not for private torrents) fetches the ' +
          'metadata through the DHT and counts the peers connected for it, those with every piece as seeders; ' +
          'it is `{"error": "DHT timeout"}` when nobody is found in time, `{"error": "DHT not available"}` ' +
          'when the engine or its DHT is off.',
        params: INFOHASH_PARAM,
        querystring: {
          type: 'object',
          properties: {
            timeout: {
              type: 'string',
              description: `seconds for all trackers together, default ${DEFAULT_HEALTH_TIMEOUT_SEC}`,
            },
            refresh: { type: 'string', description: '`1` scrapes even when checked recently' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              health: {
                type: 'object',
                description: 'tracker URL, `DHT` or `db` → {seeders, leechers, infohash} or {error}',
                additionalProperties: {
                  type: 'object',
                  properties: {
                    seeders: { type: 'integer' },
                    leechers: { type: 'integer' },
                    infohash: { type: 'string' },
                    error: { type: 'string' },
                  },
                },
              },
            },
            required: ['health'],
          },
          400: {
            description: 'bad timeout, not an infohash, no trackers, or torrent checking disabled',
            ...PLAIN_ERROR,
          },
          404: { description: '"torrent not found in database"', ...PLAIN_ERROR },
          401: COMMON_ERRORS[401],
          500: COMMON_ERRORS[500],
        },
      },
    },
    async (request, reply) => {
      const { infohash } = request.params as { infohash: string }
      const query = request.query as { timeout?: unknown; refresh?: unknown }
      checkHex(infohash)
      const timeoutSec = positiveInt(query.timeout, DEFAULT_HEALTH_TIMEOUT_SEC)
      if (timeoutSec === undefined || timeoutSec > MAX_HEALTH_TIMEOUT_SEC) {
        throw new ApiError(
          'BAD_REQUEST',
          {},
          `the timeout parameter must be a number of seconds from 1 to ${MAX_HEALTH_TIMEOUT_SEC}`,
        )
      }
      const gone = new AbortController()
      const onClose = (): void => {
        if (!reply.raw.writableFinished) gone.abort()
      }
      reply.raw.once('close', onClose)
      try {
        const health = await store().checkHealth(infohash, {
          timeoutMs: timeoutSec * 1000,
          refresh: query.refresh === '1',
          signal: gone.signal,
        })
        return { health }
      } catch (err) {
        if (err instanceof TorrentsError && err.code === 'UNKNOWN_TORRENT')
          throw new ApiError('NOT_FOUND', {}, 'torrent not found in database')
        if (err instanceof TorrentsError) throw new ApiError('BAD_REQUEST', {}, err.message)
        throw err
      } finally {
        reply.raw.off('close', onClose)
      }
    },
  )
}
