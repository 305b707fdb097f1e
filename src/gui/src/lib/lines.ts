/**
 * Splits a byte stream of newline-delimited JSON into parsed objects, keeping a partial last line until its end
 * arrives. Lines that are not JSON objects are handed to `onBadLine` and skipped.
 *
 * @example
 * const split = new JsonLineSplitter()
 * split.push('{"type":"a"}\n{"ty') // [{ type: 'a' }]
 * split.push('pe":"b"}\n')         // [{ type: 'b' }]
 */
export class JsonLineSplitter {
  #buffer = ''
  readonly #onBadLine: (line: string) => void

  constructor(onBadLine: (line: string) => void = () => {}) {
    this.#onBadLine = onBadLine
  }

  /** Adds a decoded chunk; returns the complete objects it finished. */
  push(chunk: string): Record<string, unknown>[] {
    this.#buffer += chunk
    const out: Record<string, unknown>[] = []
    let newline = this.#buffer.indexOf('\n')
    while (newline !== -1) {
      const line = this.#buffer.slice(0, newline).trim()
      this.#buffer = this.#buffer.slice(newline + 1)
      if (line !== '') {
        const parsed = parseObject(line)
        if (parsed) out.push(parsed)
        else this.#onBadLine(line)
      }
      newline = this.#buffer.indexOf('\n')
    }
    return out
  }
}

function parseObject(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line)
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}
