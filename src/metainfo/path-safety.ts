/** Longest file name component most file systems accept, in UTF-8 bytes. */
export const MAX_COMPONENT_BYTES = 255

const REPLACEMENT = '_'
// Control characters, path separators, and the characters Windows refuses in file names.
const UNSAFE_CHARACTERS = /[\x00-\x1f\x7f/\\<>:"|?*]/g
// Windows resolves these as devices whatever the extension (`nul.txt` too).
const RESERVED_NAME = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\.|$)/i
const TRAILING_DOTS_AND_SPACES = /[. ]+$/
const MAX_EXTENSION_CHARS = 16

const utf8Lossy = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Text of bytes from a torrent, invalid UTF-8 replaced by U+FFFD. */
export function textOf(bytes: Uint8Array): string {
  return utf8Lossy.decode(bytes)
}

/** Text of bytes that must be valid UTF-8, or `undefined`. */
export function strictTextOf(bytes: Uint8Array): string | undefined {
  try {
    return utf8Strict.decode(bytes)
  } catch {
    return undefined
  }
}

/**
 * A single file name component that is safe on Linux, macOS and Windows, or `undefined` when nothing is left
 * (`..`, `.`, empty, only dots and spaces): such components are dropped from paths. Unsafe characters become `_`,
 * reserved device names get a `_` prefix, and long names are cut to 255 UTF-8 bytes keeping a short extension.
 *
 * @example
 * ```ts
 * sanitizeComponent('..') // undefined
 * sanitizeComponent('a/b') // 'a_b'
 * sanitizeComponent('CON.txt') // '_CON.txt'
 * ```
 */
export function sanitizeComponent(component: string): string | undefined {
  let name = component.replace(UNSAFE_CHARACTERS, REPLACEMENT)
  // Windows drops trailing dots and spaces, so "a." and "a" would be the same file, and ". ." would be "".
  name = name.replace(TRAILING_DOTS_AND_SPACES, '')
  if (name === '' || /^\.+$/.test(name)) return undefined
  if (RESERVED_NAME.test(name)) name = REPLACEMENT + name
  return truncateComponent(name)
}

/** `name` with `insert` before its extension, cut to fit in 255 UTF-8 bytes while keeping both. */
function truncateComponent(name: string, insert = ''): string {
  const dot = name.lastIndexOf('.')
  const extension = dot > 0 && name.length - dot <= MAX_EXTENSION_CHARS ? name.slice(dot) : ''
  const whole = name.slice(0, name.length - extension.length)
  const budget = MAX_COMPONENT_BYTES - Buffer.byteLength(extension + insert, 'utf8')
  if (Buffer.byteLength(whole, 'utf8') <= budget) return whole + insert + extension
  let stem = ''
  let bytes = 0
  // Cut on a code point boundary, never inside a surrogate pair or a multi-byte sequence.
  for (const char of whole) {
    const size = Buffer.byteLength(char, 'utf8')
    if (bytes + size > budget) break
    stem += char
    bytes += size
  }
  return (stem.replace(TRAILING_DOTS_AND_SPACES, '') || REPLACEMENT) + insert + extension
}

/**
 * Gives each file a unique safe path. Paths are compared without case (case-insensitive file systems), and a
 * file may not take a path that is also a folder of another file. A clash is resolved by adding ` (n)` before the
 * extension of the last component.
 */
export class PathAllocator {
  readonly #files = new Set<string>()
  readonly #folders = new Set<string>()

  /** Reserves a unique path for these safe components (non-empty) and returns the final components. */
  allocate(components: readonly string[]): string[] {
    const folders = components.slice(0, -1)
    const last = components[components.length - 1]!
    // A folder that is already a file: rename the folder component for this file.
    const safeFolders: string[] = []
    for (const folder of folders) {
      let candidate = folder
      for (let n = 1; this.#files.has(key([...safeFolders, candidate])); n++)
        candidate = withSuffix(folder, n)
      safeFolders.push(candidate)
    }
    let name = last
    for (let n = 1; this.#taken([...safeFolders, name]); n++) name = withSuffix(last, n)
    const result = [...safeFolders, name]
    this.#files.add(key(result))
    for (let i = 1; i < result.length; i++) this.#folders.add(key(result.slice(0, i)))
    return result
  }

  #taken(components: readonly string[]): boolean {
    const k = key(components)
    return this.#files.has(k) || this.#folders.has(k)
  }
}

function key(components: readonly string[]): string {
  return components.join('/').toLowerCase()
}

function withSuffix(name: string, n: number): string {
  return truncateComponent(name, ` (${n})`)
}
