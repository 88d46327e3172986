/**
 * The opt-in Kinesis carrier: the pathway context under `_datadog` inside a record whose data is a
 * JSON object, as dd-trace writes it. The data's text is spliced, never re-serialized, so that
 * everything else in it (formatting, numbers too large for a double) stays byte for byte.
 * Data that is not a JSON object is never touched.
 */
import { Buffer } from 'node:buffer'
import type { PathwayContext } from '../pathway/context.js'
import { DATADOG_KEY, carrierBytes, carrierPrefix, closeCarrier, isPlainObject, readCarrierValue } from './carrier.js'

export type RecordData = Uint8Array | string

const decoder = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

/** Where the context goes in one record's data. */
export interface JsonInjection {
  /** Bytes of the data once written, for a context of the usual length. */
  readonly size: number
  /** The data with this context, of the type the caller gave (bytes or a string). */
  write(encoded: string): RecordData
}

/** How to put the context into this data, or null when the data is not a JSON object. */
export function planJsonInjection(data: unknown): JsonInjection | null {
  const parsed = parseObject(data)
  if (parsed === null) return null
  const { text, value } = parsed
  const asBytes = typeof data !== 'string'
  const finish = (before: string, prefix: string, after: string): JsonInjection => ({
    size: Buffer.byteLength(before) + carrierBytes(Buffer.byteLength(prefix)) + Buffer.byteLength(after),
    write(encoded) {
      const out = before + closeCarrier(prefix, encoded) + after
      return asBytes ? encoder.encode(out) : out
    },
  })
  if (!Object.prototype.hasOwnProperty.call(value, DATADOG_KEY)) {
    // A new last member, right after the last one (the blanks before the closing brace stay there).
    let end = text.lastIndexOf('}')
    while (isBlank(text.charCodeAt(end - 1))) end--
    const comma = Object.keys(value).length === 0 ? '' : ','
    return finish(text.slice(0, end) + comma + `"${DATADOG_KEY}":`, carrierPrefix(), text.slice(end))
  }
  // A `_datadog` that is not an object is someone else's: left as it is.
  const existing = value[DATADOG_KEY]
  if (!isPlainObject(existing)) return null
  const span = memberValueSpan(text, DATADOG_KEY)
  if (span === null) return null
  return finish(text.slice(0, span[0]), carrierPrefix(existing), text.slice(span[1]))
}

/** The context in a JSON-object record, or null. Never throws. */
export function readJsonContext(data: unknown): PathwayContext | null {
  const parsed = parseObject(data)
  return parsed === null ? null : readCarrierValue(parsed.value[DATADOG_KEY])
}

/** The text and value of data that is a JSON object; null otherwise, cheaply for binary data. */
function parseObject(data: unknown): { text: string; value: Record<string, unknown> } | null {
  let text: string
  if (typeof data === 'string') {
    text = data
  } else if (ArrayBuffer.isView(data) && data instanceof Uint8Array) {
    if (!bracedBytes(data)) return null
    try {
      text = decoder.decode(data)
    } catch {
      return null
    }
  } else {
    return null
  }
  try {
    const value: unknown = JSON.parse(text)
    return isPlainObject(value) ? { text, value } : null
  } catch {
    return null
  }
}

/** Whether the first and last non-blank bytes are `{` and `}`: most data that is not JSON fails here, before any decoding. */
function bracedBytes(data: Uint8Array): boolean {
  let start = 0
  let end = data.length - 1
  while (start <= end && isBlank(data[start])) start++
  while (end >= start && isBlank(data[end])) end--
  return start < end && data[start] === 0x7b && data[end] === 0x7d
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

/**
 * The [start, end) of the value of a top-level member of a JSON object's text (already known to
 * be valid JSON); the last one when the key repeats, as JSON.parse reads it.
 */
function memberValueSpan(text: string, key: string): [number, number] | null {
  let found: [number, number] | null = null
  let i = skipBlanks(text, text.indexOf('{') + 1)
  while (text[i] === '"') {
    const keyEnd = skipString(text, i)
    const name = text.slice(i, keyEnd)
    const start = skipBlanks(text, skipBlanks(text, keyEnd) + 1)
    const end = skipValue(text, start)
    if (name === `"${key}"` || (name.includes('\\') && JSON.parse(name) === key)) found = [start, end]
    i = skipBlanks(text, end)
    if (text[i] !== ',') break
    i = skipBlanks(text, i + 1)
  }
  return found
}

function skipBlanks(text: string, i: number): number {
  while (i < text.length && isBlank(text.charCodeAt(i))) i++
  return i
}

/** From an opening quote to just past the closing one. */
function skipString(text: string, i: number): number {
  for (i++; i < text.length; i++) {
    const c = text[i]
    if (c === '\\') i++
    else if (c === '"') return i + 1
  }
  return i
}

function skipValue(text: string, i: number): number {
  const c = text[i]
  if (c === '"') return skipString(text, i)
  if (c === '{' || c === '[') {
    let depth = 0
    while (i < text.length) {
      const d = text[i]
      if (d === '"') {
        i = skipString(text, i)
        continue
      }
      if (d === '{' || d === '[') depth++
      else if (d === '}' || d === ']') depth--
      i++
      if (depth === 0) return i
    }
    return i
  }
  // A number, true, false or null.
  while (i < text.length && !',}] \t\r\n'.includes(text[i])) i++
  return i
}
