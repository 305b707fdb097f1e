import type { Category } from './types.js'

const MIB = 1024 * 1024

interface Rule {
  readonly name: Category
  /** Lowercase extensions without the dot. */
  readonly extensions: ReadonlySet<string>
  /** Words of a name that point at this category, with their weight 0..1. */
  readonly keywords: Readonly<Record<string, number>>
  /** Files outside [minMiB, maxMiB] do not count (maxMiB 0 = no upper bound). */
  readonly minMiB: number
  readonly maxMiB: number
  /** Share of the torrent's bytes that must match. */
  readonly matchShare: number
}

const VIDEO = 'asf asp avi flc fli flic mkv mov movie mpeg mpg qicktime ram rm rmvb rpm vob wma wmv'

// Tribler's category.conf at the reference revision, in rank order (the first of equally strong matches wins).
// Matching is on the file extension: the reference's bare suffix test also matched `form` as `rm`.
const RULES: readonly Rule[] = [
  rule('Video', VIDEO, {
    minMiB: 50,
    maxMiB: 10_000_000,
    matchShare: 0.5,
    keywords: { divx: 1, xvid: 1, rmvb: 1 },
  }),
  rule('VideoClips', `${VIDEO} mp4 flv`, { maxMiB: 50, matchShare: 0.5 }),
  rule('Audio', 'cda flac m3u mp2 mp3 vorbis wav wma ogg ape', { matchShare: 0.8 }),
  rule('Compressed', 'ace bin bwt cab ccd cdi cue gzip iso jar mdf mds nrg rar tar vcd z zip', {
    matchShare: 0.8,
  }),
  rule('Document', 'doc pdf ppt ps tex txt vsd', { matchShare: 0.8 }),
  rule('Picture', 'bmp dib dwg gif ico jpeg jpg pic png swf tif tiff', { matchShare: 0.8 }),
]

function rule(
  name: Category,
  extensions: string,
  opts: { minMiB?: number; maxMiB?: number; matchShare: number; keywords?: Record<string, number> },
): Rule {
  return {
    name,
    extensions: new Set(extensions.split(' ')),
    keywords: opts.keywords ?? {},
    minMiB: opts.minMiB ?? 0,
    maxMiB: opts.maxMiB ?? 0,
    matchShare: opts.matchShare,
  }
}

function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]+/g) ?? []
}

/** How strongly the words point at a rule: 1 − ∏(1 − weight) over the keywords present. */
function keywordScore(rule: Rule, text: string): number {
  let factor = 1
  const present = new Set(words(text))
  for (const [word, weight] of Object.entries(rule.keywords)) if (present.has(word)) factor *= 1 - weight
  return 1 - factor
}

function extensionOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1).toLowerCase()
  const dot = base.lastIndexOf('.')
  return dot <= 0 ? '' : base.slice(dot + 1)
}

/** The strength with which the torrent belongs to `rule`, or 0. */
function judge(rule: Rule, name: string, files: readonly { path: string; size: number }[]): number {
  const nameScore = keywordScore(rule, name)
  if (nameScore > 0.5) return nameScore
  let matched = 0
  let total = 0
  for (const file of files) {
    const mib = file.size / MIB
    total += mib
    if (mib < rule.minMiB || (rule.maxMiB > 0 && mib > rule.maxMiB)) continue
    if (rule.extensions.has(extensionOf(file.path)) || keywordScore(rule, file.path) > 0.5) matched += mib
  }
  if (total <= 0) return 0
  const share = matched / total
  return share >= rule.matchShare ? share : 0
}

/**
 * The category of a torrent from its name and files, as Tribler's `Category` module decides it: the category whose
 * extensions cover enough of the bytes (or whose keywords are in the name) most strongly, else `other`. Adult
 * content (`xxx`) is not detected: Tribler's term list is not part of Tribler.ts.
 *
 * @example
 * ```ts
 * categorize('Big Buck Bunny', [{ path: 'bbb.mkv', size: 700 * 2 ** 20 }]) // 'Video'
 * ```
 */
export function categorize(name: string, files: readonly { path: string; size: number }[]): Category {
  let best: Category = 'other'
  let strongest = 0
  for (const rule of RULES) {
    const strength = judge(rule, name, files)
    if (strength > strongest) {
      best = rule.name
      strongest = strength
    }
  }
  return best
}
