import { describe, expect, it } from 'vitest'
import { decode, encode } from '../bencode/index.js'
import type { MetainfoErrorCode } from './index.js'
import { MetainfoError, parseInfoDictionary, parseTorrent } from './index.js'
import { codeOf, sha1Hex, torrentBytes } from './test-support.js'

const latin1 = (text: string) => Buffer.from(text, 'latin1')

describe('parseTorrent', () => {
  it('parses a single-file torrent', () => {
    const torrent = parseTorrent(
      torrentBytes({ length: 40000, private: 1 }, { comment: 'hi', 'creation date': 5 }),
    )
    expect(torrent.name).toBe('file.bin')
    expect(torrent.pieceLength).toBe(16384)
    expect(torrent.pieceCount).toBe(3)
    expect(torrent.pieces).toHaveLength(3)
    expect(torrent.pieces[2]).toHaveLength(20)
    expect(torrent.totalLength).toBe(40000)
    expect(torrent.private).toBe(true)
    expect(torrent.comment).toBe('hi')
    expect(torrent.creationDate).toBe(5)
    expect(torrent.hybrid).toBe(false)
    expect(torrent.files).toEqual([
      {
        index: 0,
        path: 'file.bin',
        pathComponents: ['file.bin'],
        displayPath: 'file.bin',
        length: 40000,
        offset: 0,
        padding: false,
        attributes: '',
      },
    ])
  })

  it('computes the infohash over the raw info bytes, even when their keys are unsorted', () => {
    const info = 'd6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae'
    const unsorted = 'd4:name1:x6:lengthi5e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae'
    for (const text of [info, unsorted]) {
      const torrent = parseTorrent(latin1(`d4:info${text}e`))
      expect(torrent.infoHashHex).toBe(sha1Hex(latin1(text)))
      expect(Buffer.from(torrent.infoHash).toString('hex')).toBe(torrent.infoHashHex)
      expect(Buffer.from(torrent.infoBytes).toString('latin1')).toBe(text)
    }
    const reencoded = sha1Hex(encode(decode(latin1(unsorted), { strict: false }) as never))
    expect(parseTorrent(latin1(`d4:info${unsorted}e`)).infoHashHex).not.toBe(reencoded)
  })

  it('lays out multi-file torrents under the name, padding files kept with their offsets', () => {
    const torrent = parseTorrent(
      torrentBytes({
        name: 'album',
        files: [
          { length: 10000, path: ['cd1', 'a.flac'] },
          { length: 6384, path: ['.pad', '6384'], attr: 'p' },
          { length: 20000, path: ['b.flac'], attr: 'x' },
        ],
      }),
    )
    expect(torrent.files.map((f) => [f.path, f.offset, f.length, f.padding, f.attributes])).toEqual([
      ['album/cd1/a.flac', 0, 10000, false, ''],
      ['album/.pad/6384', 10000, 6384, true, 'p'],
      ['album/b.flac', 16384, 20000, false, 'x'],
    ])
    expect(torrent.files[0]!.pathComponents).toEqual(['album', 'cd1', 'a.flac'])
    expect(torrent.totalLength).toBe(36384)
    expect(torrent.pieceCount).toBe(3)
  })

  it('prefers name.utf-8 and path.utf-8 when they are valid UTF-8', () => {
    const torrent = parseTorrent(
      torrentBytes({
        name: latin1('caf\xe9'),
        'name.utf-8': 'café',
        files: [
          { length: 1, path: [latin1('\xe9t\xe9')], 'path.utf-8': ['été'] },
          { length: 1, path: ['plain'], 'path.utf-8': [Buffer.from([0xff, 0xfe])] },
        ],
      }),
    )
    expect(torrent.name).toBe('café')
    expect(torrent.files.map((f) => f.path)).toEqual(['café/été', 'café/plain'])
  })

  it('shows invalid UTF-8 with replacement characters rather than failing', () => {
    const torrent = parseTorrent(torrentBytes({ name: Buffer.from([0x61, 0xff, 0x62]) }))
    expect(torrent.name).toBe('a\ufffdb')
  })

  it('reads announce-list tiers (BEP 12), dropping duplicates, bad URLs and empty tiers', () => {
    const torrent = parseTorrent(
      torrentBytes(
        {},
        {
          announce: 'http://ignored.example/announce',
          'announce-list': [
            ['udp://a.example:6969', 'http://b.example/announce', 'udp://a.example:6969'],
            ['not a url', 'file:///etc/passwd'],
            [' https://c.example/announce '],
            'not-a-list',
          ],
        },
      ),
    )
    expect(torrent.trackers).toEqual([
      ['udp://a.example:6969', 'http://b.example/announce'],
      ['https://c.example/announce'],
    ])
  })

  it('falls back to announce when announce-list is missing or empty', () => {
    expect(parseTorrent(torrentBytes({}, { 'announce-list': [[]] })).trackers).toEqual([
      ['http://tracker.example/announce'],
    ])
    expect(parseTorrent(torrentBytes({}, { announce: undefined })).trackers).toEqual([])
  })

  it('reads url-list web seeds as a string or a list (BEP 19)', () => {
    expect(parseTorrent(torrentBytes({}, { 'url-list': 'http://seed.example/f' })).webSeeds).toEqual([
      'http://seed.example/f',
    ])
    expect(
      parseTorrent(
        torrentBytes({}, { 'url-list': ['http://a.example/', 'ftp://b.example/', 'http://a.example/'] }),
      ).webSeeds,
    ).toEqual(['http://a.example/'])
  })

  it('reads the v1 side of a hybrid torrent and rejects a pure v2 torrent', () => {
    const hybrid = parseTorrent(torrentBytes({ 'meta version': 2, 'file tree': {} }))
    expect(hybrid.hybrid).toBe(true)
    const v2 = encode({ info: { 'meta version': 2, 'file tree': {}, name: 'x', 'piece length': 16384 } })
    expect(codeOf(() => parseTorrent(v2), MetainfoError)).toBe('V2_NOT_SUPPORTED')
  })

  it.each<[string, () => Uint8Array, MetainfoErrorCode]>([
    ['garbage', () => latin1('not bencode'), 'INVALID_BENCODE'],
    ['a list', () => encode([1]), 'NOT_A_DICTIONARY'],
    ['no info', () => encode({ announce: 'x' }), 'MISSING_INFO'],
    ['info not a dict', () => encode({ info: 5 }), 'INVALID_INFO'],
    ['no name', () => torrentBytes({ name: undefined }), 'MISSING_NAME'],
    [
      'zero piece length',
      () => torrentBytes({ 'piece length': 0, pieces: Buffer.alloc(20) }),
      'INVALID_PIECE_LENGTH',
    ],
    ['huge piece length', () => torrentBytes({ 'piece length': 2 ** 40 }), 'INVALID_PIECE_LENGTH'],
    ['pieces not a multiple of 20', () => torrentBytes({ pieces: Buffer.alloc(59) }), 'INVALID_PIECES'],
    ['missing pieces', () => torrentBytes({ pieces: undefined }), 'INVALID_PIECES'],
    ['too few pieces', () => torrentBytes({ pieces: Buffer.alloc(40) }), 'PIECE_COUNT_MISMATCH'],
    ['too many pieces', () => torrentBytes({ pieces: Buffer.alloc(80) }), 'PIECE_COUNT_MISMATCH'],
    ['negative length', () => torrentBytes({ length: -1, pieces: Buffer.alloc(0) }), 'INVALID_FILE_LENGTH'],
    ['no length nor files', () => torrentBytes({ length: undefined }), 'INVALID_FILE_LENGTH'],
    ['zero length', () => torrentBytes({ length: 0, pieces: Buffer.alloc(0) }), 'EMPTY_TORRENT'],
    ['files not a list', () => torrentBytes({ files: 5 as never, length: undefined }), 'MISSING_FILES'],
    ['empty files', () => torrentBytes({ files: [] }), 'MISSING_FILES'],
    ['file not a dict', () => torrentBytes({ files: [5] as never }), 'INVALID_FILE'],
    ['file without path', () => torrentBytes({ files: [{ length: 5 }] }), 'INVALID_PATH'],
    ['file with empty path', () => torrentBytes({ files: [{ length: 5, path: [] }] }), 'INVALID_PATH'],
    ['path component not bytes', () => torrentBytes({ files: [{ length: 5, path: [1] }] }), 'INVALID_PATH'],
    [
      'both length and files',
      () => torrentBytes({ files: [{ length: 5, path: ['a'] }], length: 5 }),
      'INVALID_INFO',
    ],
    [
      'total beyond 2^53',
      () => torrentBytes({ length: 2n ** 62n, pieces: Buffer.alloc(20) }),
      'INVALID_FILE_LENGTH',
    ],
  ])('rejects %s', (_, make, code) => {
    expect(codeOf(() => parseTorrent(make()), MetainfoError)).toBe(code)
  })

  it('rejects a file larger than the size limit', () => {
    expect(codeOf(() => parseTorrent(torrentBytes(), { maxBytes: 100 }), MetainfoError)).toBe('TOO_LARGE')
  })
})

describe('safe file paths', () => {
  const hostile: [string, (string | Buffer)[], string][] = [
    ['parent references', ['..', '..', 'etc', 'passwd'], 'root/etc/passwd'],
    ['current-folder and empty components', ['.', '', 'a', '.', 'b'], 'root/a/b'],
    ['separators inside a component', ['a/../../b\\c'], 'root/a_.._.._b_c'],
    ['an absolute path', ['/etc/passwd'], 'root/_etc_passwd'],
    ['a Windows drive', ['C:\\Windows\\system32'], 'root/C__Windows_system32'],
    ['NUL and control characters', ['a\x00b\x1fc\x7f'], 'root/a_b_c_'],
    [
      'reserved Windows names',
      ['CON', 'nul.txt', 'Com1', 'lpt9.log', 'console'],
      'root/_CON/_nul.txt/_Com1/_lpt9.log/console',
    ],
    ['trailing dots and spaces', ['dir. ', 'file.txt...'], 'root/dir/file.txt'],
    ['only dots', ['...', 'x'], 'root/x'],
    ['nothing left', ['..'], 'root/_'],
  ]
  it.each(hostile)('neutralises %s', (_, path, expected) => {
    const torrent = parseTorrent(torrentBytes({ name: 'root', files: [{ length: 10, path }] }))
    const file = torrent.files[0]!
    expect(file.path).toBe(expected)
    expect(file.displayPath).toBe(['root', ...path.map(String)].join('/'))
    for (const component of file.pathComponents) {
      expect(component).not.toMatch(/^\.{1,2}$|[/\\\x00-\x1f]|^$/)
    }
  })

  it('sanitises a hostile torrent name', () => {
    expect(parseTorrent(torrentBytes({ name: '../../evil' })).name).toBe('.._.._evil')
    const torrent = parseTorrent(torrentBytes({ name: '..' }))
    expect(torrent.name).toBe(torrent.infoHashHex)
  })

  it('cuts overly long components to 255 UTF-8 bytes, keeping the extension', () => {
    const long = `${'é'.repeat(300)}.mkv`
    const torrent = parseTorrent(torrentBytes({ name: 'root', files: [{ length: 1, path: [long] }] }))
    const name = torrent.files[0]!.pathComponents[1]!
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255)
    expect(name.endsWith('.mkv')).toBe(true)
  })

  it('gives colliding files distinct paths, ignoring case', () => {
    const torrent = parseTorrent(
      torrentBytes({
        name: 'root',
        files: [
          { length: 1, path: ['a.txt'] },
          { length: 1, path: ['A.TXT'] },
          { length: 1, path: ['..', 'a.txt'] },
          { length: 1, path: ['dir'] },
          { length: 1, path: ['dir', 'x'] },
        ],
      }),
    )
    expect(torrent.files.map((f) => f.path)).toEqual([
      'root/a.txt',
      'root/A (1).TXT',
      'root/a (2).txt',
      'root/dir',
      'root/dir (1)/x',
    ])
  })
})

describe('parseInfoDictionary', () => {
  const bytes = torrentBytes()
  const info = parseTorrent(bytes).infoBytes

  it('parses a bare info dictionary with trackers and web seeds from elsewhere', () => {
    const torrent = parseInfoDictionary(info, {
      trackers: [['udp://t.example:1'], ['bad url']],
      webSeeds: ['http://w.example/'],
      expectedInfoHash: Buffer.from(sha1Hex(info), 'hex'),
    })
    expect(torrent.infoHashHex).toBe(sha1Hex(info))
    expect(torrent.trackers).toEqual([['udp://t.example:1']])
    expect(torrent.webSeeds).toEqual(['http://w.example/'])
  })

  it('rejects metadata whose hash is not the expected infohash', () => {
    expect(
      codeOf(() => parseInfoDictionary(info, { expectedInfoHash: Buffer.alloc(20) }), MetainfoError),
    ).toBe('INFO_HASH_MISMATCH')
  })
})
