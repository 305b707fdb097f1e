/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** Bytes of a hex string; throws a RangeError on odd length or a non-hex character. */
export function fromHex(hex: string): Buffer {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new RangeError('invalid hex string')
  return Buffer.from(hex, 'hex')
}

/** Whether `text` is hex of exactly `bytes` bytes. */
export function isHexOfLength(text: string, bytes: number): boolean {
  return text.length === bytes * 2 && /^[0-9a-fA-F]*$/.test(text)
}

/** A Buffer view of any Uint8Array, without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
