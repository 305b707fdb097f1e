// Decoding and encoding speed against the npm `bencode` package, on synthetic torrents of 40,000 pieces with
// 3 files and with 60,000 files (about 5 MB). Prints milliseconds per operation for both and the ratio (theirs / ours).
import { performance } from 'node:perf_hooks'
// @ts-expect-error the npm package ships no type declarations
import reference from 'bencode'
import { decode, encode } from '../src/bencode/index.js'

const PIECES = 40_000
const FILES = 60_000

function syntheticTorrent(fileCount: number): Buffer {
  const files = Array.from({ length: fileCount }, (_, i) => ({
    length: 1000 + i,
    path: ['folder', `sub-${i % 97}`, `file-number-${i}.bin`],
  }))
  const pieces = Buffer.alloc(PIECES * 20)
  for (let i = 0; i < pieces.length; i++) pieces[i] = (i * 31) & 0xff
  return encode({
    announce: 'http://tracker.example/announce',
    'creation date': 1_700_000_000,
    info: { files, name: 'big', 'piece length': 262_144, pieces },
  })
}

function timeMs(fn: () => unknown, minMs = 1500): number {
  for (let i = 0; i < 3; i++) fn()
  let runs = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < minMs && runs < 1000) {
    fn()
    runs++
    elapsed = performance.now() - start
  }
  return elapsed / runs
}

const torrent = syntheticTorrent(FILES)
const ours = decode(torrent)
const theirs = reference.decode(torrent)
const fewFiles = syntheticTorrent(3)

const rows = [
  ['decode (3 files)', timeMs(() => decode(fewFiles)), timeMs(() => reference.decode(fewFiles))],
  ['decode', timeMs(() => decode(torrent)), timeMs(() => reference.decode(torrent))],
  ['encode', timeMs(() => encode(ours as never)), timeMs(() => reference.encode(theirs))],
] as const

console.log(
  `bencode: synthetic torrents of ${PIECES} pieces; the large one is ${(torrent.length / 1e6).toFixed(1)} MB`,
)
for (const [name, us, them] of rows) {
  console.log(
    `${name.padEnd(17)} tribler-ts ${us.toFixed(2)} ms   npm bencode ${them.toFixed(2)} ms   ratio ${(them / us).toFixed(2)}x`,
  )
}
