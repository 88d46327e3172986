import { Buffer } from 'node:buffer'

/** Bytes of a string (UTF-8) or of binary data; 0 for anything else. */
export function bytesOf(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value)
  if (value instanceof Uint8Array) return value.byteLength
  return 0
}
