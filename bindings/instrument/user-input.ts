/**
 * What the transport wrappers read of the application's data (messages, records, headers,
 * configs, options, commands) goes through these, which never throw: a throwing getter, a Proxy
 * that throws on every trap, a revoked Proxy, an array of four billion holes reads as absent,
 * and the wrapper hands the call on as it came. Runtime-neutral (the edge build uses it too).
 */
import type { DataStreams } from '../data-streams.js'
import { MAX_BATCH } from '../input.js'

/** `obj[key]`; undefined when obj is no object or reading throws. (input.ts's `read`, for symbol keys too.) */
export function read(obj: unknown, key: PropertyKey): unknown {
  if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) return undefined
  try {
    return (obj as Record<PropertyKey, unknown>)[key]
  } catch {
    return undefined
  }
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
    // Object.assign, not a spread: adding a key to a spread copy costs V8 about 2 µs, this about 30 ns.
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

/**
 * The DataStreams a wrapper was handed, if it is an enabled one; null for anything else, and then
 * nothing is instrumented. Its other methods are called under the wrappers' guards; runWithContext
 * is not (it runs the application's handler), so it must be there.
 */
export function enabledDataStreams(dsm: unknown): DataStreams | null {
  return read(dsm, 'enabled') === true && typeof read(dsm, 'runWithContext') === 'function' ? (dsm as DataStreams) : null
}
