import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { encode } from '../bencode/index.js'
import {
  fetchTorrentUrl,
  filePathOfUri,
  metainfoJson,
  percentDecode,
  TorrentSourceError,
  unquotePlus,
} from './torrent-source.js'

const servers: Server[] = []
afterEach(() => {
  for (const server of servers.splice(0)) server.close()
})

async function serve(handler: RequestListener): Promise<string> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    return err instanceof TorrentSourceError ? err.code : `not a TorrentSourceError: ${String(err)}`
  }
  return undefined
}

describe('file: URIs', () => {
  it('decode as the GUI sends them, with or without an authority', () => {
    expect(filePathOfUri('file:/tmp/my%20album.torrent')).toBe('/tmp/my album.torrent')
    expect(filePathOfUri('file:///tmp/x%C3%A9.torrent')).toBe('/tmp/xé.torrent')
    expect(filePathOfUri('file://localhost/tmp/x.torrent')).toBe('/tmp/x.torrent')
    expect(filePathOfUri('file:/tmp/100%.torrent')).toBe('/tmp/100%.torrent')
  })

  it('refuse another host and relative paths', () => {
    expect(() => filePathOfUri('file://example.org/x.torrent')).toThrow(TorrentSourceError)
    expect(() => filePathOfUri('file:x.torrent')).toThrow(/absolute path/)
  })

  it('unquote like Python, keeping malformed escapes', () => {
    expect(percentDecode('a%2Fb%zz%41')).toBe('a/b%zzA')
    expect(unquotePlus('dn=Cosmos+Laundromat%2B')).toBe('dn=Cosmos Laundromat+')
  })
})

describe('fetchTorrentUrl', () => {
  it('gives up after the timeout on a server that never answers', async () => {
    const base = await serve(() => {})
    expect(await codeOf(fetchTorrentUrl(`${base}/slow`, { timeoutMs: 200 }))).toBe('HTTP_TIMEOUT')
  })

  it('refuses a body announced or sent beyond the size cap', async () => {
    const announced = await serve((_request, response) => {
      response.writeHead(200, { 'content-length': String(200 * 1024 * 1024) })
      response.flushHeaders()
    })
    expect(await codeOf(fetchTorrentUrl(`${announced}/big`))).toBe('TOO_LARGE')
  })

  it('follows redirects up to a limit and only to http(s) or a magnet', async () => {
    const base = await serve((request, response) => {
      if (request.url === '/loop') response.writeHead(302, { location: '/loop' }).end()
      else if (request.url === '/ftp') response.writeHead(301, { location: 'ftp://example/x' }).end()
      else if (request.url === '/hop') response.writeHead(307, { location: '/file' }).end()
      else response.end('d1:ai1ee')
    })
    expect(await codeOf(fetchTorrentUrl(`${base}/loop`))).toBe('HTTP_FAILED')
    expect(await codeOf(fetchTorrentUrl(`${base}/ftp`))).toBe('INVALID_URI')
    expect(await fetchTorrentUrl(`${base}/hop`)).toEqual({
      kind: 'torrent',
      torrent: Buffer.from('d1:ai1ee'),
    })
  })
})

describe('metainfoJson', () => {
  it('gives valid JSON for binary strings, big integers and hostile keys', () => {
    const torrent = encode({
      announce: 'http://t/a',
      ['__proto__']: 'kept as a key',
      comment: Buffer.from([0xff, 0xfe, 0x41]),
      big: 2n ** 62n,
      info: { name: 'naïve', pieces: Buffer.alloc(20, 0xab), 'piece length': 16384, length: 1 },
    } as never)
    const json = metainfoJson(torrent)
    expect(JSON.parse(JSON.stringify(json))).toEqual({
      announce: 'http://t/a',
      ['__proto__']: 'kept as a key',
      big: '4611686018427387904',
      comment: '\u00ff\u00feA',
      info: {
        length: 1,
        name: 'naïve',
        'piece length': 16384,
        pieces: Buffer.alloc(20, 0xab).toString('base64'),
      },
    })
    expect(Object.keys(json)).toContain('__proto__')
    expect(Object.getPrototypeOf(json)).toBeNull()
  })
})
