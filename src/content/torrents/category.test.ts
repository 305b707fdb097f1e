import { describe, expect, it } from 'vitest'
import { categorize } from './category.js'

const MIB = 1024 * 1024

describe('categorize', () => {
  it('calls a large video file Video and a small one VideoClips', () => {
    expect(categorize('Movie', [{ path: 'movie.mkv', size: 700 * MIB }])).toBe('Video')
    expect(categorize('Clip', [{ path: 'clip.mp4', size: 10 * MIB }])).toBe('VideoClips')
    expect(categorize('Clip', [{ path: 'clip.AVI', size: 10 * MIB }])).toBe('VideoClips')
  })

  it('counts bytes, not files: one big mp3 outweighs many small text files', () => {
    const files = [
      { path: 'album/track.mp3', size: 90 * MIB },
      ...Array.from({ length: 9 }, (_, i) => ({ path: `n${i}.txt`, size: MIB })),
    ]
    expect(categorize('Album', files)).toBe('Audio')
  })

  it('needs 80 % of the bytes for Audio, Document, Compressed and Picture', () => {
    expect(
      categorize('Mix', [
        { path: 'a.mp3', size: 70 * MIB },
        { path: 'b.dat', size: 30 * MIB },
      ]),
    ).toBe('other')
    expect(categorize('Docs', [{ path: 'a.pdf', size: 5 * MIB }])).toBe('Document')
    expect(categorize('Disk', [{ path: 'disk.iso', size: 4000 * MIB }])).toBe('Compressed')
    expect(
      categorize('Pics', [
        { path: 'a.jpg', size: MIB },
        { path: 'b.png', size: MIB },
      ]),
    ).toBe('Picture')
  })

  it('takes the keywords divx and xvid in the name as Video', () => {
    expect(categorize('Some.Film.XviD-GROUP', [{ path: 'film.bin', size: MIB }])).toBe('Video')
  })

  it('matches the extension, not any name ending in the same letters', () => {
    expect(categorize('Form', [{ path: 'form', size: 5 * MIB }])).toBe('other')
    expect(categorize('Empty', [])).toBe('other')
    expect(categorize('Zero', [{ path: 'a.mp3', size: 0 }])).toBe('other')
  })
})
