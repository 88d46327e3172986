/**
 * About the bytes a BullMQ job's data takes as the JSON BullMQ stores in Redis: the payload size
 * pathwise records. Counted by a walk with a budget rather than by JSON.stringify, since the data
 * is the application's: stringifying it once more would run its toJSON a second time, allocate a
 * copy of a large job, and walk a length bomb to its end before BullMQ even sees it.
 */
import { Buffer } from 'node:buffer'

/** Most values walked: past it the size counts what was walked (a job of more is large anyway). */
const BUDGET = 10_000

/** What JSON.stringify refuses (a bigint, a cycle, a getter or Proxy that throws): BullMQ will not add such a job. */
export const NOT_JSON = -1

/** `null`, `true`. */
const FOUR_BYTES = 4

class NotJson extends Error {}

interface Walk {
  left: number
  /** The objects the walk is inside of: meeting one again is a cycle. */
  ancestors: object[]
}

/**
 * The bytes of `data` as JSON, about: exact for plain data without escapes; `{}` for undefined,
 * as BullMQ stores it; NOT_JSON for what JSON.stringify would throw on. Never throws.
 */
export function jsonSize(data: unknown): number {
  const walk: Walk = { left: BUDGET, ancestors: [] }
  try {
    return data === undefined ? 2 : (sizeOf(data, walk) ?? 0)
  } catch {
    return NOT_JSON
  }
}

/** The JSON bytes of a value, or undefined where JSON leaves it out (undefined, functions, symbols). */
function sizeOf(value: unknown, walk: Walk): number | undefined {
  if (walk.left-- <= 0) return 0
  switch (typeof value) {
    case 'string':
      return Buffer.byteLength(value) + 2
    case 'number':
      return Number.isFinite(value) ? String(value).length : FOUR_BYTES
    case 'boolean':
      return value ? 4 : 5
    case 'bigint':
      throw new NotJson()
    case 'object':
      if (value === null) return FOUR_BYTES
      if (ArrayBuffer.isView(value)) return value.byteLength
      if (value instanceof Date) return 26
      if (walk.ancestors.includes(value)) throw new NotJson()
      walk.ancestors.push(value)
      try {
        return Array.isArray(value) ? arraySize(value, walk) : objectSize(value, walk)
      } finally {
        walk.ancestors.pop()
      }
    default:
      // undefined, functions and symbols are left out.
      return undefined
  }
}

function arraySize(array: readonly unknown[], walk: Walk): number {
  let bytes = 2
  for (let i = 0; i < array.length && walk.left > 0; i++) bytes += (i === 0 ? 0 : 1) + (sizeOf(array[i], walk) ?? FOUR_BYTES)
  return bytes
}

function objectSize(object: object, walk: Walk): number {
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
