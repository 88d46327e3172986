/**
 * The validation layer at the boundary of the public API: whatever a caller hands over (a Proxy,
 * a throwing getter, a Symbol, NaN, a length bomb) is read here once, without throwing, into
 * values the rest of pathwise can trust. What fails is refused by the caller of these functions,
 * which counts it and returns its contract's "nothing".
 */

/** Longest edge tag, in UTF-16 units: longer ones make the checkpoint refused (names are short in practice; this bounds memory and hashing). */
export const MAX_TAG_LENGTH = 1024
/** Most edge tags on one checkpoint. */
export const MAX_TAGS = 64
/** Most messages in one `setCheckpointBatch` call. */
export const MAX_BATCH = 1_000_000

/** `obj[key]`, or undefined when `obj` is not an object or reading throws. */
export function read(obj: unknown, key: string): unknown {
  if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) return undefined
  try {
    return (obj as Record<string, unknown>)[key]
  } catch {
    return undefined
  }
}

/** A string part of a tag (a topic, a type, a group) if it is a string that fits in a tag. */
export function tagPart(value: unknown): string | undefined {
  return typeof value === 'string' && value.length <= MAX_TAG_LENGTH ? value : undefined
}

/** A copy of `value` if it is an array of at most MAX_TAGS strings of at most MAX_TAG_LENGTH each; null otherwise. Never throws. */
export function edgeTagList(value: unknown): string[] | null {
  try {
    if (!Array.isArray(value)) return null
    const n = value.length
    if (!(n <= MAX_TAGS)) return null
    const tags = new Array<string>(n)
    for (let i = 0; i < n; i++) {
      const tag: unknown = value[i]
      if (typeof tag !== 'string' || tag.length > MAX_TAG_LENGTH) return null
      tags[i] = tag
    }
    return tags
  } catch {
    return null
  }
}

/** A byte count: a number from 0 to 2^53 (larger ones would make sketch keys whose values overflow), or undefined. */
export function byteCount(value: unknown): number | undefined {
  return typeof value === 'number' && value >= 0 && value <= Number.MAX_SAFE_INTEGER ? value : undefined
}

/** A Kafka partition number (a non-negative safe integer), or undefined. */
export function partitionNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined
}

/** An offset given as a number, a numeric string or a bigint, as a finite number >= 0 (the wire is int64); undefined otherwise. */
export function offsetNumber(value: unknown): number | undefined {
  let n: number
  if (typeof value === 'number') n = value
  else if (typeof value === 'bigint') n = Number(value)
  else if (typeof value === 'string' && /^\d{1,20}$/.test(value)) n = Number(value)
  else return undefined
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined
}

/** The length of an array-like batch argument, or -1 if it is not an array (or typed array) of at most MAX_BATCH entries. Never throws. */
export function batchLength(value: unknown): number {
  try {
    if (!Array.isArray(value) && !ArrayBuffer.isView(value)) return -1
    const n = (value as ArrayLike<unknown>).length
    return n <= MAX_BATCH ? n : -1
  } catch {
    return -1
  }
}

/** A carrier: any object (its keys are read and written under try/catch). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object'
}
