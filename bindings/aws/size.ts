import { Buffer } from 'node:buffer'
import { viewBytes } from '../common/input.js'

/** Bytes of a string (UTF-8) or of binary data; 0 for anything else. */
export function bytesOf(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value)
  if (ArrayBuffer.isView(value)) return viewBytes(value)
  return 0
}
