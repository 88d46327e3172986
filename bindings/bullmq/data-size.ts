/**
 * About the bytes a BullMQ job's data takes as the JSON BullMQ stores in Redis: the payload size
 * pathwise records. Counted by a walk with a budget rather than by JSON.stringify, since the data
 * is the application's: stringifying it once more would run its toJSON a second time, allocate a
 * copy of a large job, and walk a length bomb to its end before BullMQ even sees it.
 */
import { Buffer } from 'node:buffer'

/** Most values walked: past it the size counts what was walked (a job of more is large anyway). */
const BUDGET = 10_000

/** `null`, `true`, `false`. */
const NULL_BYTES = 4

/** The bytes of `data` as JSON, about: exact for plain data without escapes; 0 for what JSON cannot hold. Never throws. */
export function jsonSize(data: unknown): number {
  const walk = { left: BUDGET }
  try {
    return sizeOf(data, walk) ?? 0
  } catch {
    return 0
  }
}

/** The JSON bytes of a value, or undefined where JSON leaves it out (undefined, functions, symbols). */
function sizeOf(value: unknown, walk: { left: number }): number | undefined {
  if (walk.left-- <= 0) return 0
  switch (typeof value) {
    case 'string':
      return Buffer.byteLength(value) + 2
    case 'number':
      return Number.isFinite(value) ? String(value).length : NULL_BYTES
    case 'boolean':
      return value ? 4 : 5
    case 'object':
      if (value === null) return NULL_BYTES
      if (ArrayBuffer.isView(value)) return value.byteLength
      if (value instanceof Date) return 26
      return Array.isArray(value) ? arraySize(value, walk) : objectSize(value, walk)
    default:
      // undefined, functions and symbols are left out; a bigint makes BullMQ's JSON.stringify throw.
      return undefined
  }
}

function arraySize(array: readonly unknown[], walk: { left: number }): number {
  let bytes = 2
  for (let i = 0; i < array.length && walk.left > 0; i++) bytes += (i === 0 ? 0 : 1) + (sizeOf(array[i], walk) ?? NULL_BYTES)
  return bytes
}

function objectSize(object: object, walk: { left: number }): number {
  let bytes = 2
  let first = true
  for (const key of Object.keys(object)) {
    if (walk.left <= 0) break
    const size = sizeOf((object as Record<string, unknown>)[key], walk)
    if (size === undefined) continue
    bytes += (first ? 0 : 1) + Buffer.byteLength(key) + 3 + size
    first = false
  }
  return bytes
}
