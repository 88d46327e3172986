/**
 * The pathway context a message carries: le64(hash) ++ zigzag-varint(pathway start ms)
 * ++ zigzag-varint(edge start ms), as standard base64 under `dd-pathway-ctx-base64`
 * (or raw under the legacy key `dd-pathway-ctx`, read but never written).
 * Decoding never throws: anything malformed reads as "no context".
 */

import { isSaneTime, isSaneTimeNow } from './time-window.js'

export const PATHWAY_KEY = 'dd-pathway-ctx-base64'
export const LEGACY_PATHWAY_KEY = 'dd-pathway-ctx'

/** Direction of a checkpoint, for loop detection. */
export const Direction = { None: 0, In: 1, Out: 2 } as const
export type Direction = (typeof Direction)[keyof typeof Direction]

/**
 * A context after a checkpoint (or as read from a message). Times are milliseconds since the
 * epoch with sub-millisecond precision in process; the wire carries whole milliseconds.
 * The last three fields serve loop detection: the direction of the last checkpoint and the
 * closest checkpoint of the opposite direction.
 */
export class PathwayContext {
  constructor(
    readonly hashHi: number,
    readonly hashLo: number,
    readonly pathwayStartMs: number,
    readonly edgeStartMs: number,
    readonly direction: Direction = Direction.None,
    readonly oppositeHashHi: number = 0,
    readonly oppositeHashLo: number = 0,
    readonly oppositeEdgeStartMs: number = edgeStartMs,
  ) {}

  /** The pathway hash as an unsigned 64-bit integer (for display and tests; not for the hot path). 0 for halves that are no numbers. */
  get hash(): bigint {
    return (BigInt(u32(this.hashHi)) << 32n) | BigInt(u32(this.hashLo))
  }
}

function u32(half: unknown): number {
  return typeof half === 'number' ? half >>> 0 : 0
}

const MAX_VARINT_BYTES = 9
/** 8 hash bytes and two varints of at most 9 bytes. */
const MAX_CONTEXT_BYTES = 26
const MAX_BASE64_CHARS = 36

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
/** 6-bit value to character code. */
const CHAR_CODES = new Uint8Array(64)
for (let i = 0; i < 64; i++) CHAR_CODES[i] = ALPHABET.charCodeAt(i)
/** 12-bit value to its first and its second character code. */
const FIRST = new Uint8Array(4096)
const SECOND = new Uint8Array(4096)
for (let i = 0; i < 4096; i++) {
  FIRST[i] = CHAR_CODES[i >> 6]
  SECOND[i] = CHAR_CODES[i & 63]
}
/** Context bytes while timestamps take 6 varint bytes each (2004 to 2112): 28 characters. */
const TODAY_BYTES = 20
/** Character code to 6-bit value, -1 for anything else. */
const SEXTETS = new Int8Array(256).fill(-1)
for (let i = 0; i < 64; i++) SEXTETS[ALPHABET.charCodeAt(i)] = i
const PAD = 61 // '='

/** 2^28: varints are written and read 28 bits (4 bytes) at a time in int32 arithmetic. */
const LOW28 = 0x10000000

const scratch = new Uint8Array(MAX_CONTEXT_BYTES + 2)
/**
 * The characters of a header value, by length (a multiple of 4), reused: one
 * String.fromCharCode.apply per value, where concatenating pieces allocates a string per piece.
 */
const charsByLength: number[][] = []

/** The raw context bytes (20 for today's timestamps); no bytes for anything but a valid context. */
export function encodePathwayContextBytes(ctx: PathwayContext): Uint8Array {
  return scratch.slice(0, writeContext(ctx))
}

/**
 * The header value: standard base64 with padding, 28 characters for today's timestamps; the empty
 * string (nothing to write) for anything but a valid context (hash halves that are unsigned 32-bit
 * integers, times in the window of `time-window.ts`), so that what is written always decodes to
 * the times recorded. Every context a checkpoint returns is valid.
 */
export function encodePathwayContext(ctx: PathwayContext): string {
  const n = writeContext(ctx)
  if (n === 0) return ''
  const b = scratch
  if (n === TODAY_BYTES) {
    // The common case, in one call with the characters as arguments: no array to fill and spread.
    const v0 = (b[0] << 16) | (b[1] << 8) | b[2]
    const v1 = (b[3] << 16) | (b[4] << 8) | b[5]
    const v2 = (b[6] << 16) | (b[7] << 8) | b[8]
    const v3 = (b[9] << 16) | (b[10] << 8) | b[11]
    const v4 = (b[12] << 16) | (b[13] << 8) | b[14]
    const v5 = (b[15] << 16) | (b[16] << 8) | b[17]
    const v6 = (b[18] << 16) | (b[19] << 8)
    // prettier-ignore
    return String.fromCharCode(
      FIRST[v0 >> 12], SECOND[v0 >> 12], FIRST[v0 & 4095], SECOND[v0 & 4095],
      FIRST[v1 >> 12], SECOND[v1 >> 12], FIRST[v1 & 4095], SECOND[v1 & 4095],
      FIRST[v2 >> 12], SECOND[v2 >> 12], FIRST[v2 & 4095], SECOND[v2 & 4095],
      FIRST[v3 >> 12], SECOND[v3 >> 12], FIRST[v3 & 4095], SECOND[v3 & 4095],
      FIRST[v4 >> 12], SECOND[v4 >> 12], FIRST[v4 & 4095], SECOND[v4 & 4095],
      FIRST[v5 >> 12], SECOND[v5 >> 12], FIRST[v5 & 4095], SECOND[v5 & 4095],
      FIRST[v6 >> 12], SECOND[v6 >> 12], FIRST[v6 & 4095], PAD,
    )
  }
  const length = Math.ceil(n / 3) * 4
  const chars = (charsByLength[length] ??= new Array<number>(length).fill(0))
  let c = 0
  let i = 0
  for (; i + 3 <= n; i += 3) {
    const v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2]
    chars[c++] = CHAR_CODES[v >> 18]
    chars[c++] = CHAR_CODES[(v >> 12) & 63]
    chars[c++] = CHAR_CODES[(v >> 6) & 63]
    chars[c++] = CHAR_CODES[v & 63]
  }
  if (i < n) {
    // one or two bytes left: the bytes past the end count as zero bits, then padding
    const v = (b[i] << 16) | (i + 1 < n ? b[i + 1] << 8 : 0)
    chars[c++] = CHAR_CODES[v >> 18]
    chars[c++] = CHAR_CODES[(v >> 12) & 63]
    chars[c++] = i + 1 < n ? CHAR_CODES[(v >> 6) & 63] : PAD
    chars[c++] = PAD
  }
  return String.fromCharCode.apply(null, chars)
}

/** Writes the context's bytes into `scratch` and returns their count, 0 if it is not a valid context. */
function writeContext(ctx: PathwayContext): number {
  const valid = asPathwayContext(ctx)
  if (valid === null) return 0
  const b = scratch
  const lo = valid.hashLo
  const hi = valid.hashHi
  b[0] = lo
  b[1] = lo >>> 8
  b[2] = lo >>> 16
  b[3] = lo >>> 24
  b[4] = hi
  b[5] = hi >>> 8
  b[6] = hi >>> 16
  b[7] = hi >>> 24
  const p = writeZigzag(b, 8, Math.floor(valid.pathwayStartMs))
  return writeZigzag(b, p, Math.floor(valid.edgeStartMs))
}

/**
 * `value` as a context that is safe to hang a checkpoint off or to encode, or null: a
 * PathwayContext (of this or another copy of pathwise) whose hash halves are unsigned 32-bit
 * integers, whose direction is known and whose times are sane for a clock reading `now` (this
 * host's clock if not given). Never
 * throws (a Proxy or a throwing getter reads as null). A context of this copy that is valid is
 * returned as is; a lookalike is copied, so its getters are read once.
 */
export function asPathwayContext(value: unknown, now?: number): PathwayContext | null {
  try {
    if (value === null || typeof value !== 'object') return null
    const c = value as PathwayContext
    const hashHi = c.hashHi
    const hashLo = c.hashLo
    const pathwayStartMs = c.pathwayStartMs
    const edgeStartMs = c.edgeStartMs
    const direction = c.direction
    const oppositeHashHi = c.oppositeHashHi
    const oppositeHashLo = c.oppositeHashLo
    const oppositeEdgeStartMs = c.oppositeEdgeStartMs
    if (
      !isUint32(hashHi) ||
      !isUint32(hashLo) ||
      !isUint32(oppositeHashHi) ||
      !isUint32(oppositeHashLo) ||
      !(direction === Direction.None || direction === Direction.In || direction === Direction.Out) ||
      !saneTime(pathwayStartMs, now) ||
      !saneTime(edgeStartMs, now) ||
      !saneTime(oppositeEdgeStartMs, now)
    ) {
      return null
    }
    if (value instanceof PathwayContext) return value
    return new PathwayContext(hashHi, hashLo, pathwayStartMs, edgeStartMs, direction, oppositeHashHi, oppositeHashLo, oppositeEdgeStartMs)
  } catch {
    return null
  }
}

/** An unsigned 32-bit integer; anything else is never converted (`>>>` on an object runs its code: a sparse array's join takes minutes). */
function isUint32(value: unknown): boolean {
  return typeof value === 'number' && value >>> 0 === value
}

/**
 * Today's timestamps need 42 bits once zigzagged: past int32 arithmetic, where `%` on a double is
 * a call into the runtime. So the low 28 bits (4 varint bytes) are split off once and written with
 * int ops; the few high bits follow.
 */
function writeZigzag(b: Uint8Array, p: number, n: number): number {
  const z = n >= 0 ? n * 2 : -n * 2 - 1
  let high = Math.floor(z / LOW28)
  let low = z - high * LOW28
  if (high === 0) {
    while (low >= 0x80) {
      b[p++] = (low & 0x7f) | 0x80
      low >>>= 7
    }
    b[p++] = low
    return p
  }
  for (let k = 0; k < 4; k++) {
    b[p++] = (low & 0x7f) | 0x80
    low >>>= 7
  }
  while (high >= 0x80) {
    b[p++] = (high & 0x7f) | 0x80
    high = Math.floor(high / 0x80)
  }
  b[p++] = high
  return p
}

/**
 * Reads a context from its base64 header value, given as a string or as the bytes of that
 * string (Kafka header values arrive as Buffers). Null for anything malformed.
 */
export function decodePathwayContext(value: unknown): PathwayContext | null {
  try {
    return decodeValue(value)
  } catch {
    // a Proxy posing as bytes
    return null
  }
}

function saneTime(ms: unknown, now: number | undefined): boolean {
  return now === undefined ? isSaneTimeNow(ms) : isSaneTime(ms, now)
}

function decodeValue(value: unknown): PathwayContext | null {
  if (typeof value === 'string') {
    // the characters as bytes first, so that one decoding loop serves strings and byte arrays
    let length = value.length
    while (length > 0 && value.charCodeAt(length - 1) === PAD) length--
    if (length > MAX_BASE64_CHARS) return null
    for (let i = 0; i < length; i++) {
      const c = value.charCodeAt(i)
      if (c > 255) return null
      text[i] = c
    }
    return decodeBase64(text, length)
  }
  if (value instanceof Uint8Array) return decodeBase64(value, value.length)
  return null
}

/** Reads a context from its raw bytes (the legacy `dd-pathway-ctx` value). Null for anything malformed. */
export function decodePathwayContextBytes(bytes: unknown): PathwayContext | null {
  try {
    if (!(bytes instanceof Uint8Array)) return null
    return readContext(bytes, bytes.length)
  } catch {
    return null
  }
}

/**
 * The context in a carrier of string keys: the base64 key first, then the legacy raw key.
 * A repeated header (an array of values) reads its last value, the one written last.
 */
export function extractPathwayContext(carrier: unknown): PathwayContext | null {
  try {
    if (carrier === null || typeof carrier !== 'object') return null
    const c = carrier as Record<string, unknown>
    const encoded = c[PATHWAY_KEY]
    if (encoded !== undefined) return decodePathwayContext(last(encoded))
    const legacy = c[LEGACY_PATHWAY_KEY]
    if (legacy === undefined) return null
    const raw = last(legacy)
    return typeof raw === 'string' ? decodePathwayContextBytes(latin1(raw)) : decodePathwayContextBytes(raw)
  } catch {
    // a carrier that throws on reading (a Proxy, a getter) carries no context
    return null
  }
}

function last(value: unknown): unknown {
  return Array.isArray(value) ? value[value.length - 1] : value
}

function latin1(s: string): Uint8Array {
  if (s.length > MAX_CONTEXT_BYTES + 2) return new Uint8Array(0)
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

/** The characters of a string header value, padding excluded. */
const text = new Uint8Array(MAX_BASE64_CHARS)
const decoded = new Uint8Array(MAX_CONTEXT_BYTES + 2)

function decodeBase64(chars: Uint8Array, length: number): PathwayContext | null {
  while (length > 0 && chars[length - 1] === PAD) length--
  if (length === 0 || length > MAX_BASE64_CHARS || length % 4 === 1) return null
  let n = 0
  let i = 0
  for (; i + 4 <= length; i += 4) {
    const v = (SEXTETS[chars[i]] << 18) | (SEXTETS[chars[i + 1]] << 12) | (SEXTETS[chars[i + 2]] << 6) | SEXTETS[chars[i + 3]]
    // a -1 (not base64) sets the sign bit, whatever its position
    if (v < 0) return null
    decoded[n++] = v >> 16
    decoded[n++] = v >> 8
    decoded[n++] = v
  }
  // 2 or 3 characters left: 1 or 2 bytes
  let acc = 0
  let bits = 0
  for (; i < length; i++) {
    const s = SEXTETS[chars[i]]
    if (s < 0) return null
    acc = (acc << 6) | s
    bits += 6
    if (bits >= 8) {
      bits -= 8
      decoded[n++] = acc >> bits
    }
  }
  return readContext(decoded, n)
}

function readContext(b: Uint8Array, n: number): PathwayContext | null {
  if (n < 10 || n > MAX_CONTEXT_BYTES + 2) return null
  const lo = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0
  const hi = (b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24)) >>> 0
  const pathwayStart = readZigzag(b, 8, n)
  if (pathwayStart < 0) return null
  const edgeStart = readZigzag(b, varintEnd, n)
  if (edgeStart < 0) return null
  if (!isSaneTimeNow(pathwayStart) || !isSaneTimeNow(edgeStart)) return null
  return new PathwayContext(hi, lo, pathwayStart, edgeStart)
}

/** Where the last varint read ended. */
let varintEnd = 0

/**
 * A zigzag varint of at most 9 bytes from b[p..n), as a non-negative value (real timestamps
 * are never negative), -1 if truncated, too long, negative or beyond Number.MAX_SAFE_INTEGER.
 * The first 4 bytes (28 bits) are summed in int32 arithmetic, the rest as a double.
 */
function readZigzag(b: Uint8Array, p: number, n: number): number {
  let low = 0
  let high = 0
  let scale = 1
  for (let i = 0; ; i++) {
    if (i === MAX_VARINT_BYTES || p >= n) return -1
    const byte = b[p++]
    if (i < 4) low |= (byte & 0x7f) << (7 * i)
    else {
      high += (byte & 0x7f) * scale
      scale *= 0x80
    }
    if (byte < 0x80) break
  }
  varintEnd = p
  // an odd zigzag value is a negative number: garbage
  if ((low & 1) !== 0) return -1
  const value = high * (LOW28 / 2) + (low >>> 1)
  return value <= Number.MAX_SAFE_INTEGER ? value : -1
}
