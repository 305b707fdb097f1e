/** A decoded form body or query string: `x[]` keys give arrays (key kept with `[]`), others their first value. */
export type FormParams = Record<string, string | string[]>

/**
 * Decodes an `application/x-www-form-urlencoded` string the way the REST contract reads every request body:
 * PHP-style `files[]=a&files[]=b` gives `{ 'files[]': ['a', 'b'] }`; a repeated plain key keeps its first value.
 */
export function parseForm(text: string): FormParams {
  const out: FormParams = Object.create(null)
  for (const [key, value] of new URLSearchParams(text)) {
    if (key.endsWith('[]')) {
      const list = out[key]
      if (Array.isArray(list)) list.push(value)
      else out[key] = [value]
    } else if (!(key in out)) {
      out[key] = value
    }
  }
  return out
}

/** A flag parameter: true only for the exact string `1` (REST contract §1). */
export function isFlag(value: unknown): boolean {
  return value === '1'
}

/** A PHP-style array parameter (`name[]`); a single plain value counts as a one-item array. */
export function formArray(params: FormParams, name: string): string[] {
  const value = params[`${name}[]`] ?? params[name]
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/** A single string parameter (the first when repeated). */
export function formString(params: FormParams, name: string): string | undefined {
  const value = params[name]
  return Array.isArray(value) ? value[0] : value
}
