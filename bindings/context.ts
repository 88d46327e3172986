/**
 * The pathway context a message carries: le64(hash) ++ zigzag-varint(pathway start ms)
 * ++ zigzag-varint(edge start ms), as standard base64 under `dd-pathway-ctx-base64`
 * (or raw under the legacy key `dd-pathway-ctx`, read but never written).
 * Decoding never throws: anything malformed reads as "no context".
 */

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

  /** The pathway hash as an unsigned 64-bit integer (for display and tests; not for the hot path). */
  get hash(): bigint {
    return (BigInt(this.hashHi) << 32n) | BigInt(this.hashLo)
  }
}

const MAX_VARINT_BYTES = 9
/** 8 hash bytes and two varints of at most 9 bytes. */
const MAX_CONTEXT_BYTES = 26
const MAX_BASE64_CHARS = 36

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
/** Two base64 characters per 12 bits: one string concatenation per 1.5 bytes. */
const PAIRS: string[] = []
for (let i = 0; i < 4096; i++) PAIRS.push(ALPHABET[i >> 6] + ALPHABET[i & 63])
/** Character code to 6-bit value, -1 for anything else. */
const SEXTETS = new Int8Array(256).fill(-1)
for (let i = 0; i < 64; i++) SEXTETS[ALPHABET.charCodeAt(i)] = i

const scratch = new Uint8Array(MAX_CONTEXT_BYTES + 2)

/** The raw context bytes (20 for today's timestamps). */
export function encodePathwayContextBytes(ctx: PathwayContext): Uint8Array {
  return scratch.slice(0, writeContext(ctx))
}

/** The header value: standard base64 with padding, 28 characters for today's timestamps. */
export function encodePathwayContext(ctx: PathwayContext): string {
  const n = writeContext(ctx)
  const b = scratch
  let out = ''
  let i = 0
  for (; i + 3 <= n; i += 3) {
    const v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2]
    out += PAIRS[v >> 12] + PAIRS[v & 4095]
  }
  if (n - i === 1) out += PAIRS[b[i] << 4] + '=='
  else if (n - i === 2) {
    const v = (b[i] << 16) | (b[i + 1] << 8)
    out += PAIRS[v >> 12] + ALPHABET[(v >> 6) & 63] + '='
  }
  return out
}

function writeContext(ctx: PathwayContext): number {
  const b = scratch
  const lo = ctx.hashLo
  const hi = ctx.hashHi
  b[0] = lo
  b[1] = lo >>> 8
  b[2] = lo >>> 16
  b[3] = lo >>> 24
  b[4] = hi
  b[5] = hi >>> 8
  b[6] = hi >>> 16
  b[7] = hi >>> 24
  const p = writeZigzag(b, 8, Math.floor(ctx.pathwayStartMs))
  return writeZigzag(b, p, Math.floor(ctx.edgeStartMs))
}

function writeZigzag(b: Uint8Array, p: number, n: number): number {
  let z = n >= 0 ? n * 2 : -n * 2 - 1
  while (z >= 0x80) {
    b[p++] = (z % 0x80) | 0x80
    z = Math.floor(z / 0x80)
  }
  b[p++] = z
  return p
}

/**
 * Reads a context from its base64 header value, given as a string or as the bytes of that
 * string (Kafka header values arrive as Buffers). Null for anything malformed.
 */
export function decodePathwayContext(value: unknown): PathwayContext | null {
  if (typeof value === 'string') return decodeBase64Chars(value.length, (i) => value.charCodeAt(i))
  if (value instanceof Uint8Array) return decodeBase64Chars(value.length, (i) => value[i])
  return null
}

/** Reads a context from its raw bytes (the legacy `dd-pathway-ctx` value). Null for anything malformed. */
export function decodePathwayContextBytes(bytes: unknown): PathwayContext | null {
  if (!(bytes instanceof Uint8Array)) return null
  return readContext(bytes, bytes.length)
}

/**
 * The context in a carrier of string keys: the base64 key first, then the legacy raw key.
 * A repeated header (an array of values) reads its last value, the one written last.
 */
export function extractPathwayContext(carrier: unknown): PathwayContext | null {
  if (carrier === null || typeof carrier !== 'object') return null
  const c = carrier as Record<string, unknown>
  const encoded = c[PATHWAY_KEY]
  if (encoded !== undefined) return decodePathwayContext(last(encoded))
  const legacy = c[LEGACY_PATHWAY_KEY]
  if (legacy === undefined) return null
  const raw = last(legacy)
  return typeof raw === 'string' ? decodePathwayContextBytes(latin1(raw)) : decodePathwayContextBytes(raw)
}

function last(value: unknown): unknown {
  return Array.isArray(value) ? value[value.length - 1] : value
}

function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

const decoded = new Uint8Array(MAX_CONTEXT_BYTES + 2)

function decodeBase64Chars(length: number, charAt: (i: number) => number): PathwayContext | null {
  while (length > 0 && charAt(length - 1) === 61 /* = */) length--
  if (length === 0 || length > MAX_BASE64_CHARS || length % 4 === 1) return null
  let n = 0
  let acc = 0
  let bits = 0
  for (let i = 0; i < length; i++) {
    const c = charAt(i)
    const v = c < 256 ? SEXTETS[c] : -1
    if (v < 0) return null
    acc = ((acc << 6) | v) & 0xffffff
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
  let p = 8
  let pathwayStart = -1
  let edgeStart = -1
  for (let field = 0; field < 2; field++) {
    let z = 0
    let scale = 1
    let i = 0
    for (; ; i++) {
      if (i === MAX_VARINT_BYTES || p >= n) return null
      const byte = b[p++]
      z += (byte & 0x7f) * scale
      scale *= 0x80
      if (byte < 0x80) break
    }
    // Real timestamps are never negative: an odd zigzag value means garbage.
    if (z % 2 !== 0) return null
    if (field === 0) pathwayStart = z / 2
    else edgeStart = z / 2
  }
  if (!(pathwayStart <= Number.MAX_SAFE_INTEGER && edgeStart <= Number.MAX_SAFE_INTEGER)) return null
  return new PathwayContext(hi, lo, pathwayStart, edgeStart)
}

/** The hash halves of an unsigned 64-bit value given as a bigint (for tests and configuration, never per message). */
export function splitHash(hash: bigint): { hi: number; lo: number } {
  return { hi: Number((hash >> 32n) & 0xffffffffn), lo: Number(hash & 0xffffffffn) }
}
