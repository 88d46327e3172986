/**
 * The pathway context a message carries: le64(hash) ++ zigzag-varint(pathway start ms)
 * ++ zigzag-varint(edge start ms), as standard base64 under `dd-pathway-ctx-base64`
 * (or raw under the legacy key `dd-pathway-ctx`, read but never written).
 * Decoding never throws: anything malformed reads as "no context".
 */

import { MAX_AHEAD_MS, MIN_TIME_MS, isSaneTime, isSaneTimeNow, latestSaneTime } from './time-window.js'

export const PATHWAY_KEY = 'dd-pathway-ctx-base64'
export const LEGACY_PATHWAY_KEY = 'dd-pathway-ctx'

/** Direction of a checkpoint, for loop detection. */
export const Direction = { None: 0, In: 1, Out: 2 } as const
export type Direction = (typeof Direction)[keyof typeof Direction]

/**
 * Whether an object was made by this copy's PathwayContext: its fields are then data properties it
 * holds itself, read without a trap or a getter (unless a subclass made them accessors: its readers
 * still guard). Asking runs no code of the object's, a Proxy's traps included.
 */
let isOwnContext: (value: object) => value is PathwayContext

/**
 * A context after a checkpoint (or as read from a message). Times are milliseconds since the
 * epoch with sub-millisecond precision in process; the wire carries whole milliseconds.
 * The last three fields serve loop detection: the direction of the last checkpoint and the
 * closest checkpoint of the opposite direction.
 */
export interface PathwayContext {
  readonly hashHi: number
  readonly hashLo: number
  readonly pathwayStartMs: number
  readonly edgeStartMs: number
  readonly direction: Direction
  readonly oppositeHashHi: number
  readonly oppositeHashLo: number
  readonly oppositeEdgeStartMs: number
  /** The pathway hash as an unsigned 64-bit integer (for display and tests; not for the hot path). 0 for halves that are no numbers. */
  readonly hash: bigint
}

/**
 * The class of the contexts, typed by the interface above rather than by its own declaration: the
 * brand is a private field, and a private field in the declared type would make the type of each
 * bundled entry point (`pathwise`, `pathwise/edge`) its own, one's DataStreams no longer
 * assignable to the other's.
 */
export const PathwayContext: new (
  hashHi: number,
  hashLo: number,
  pathwayStartMs: number,
  edgeStartMs: number,
  direction?: Direction,
  oppositeHashHi?: number,
  oppositeHashLo?: number,
  oppositeEdgeStartMs?: number,
) => PathwayContext = class PathwayContext {
  // Declared, not parameter properties: those are emitted as class fields defined first as
  // undefined and then assigned, twice the stores for every context made.
  declare readonly hashHi: number
  declare readonly hashLo: number
  declare readonly pathwayStartMs: number
  declare readonly edgeStartMs: number
  declare readonly direction: Direction
  declare readonly oppositeHashHi: number
  declare readonly oppositeHashLo: number
  declare readonly oppositeEdgeStartMs: number
  /** The brand `isOwnContext` asks for: an object this class made (a Proxy or a lookalike has none). */
  readonly #made = true

  constructor(
    hashHi: number,
    hashLo: number,
    pathwayStartMs: number,
    edgeStartMs: number,
    direction: Direction = Direction.None,
    oppositeHashHi = 0,
    oppositeHashLo = 0,
    oppositeEdgeStartMs: number = edgeStartMs,
  ) {
    this.hashHi = hashHi
    this.hashLo = hashLo
    this.pathwayStartMs = pathwayStartMs
    this.edgeStartMs = edgeStartMs
    this.direction = direction
    this.oppositeHashHi = oppositeHashHi
    this.oppositeHashLo = oppositeHashLo
    this.oppositeEdgeStartMs = oppositeEdgeStartMs
  }

  get hash(): bigint {
    return (BigInt(u32(this.hashHi)) << 32n) | BigInt(u32(this.hashLo))
  }

  static {
    isOwnContext = (value): value is PathwayContext => #made in value
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
/** While timestamps take 6 varint bytes each (1970-07 to 2039-09), a context is 20 bytes: 28 characters, 27 before the padding. */
const TODAY_CHARS = 27
/** The whole milliseconds whose zigzag varint takes 6 bytes: from 2^34 to below 2^41. */
const TODAY_MIN_MS = 2 ** 34
const TODAY_END_MS = 2 ** 41
/** 2^27: the zigzag value (2n) of n splits into its low 28 bits and the rest as n does at 2^27. */
const LOW27 = 0x8000000
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
  const valid = asPathwayContext(ctx)
  return valid === null ? new Uint8Array(0) : scratch.slice(0, writeContext(valid.hashHi, valid.hashLo, Math.floor(valid.pathwayStartMs), Math.floor(valid.edgeStartMs)))
}

/**
 * The last header value made, and what it holds: a hash and two whole milliseconds. A context
 * with the same three has the same value (a send's messages, messages of one parent produced in
 * the same millisecond): it is handed out again, not made anew.
 */
/** hi, lo, pathway start, edge start: in a typed array, where a module `let` holding a double boxes it anew at each store. */
const lastMade = new Float64Array([-1, -1, -1, -1])
let lastValue = ''

/**
 * The header value: standard base64 with padding, 28 characters for today's timestamps; the empty
 * string (nothing to write) for anything but a valid context (hash halves that are unsigned 32-bit
 * integers, times in the window of `time-window.ts`), so that what is written always decodes to
 * the times recorded. Every context a checkpoint returns is valid.
 */
export function encodePathwayContext(ctx: PathwayContext): string {
  const valid = asPathwayContext(ctx)
  if (valid === null) return ''
  const hi = valid.hashHi
  const lo = valid.hashLo
  const pathwayStart = Math.floor(valid.pathwayStartMs)
  const edgeStart = Math.floor(valid.edgeStartMs)
  if (edgeStart === lastMade[3] && pathwayStart === lastMade[2] && lo === lastMade[1] && hi === lastMade[0]) return lastValue
  const value =
    pathwayStart >= TODAY_MIN_MS && pathwayStart < TODAY_END_MS && edgeStart >= TODAY_MIN_MS && edgeStart < TODAY_END_MS
      ? todayValue(hi, lo, pathwayStart, edgeStart)
      : base64(writeContext(hi, lo, pathwayStart, edgeStart))
  lastMade[0] = hi
  lastMade[1] = lo
  lastMade[2] = pathwayStart
  lastMade[3] = edgeStart
  lastValue = value
  return value
}

/**
 * The value of today's contexts (both times from TODAY_MIN_MS to below TODAY_END_MS, so each
 * varint takes 6 bytes) straight from its numbers, in int32 arithmetic: the 20 bytes as seven
 * 24-bit groups of 4 characters (the last one padded), in one call with the characters as
 * arguments. What `base64(writeContext(...))` gives, without the bytes.
 */
function todayValue(hi: number, lo: number, pathwayStart: number, edgeStart: number): string {
  // The varint of 2n: its low 28 bits (4 bytes of 7) and the 14 above (2 bytes).
  const pHigh = Math.floor(pathwayStart / LOW27)
  const pLow = (pathwayStart - pHigh * LOW27) * 2
  const eHigh = Math.floor(edgeStart / LOW27)
  const eLow = (edgeStart - eHigh * LOW27) * 2
  const v0 = ((lo & 255) << 16) | (((lo >>> 8) & 255) << 8) | ((lo >>> 16) & 255)
  const v1 = ((lo >>> 24) << 16) | ((hi & 255) << 8) | ((hi >>> 8) & 255)
  const v2 = (((hi >>> 16) & 255) << 16) | ((hi >>> 24) << 8) | (pLow & 127) | 128
  const v3 = ((((pLow >>> 7) & 127) | 128) << 16) | ((((pLow >>> 14) & 127) | 128) << 8) | ((pLow >>> 21) & 127) | 128
  const v4 = (((pHigh & 127) | 128) << 16) | ((pHigh >>> 7) << 8) | (eLow & 127) | 128
  const v5 = ((((eLow >>> 7) & 127) | 128) << 16) | ((((eLow >>> 14) & 127) | 128) << 8) | ((eLow >>> 21) & 127) | 128
  const v6 = (((eHigh & 127) | 128) << 16) | ((eHigh >>> 7) << 8)
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

/** The first `n` bytes of `scratch` in standard base64 with padding. */
function base64(n: number): string {
  const b = scratch
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

/** Writes a context's bytes (its hash, and its times in whole milliseconds) into `scratch` and returns their count. */
function writeContext(hi: number, lo: number, pathwayStart: number, edgeStart: number): number {
  const b = scratch
  b[0] = lo
  b[1] = lo >>> 8
  b[2] = lo >>> 16
  b[3] = lo >>> 24
  b[4] = hi
  b[5] = hi >>> 8
  b[6] = hi >>> 16
  b[7] = hi >>> 24
  const p = writeZigzag(b, 8, pathwayStart)
  return writeZigzag(b, p, edgeStart)
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
  if (value === null || typeof value !== 'object') return null
  if (isOwnContext(value)) {
    try {
      if (now !== undefined) return hasSaneFields(value, now + MAX_AHEAD_MS) ? value : null
      // Against the last clock reading first; a time past what it allows reads the clock again.
      return hasSaneFields(value, latestSaneTime(false)) || hasSaneFields(value, latestSaneTime(true)) ? value : null
    } catch {
      return null // a subclass's accessor threw
    }
  }
  return lookalike(value, now)
}

/**
 * Whether the fields of one of this class's contexts are sane, times at most `latest`: the check
 * of every parent and every context encoded, so it reads each field once and calls nothing.
 */
function hasSaneFields(c: PathwayContext, latest: number): boolean {
  const pathwayStartMs = c.pathwayStartMs
  const edgeStartMs = c.edgeStartMs
  const oppositeEdgeStartMs = c.oppositeEdgeStartMs
  const direction = c.direction
  return (
    c.hashHi >>> 0 === c.hashHi &&
    c.hashLo >>> 0 === c.hashLo &&
    c.oppositeHashHi >>> 0 === c.oppositeHashHi &&
    c.oppositeHashLo >>> 0 === c.oppositeHashLo &&
    (direction === Direction.None || direction === Direction.In || direction === Direction.Out) &&
    typeof pathwayStartMs === 'number' &&
    pathwayStartMs >= MIN_TIME_MS &&
    pathwayStartMs <= latest &&
    typeof edgeStartMs === 'number' &&
    edgeStartMs >= MIN_TIME_MS &&
    edgeStartMs <= latest &&
    typeof oppositeEdgeStartMs === 'number' &&
    oppositeEdgeStartMs >= MIN_TIME_MS &&
    oppositeEdgeStartMs <= latest
  )
}

/** A context of another copy of pathwise (or anything posing as one): its getters read once, into a copy. */
function lookalike(value: object, now: number | undefined): PathwayContext | null {
  try {
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
const text = new Uint8Array(MAX_BASE64_CHARS + 3)
const decoded = new Uint8Array(MAX_CONTEXT_BYTES + 2)

function decodeBase64(chars: Uint8Array, length: number): PathwayContext | null {
  while (length > 0 && chars[length - 1] === PAD) length--
  if (length === TODAY_CHARS) {
    const today = todayContext(chars)
    if (today !== undefined) return today
  }
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

/**
 * The context of today's 27 characters (before the padding): null when a character is no base64
 * or a time is not sane; undefined when the bytes are not two 6-byte varints after the hash
 * (then the general decoder reads them, as it reads every other length).
 */
function todayContext(c: Uint8Array): PathwayContext | null | undefined {
  const read = todayFields(c)
  if (read !== TODAY) return read === MALFORMED ? null : undefined
  const { hashHi, hashLo, pathwayStartMs, edgeStartMs } = headerFields
  return isSaneTimeNow(pathwayStartMs) && isSaneTimeNow(edgeStartMs) ? new PathwayContext(hashHi, hashLo, pathwayStartMs, edgeStartMs) : null
}

/** What a header's value holds, as the batch path reads it (`decodeFields`): one record reused, no object per value. */
export const headerFields = { hashHi: 0, hashLo: 0, pathwayStartMs: 0, edgeStartMs: 0 }

const TODAY = 1
const MALFORMED = 0
const NOT_TODAY = -1

/**
 * Reads today's 27 characters (before the padding) into `headerFields` straight from their sextets, in
 * int32 arithmetic: seven 24-bit groups hold the 20 bytes. TODAY when read (times not yet checked),
 * MALFORMED when a character is no base64 or a varint an odd (negative) number, NOT_TODAY when the
 * bytes are not two 6-byte varints after the hash.
 */
function todayFields(c: Uint8Array): number {
  const v0 = (SEXTETS[c[0]] << 18) | (SEXTETS[c[1]] << 12) | (SEXTETS[c[2]] << 6) | SEXTETS[c[3]]
  const v1 = (SEXTETS[c[4]] << 18) | (SEXTETS[c[5]] << 12) | (SEXTETS[c[6]] << 6) | SEXTETS[c[7]]
  const v2 = (SEXTETS[c[8]] << 18) | (SEXTETS[c[9]] << 12) | (SEXTETS[c[10]] << 6) | SEXTETS[c[11]]
  const v3 = (SEXTETS[c[12]] << 18) | (SEXTETS[c[13]] << 12) | (SEXTETS[c[14]] << 6) | SEXTETS[c[15]]
  const v4 = (SEXTETS[c[16]] << 18) | (SEXTETS[c[17]] << 12) | (SEXTETS[c[18]] << 6) | SEXTETS[c[19]]
  const v5 = (SEXTETS[c[20]] << 18) | (SEXTETS[c[21]] << 12) | (SEXTETS[c[22]] << 6) | SEXTETS[c[23]]
  const v6 = (SEXTETS[c[24]] << 18) | (SEXTETS[c[25]] << 12) | (SEXTETS[c[26]] << 6)
  // a -1 (not base64) sets the sign bit, whatever its position
  if ((v0 | v1 | v2 | v3 | v4 | v5 | v6) < 0) return MALFORMED
  // Varint bytes: p0..p5 are v2's last byte, v3, v4's first two; e0..e5 v4's last, v5, v6's first two.
  // Each 6 long: the first five with the continuation bit, the sixth without.
  const p = ((v2 & 128) << 24) | ((v3 & 0x808080) << 1) | (v4 & 0x800000)
  const e = ((v4 & 128) << 24) | ((v5 & 0x808080) << 1) | (v6 & 0x800000)
  if (p !== CONTINUED || e !== CONTINUED || (v4 & 0x8000) !== 0 || (v6 & 0x8000) !== 0) return NOT_TODAY
  const pLow = (v2 & 127) | (((v3 >> 16) & 127) << 7) | (((v3 >> 8) & 127) << 14) | ((v3 & 127) << 21)
  const eLow = (v4 & 127) | (((v5 >> 16) & 127) << 7) | (((v5 >> 8) & 127) << 14) | ((v5 & 127) << 21)
  // an odd zigzag value is a negative number: garbage
  if (((pLow | eLow) & 1) !== 0) return MALFORMED
  headerFields.hashLo = ((v0 >> 16) | (((v0 >> 8) & 255) << 8) | ((v0 & 255) << 16) | ((v1 >> 16) << 24)) >>> 0
  headerFields.hashHi = (((v1 >> 8) & 255) | ((v1 & 255) << 8) | ((v2 >> 16) << 16) | (((v2 >> 8) & 255) << 24)) >>> 0
  headerFields.pathwayStartMs = (((v4 >> 16) & 127) | (((v4 >> 8) & 127) << 7)) * LOW27 + (pLow >>> 1)
  headerFields.edgeStartMs = (((v6 >> 16) & 127) | (((v6 >> 8) & 127) << 7)) * LOW27 + (eLow >>> 1)
  return TODAY
}

/** Whether two header values (the bytes of base64 texts) hold the same bytes: a send's messages carry one value. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  try {
    const n = a.length
    if (n !== b.length || n > MAX_BASE64_CHARS + 3) return false
    // from the end: two values of one pathway differ in their times, written last
    let i = n
    while (i > 0 && a[i - 1] === b[i - 1]) i--
    return i === 0
  } catch {
    return false // a Proxy posing as bytes
  }
}

/** The continuation bits todayFields gathers from a 6-byte varint: set on its first five bytes. */
const CONTINUED = 0x80000000 | 0x1010100 | 0x800000

/**
 * Reads a header value (the base64 text, as a string or its bytes, as decodePathwayContext takes
 * it) into `headerFields`, its times sane for a clock reading `now`; false for anything else, and then
 * `headerFields` holds nothing of it. The batch path's decoder: no context object is made. Never throws.
 */
export function decodeFields(value: unknown, now: number): boolean {
  if (value instanceof Uint8Array) return decodeBytesFields(value, now)
  if (typeof value !== 'string' || value.length > MAX_BASE64_CHARS + 3) return false
  const length = value.length
  for (let i = 0; i < length; i++) {
    const c = value.charCodeAt(i)
    if (c > 255) return false
    text[i] = c
  }
  return decodeCharsFields(text, length, now)
}

/** decodeFields of a value given as the bytes of its text. */
export function decodeBytesFields(value: Uint8Array, now: number): boolean {
  try {
    return decodeCharsFields(value, value.length, now)
  } catch {
    return false // a Proxy posing as bytes
  }
}

function decodeCharsFields(chars: Uint8Array, length: number, now: number): boolean {
  while (length > 0 && chars[length - 1] === PAD) length--
  const read = length === TODAY_CHARS ? todayFields(chars) : NOT_TODAY
  if (read === MALFORMED) return false
  if (read === NOT_TODAY) {
    const ctx = decodeBase64(chars, length)
    if (ctx === null) return false
    headerFields.hashHi = ctx.hashHi
    headerFields.hashLo = ctx.hashLo
    headerFields.pathwayStartMs = ctx.pathwayStartMs
    headerFields.edgeStartMs = ctx.edgeStartMs
  }
  return isSaneTime(headerFields.pathwayStartMs, now) && isSaneTime(headerFields.edgeStartMs, now)
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
