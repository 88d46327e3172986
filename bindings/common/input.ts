/**
 * The validation layer at the boundary: whatever pathwise is handed (by a caller of the public API,
 * or by the application to a transport wrapper: messages, records, headers, configs, commands; a
 * Proxy, a throwing getter, a revoked Proxy, a Symbol, NaN, a length bomb) is read here once,
 * without throwing, into values the rest of pathwise can trust. What fails is refused by the
 * caller of these functions: the API counts it and returns its contract's "nothing", a wrapper
 * hands the call on as it came. Runtime-neutral (the edge build uses it too).
 */
/** Longest edge tag, in UTF-16 units: longer ones make the checkpoint refused (names are short in practice; this bounds memory and hashing). */
export const MAX_TAG_LENGTH = 1024
/** Most edge tags on one checkpoint. */
export const MAX_TAGS = 64
/** Most messages in one `setCheckpointBatch` call. */
export const MAX_BATCH = 1_000_000

/** `obj[key]`, or undefined when `obj` is not an object or reading throws. */
export function read(obj: unknown, key: PropertyKey): unknown {
  if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) return undefined
  try {
    return (obj as Record<PropertyKey, unknown>)[key]
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

/** A non-empty string of any length (a transaction id, a checkpoint name: what pathwise keeps of it is its to cut), or undefined. */
export function nonEmptyText(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined
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
  else if (value !== null && typeof value === 'object') return offsetNumber(longText(value))
  else return undefined
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined
}

/**
 * The text of an offset object (kafkajs reports commits with Long offsets), or undefined. Arrays are
 * never converted: the join of a sparse one of 2^32 - 1 holes alone takes minutes.
 */
function longText(value: object): string | undefined {
  try {
    return Array.isArray(value) ? undefined : String(value)
  } catch {
    return undefined
  }
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

/** An array pathwise may walk: one of at most MAX_BATCH items; undefined for anything else (a sparse length bomb is not walked). */
export function items(value: unknown): readonly unknown[] | undefined {
  try {
    return Array.isArray(value) && value.length <= MAX_BATCH ? value : undefined
  } catch {
    // A revoked Proxy of an array, or a Proxy whose length throws.
    return undefined
  }
}

/** The prototype of a class a module exports (the automatic mode patches there); undefined when there is none to read. */
export function classPrototype(exports: unknown, name: string): Record<string, any> | undefined {
  const Class = read(exports, name)
  const prototype = typeof Class === 'function' ? read(Class, 'prototype') : undefined
  return prototype !== null && typeof prototype === 'object' ? (prototype as Record<string, any>) : undefined
}

/** Bytes of a typed array or DataView (`ArrayBuffer.isView` of it is true); 0 when its length cannot be read. */
export function viewBytes(view: ArrayBufferView): number {
  const n = read(view, 'byteLength')
  return typeof n === 'number' ? n : 0
}

/** Whether a value is a record of named fields: an object that is no array and no binary data (whose every byte is a key). */
export function isRecord(value: unknown): value is object {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return false
  try {
    return !Array.isArray(value)
  } catch {
    return false // a revoked Proxy
  }
}

/** The own enumerable keys of a record; none when they cannot be listed. */
export function keysOf(value: unknown): string[] {
  if (!isRecord(value)) return []
  try {
    return Object.keys(value)
  } catch {
    return []
  }
}

/** Whether an object has an own property `key`; false when that cannot be asked. */
export function hasOwn(value: unknown, key: string): boolean {
  if (value === null || typeof value !== 'object') return false
  try {
    return Object.prototype.hasOwnProperty.call(value, key)
  } catch {
    return false
  }
}

/**
 * A shallow copy of a record (its own enumerable properties); undefined when it is none (an
 * array, binary data) or cannot be copied without a throw (a Proxy, a throwing getter), and then
 * the original is handed on.
 */
export function copyOf(value: unknown): Record<string, unknown> | undefined {
  if (!isRecord(value)) return undefined
  try {
    // Object.assign, not a spread: adding a key to a spread copy costs Node 20's V8 about 400 ns,
    // this about 30 ns. A `__proto__` key of its own (JSON.parse makes them) would go to the copy's
    // prototype setter under Object.assign: the spread defines it as a key, as it came.
    if (Object.prototype.hasOwnProperty.call(value, '__proto__')) return { ...value } as Record<string, unknown>
    return Object.assign({}, value) as Record<string, unknown>
  } catch {
    return undefined // a Proxy's trap or a getter threw
  }
}

/** A copy of an object with `key` set to `v`, or undefined (see copyOf). */
export function copyWith(value: unknown, key: string, v: unknown): Record<string, unknown> | undefined {
  const copy = copyOf(value)
  if (copy !== undefined) copy[key] = v
  return copy
}

/**
 * A number, a numeric string or a bigint as a number; NaN for anything else, which is never
 * converted (converting an object runs its code: the join of a sparse array of 2^32 - 1 holes
 * alone takes minutes).
 */
export function numberOf(value: unknown): number {
  return typeof value === 'number' ? value : typeof value === 'string' || typeof value === 'bigint' ? Number(value) : NaN
}

/** The text of a thrown value, for a log line, whatever was thrown (a Symbol, a Proxy, an object whose toString throws). */
export function errorText(err: unknown): string {
  const message = read(err, 'message')
  if (typeof message === 'string') return message
  // An object's own conversion is its code, which may throw or take minutes: not run.
  return err !== null && (typeof err === 'object' || typeof err === 'function') ? `a thrown ${typeof err}` : String(err)
}
