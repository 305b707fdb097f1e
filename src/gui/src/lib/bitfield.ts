/**
 * Decodes the `pieces` field of GET /downloads (`get_pieces=1`): base64 of a bitfield, one bit per piece, most
 * significant bit first. Returns one boolean per piece; bits past the end of the data count as missing.
 *
 * @example decodeBitfield('wA==', 3) // [true, true, false]
 */
export function decodeBitfield(base64: string, pieceCount: number): boolean[] {
  let bytes: Uint8Array
  try {
    const raw = atob(base64)
    bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0))
  } catch {
    bytes = new Uint8Array(0)
  }
  const count = Math.max(0, Math.floor(pieceCount))
  const have: boolean[] = new Array(count)
  for (let i = 0; i < count; i++) {
    const byte = bytes[i >> 3] ?? 0
    have[i] = (byte & (0x80 >> (i & 7))) !== 0
  }
  return have
}

/**
 * Folds piece flags into `buckets` fractions (0..1 of pieces present) so a piece bar of any width can be drawn.
 */
export function pieceBuckets(have: readonly boolean[], buckets: number): number[] {
  const n = Math.max(1, Math.floor(buckets))
  if (have.length === 0) return new Array(n).fill(0)
  const out: number[] = []
  for (let b = 0; b < n; b++) {
    const start = Math.floor((b * have.length) / n)
    const end = Math.max(start + 1, Math.floor(((b + 1) * have.length) / n))
    let got = 0
    for (let i = start; i < end; i++) if (have[i]) got++
    out.push(got / (end - start))
  }
  return out
}
