import { describe, expect, it } from 'vitest'
import { magnetName, matchesFilter, statusView, torrentFiles, toTorrentUri } from './downloads.js'

describe('toTorrentUri', () => {
  it('passes magnets, web URLs and file URIs through', () => {
    expect(toTorrentUri(' magnet:?xt=urn:btih:abc ')).toBe('magnet:?xt=urn:btih:abc')
    expect(toTorrentUri('https://example.org/a.torrent')).toBe('https://example.org/a.torrent')
    expect(toTorrentUri('file:/tmp/a.torrent')).toBe('file:/tmp/a.torrent')
  })

  it('turns an absolute path into a percent-encoded file URI', () => {
    expect(toTorrentUri('/home/me/a b#1.torrent')).toBe('file:/home/me/a%20b%231.torrent')
    expect(toTorrentUri('C:\\Users\\me\\a.torrent')).toBe('file:C:/Users/me/a.torrent')
  })

  it('turns a bare infohash into a magnet', () => {
    expect(toTorrentUri('A'.repeat(40))).toBe(`magnet:?xt=urn:btih:${'a'.repeat(40)}`)
  })

  it('rejects anything else', () => {
    expect(toTorrentUri('')).toBeUndefined()
    expect(toTorrentUri('relative/path.torrent')).toBeUndefined()
    expect(toTorrentUri('ftp://x/y')).toBeUndefined()
  })
})

describe('torrentFiles', () => {
  it('lists a multi-file torrent by path inside the torrent', () => {
    const files = torrentFiles({
      name: 'album',
      files: [
        { path: ['cd1', 'a.flac'], length: 10 },
        { path: ['b.flac'], length: 20 },
      ],
    })
    expect(files).toEqual([
      { path: 'cd1/a.flac', size: 10 },
      { path: 'b.flac', size: 20 },
    ])
  })

  it('names the single file of a single-file torrent after the torrent', () => {
    expect(torrentFiles({ name: 'movie.mkv', length: 99 })).toEqual([{ path: 'movie.mkv', size: 99 }])
  })
})

describe('statusView', () => {
  it('calls a stopped complete download completed and an incomplete one paused', () => {
    expect(statusView({ status: 'DLSTATUS_STOPPED', progress: 1 }).label).toBe('Completed')
    expect(statusView({ status: 'DLSTATUS_STOPPED', progress: 0.5 }).label).toBe('Paused')
  })

  it('shows unknown states readably', () => {
    expect(statusView({ status: 'DLSTATUS_SOMETHING_NEW', progress: 0 }).label).toBe('something_new')
  })
})

describe('matchesFilter', () => {
  it('puts metadata and circuit waits under downloading', () => {
    expect(matchesFilter({ status: 'DLSTATUS_METADATA' }, 'downloading')).toBe(true)
    expect(matchesFilter({ status: 'DLSTATUS_SEEDING' }, 'downloading')).toBe(false)
    expect(matchesFilter({ status: 'DLSTATUS_STOPPED_ON_ERROR' }, 'error')).toBe(true)
  })
})

describe('magnetName', () => {
  it('prefers the display name and falls back to the infohash', () => {
    expect(magnetName('magnet:?xt=urn:btih:abcd&dn=My+File')).toBe('My File')
    expect(magnetName('magnet:?xt=urn:btih:abcd')).toBe('abcd')
    expect(magnetName('http://x')).toBeUndefined()
  })
})
