import { COMPACT_BINS as BINS, COMPACT_DOUBLES as DOUBLES, COMPACT_ZEROS as ZEROS, MAX_COMPACT_KEY } from '../core/compact-constants.js'
import { BIN_LIMIT } from '../core/sketch-constants.js'
import { TsSketch } from './sketch.js'

/**
 * The compact form of a sketch (`bindings/core/sketch-store.ts` says what it is), written from and
 * read into a TsSketch. `assembly/compact.ts` does the same steps over the Wasm core's sketches, and
 * both stores' bytes are identical.
 */

/** A count the integer form holds: twice it is a varint of 53 bits at most. */
const MAX_COUNT = 2 ** 52
/** The bins' total the integer form holds exactly (every partial sum of integers below it is exact). */
const MAX_TOTAL = 2 ** 53
/** A varint of 53 bits takes 8 bytes. */
const MAX_VARINT_BYTES = 8

/** Empties a sketch, keeping its bins' memory for the next one. */
export function resetSketch(s: TsSketch): void {
  if (s.binCount !== 0) s.bins.fill(0, s.minKey - s.offset, s.maxKey - s.offset + 1)
  s.binCount = 0
  s.zeroCount = 0
}

function varintSize(v: number): number {
  let size = 1
  while (v >= 128) {
    v = Math.floor(v / 128)
    size++
  }
  return size
}

function writeVarint(out: Uint8Array, p: number, v: number): number {
  while (v >= 128) {
    out[p++] = (v % 128) | 128
    v = Math.floor(v / 128)
  }
  out[p++] = v
  return p
}

const zigzag = (k: number): number => ((k << 1) ^ (k >> 31)) >>> 0

/** Whether the integer form holds the sketch: integer counts, and bins whose total is their exact sum. */
function integral(s: TsSketch): boolean {
  if (!(Number.isInteger(s.zeroCount) && s.zeroCount <= MAX_TOTAL)) return false
  if (s.binCount === 0) return true
  if (!(s.binCount <= MAX_TOTAL)) return false
  let sum = 0
  for (let i = s.minKey - s.offset, last = s.maxKey - s.offset; i <= last; i++) {
    const c = s.bins[i]
    if (!(Number.isInteger(c) && c <= MAX_COUNT)) return false
    sum += c
  }
  return sum === s.binCount
}

/** Bytes `writeCompact` writes for `s`. */
export function compactSize(s: TsSketch): number {
  const span = s.binCount === 0 ? 0 : s.maxKey - s.minKey + 1
  const head = span === 0 ? 0 : varintSize(zigzag(s.minKey)) + varintSize(span)
  if (!integral(s)) return 1 + (s.zeroCount !== 0 ? 8 : 0) + (span === 0 ? 0 : 8 + head + 8 * span)
  let size = 1 + (s.zeroCount !== 0 ? varintSize(s.zeroCount) : 0)
  if (span === 0) return size
  size += head
  let run = 0
  for (let i = s.minKey - s.offset, last = s.maxKey - s.offset; i <= last; i++) {
    const c = s.bins[i]
    if (c === 0) {
      run++
      continue
    }
    if (run > 0) size += varintSize(2 * run + 1)
    run = 0
    size += varintSize(2 * c)
  }
  return size
}

/** Writes the compact form of `s` at `out[p]` (compactSize(s) bytes); returns where it ends. */
export function writeCompact(s: TsSketch, out: Uint8Array, p: number): number {
  const span = s.binCount === 0 ? 0 : s.maxKey - s.minKey + 1
  const first = s.minKey - s.offset
  const doubles = !integral(s)
  out[p++] = (s.zeroCount !== 0 ? ZEROS : 0) | (span !== 0 ? BINS : 0) | (doubles ? DOUBLES : 0)
  if (doubles) {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
    if (s.zeroCount !== 0) {
      view.setFloat64(p, s.zeroCount, true)
      p += 8
    }
    if (span === 0) return p
    view.setFloat64(p, s.binCount, true)
    p = writeVarint(out, writeVarint(out, p + 8, zigzag(s.minKey)), span)
    for (let i = 0; i < span; i++, p += 8) view.setFloat64(p, s.bins[first + i], true)
    return p
  }
  if (s.zeroCount !== 0) p = writeVarint(out, p, s.zeroCount)
  if (span === 0) return p
  p = writeVarint(out, writeVarint(out, p, zigzag(s.minKey)), span)
  let run = 0
  for (let i = first, last = first + span - 1; i <= last; i++) {
    const c = s.bins[i]
    if (c === 0) {
      run++
      continue
    }
    if (run > 0) p = writeVarint(out, p, 2 * run + 1)
    run = 0
    p = writeVarint(out, p, 2 * c)
  }
  return p
}

/** A reader over compact bytes that fails (sets `at` to -1) on anything out of bounds or out of range. */
class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public at: number,
    readonly end: number,
  ) {}

  fail(): number {
    this.at = -1
    return 0
  }

  /** A varint of 53 bits at most. */
  varint(): number {
    let v = 0
    let scale = 1
    for (let n = 0; n < MAX_VARINT_BYTES; n++) {
      if (this.at < 0 || this.at >= this.end) return this.fail()
      const b = this.bytes[this.at++]
      // The eighth byte holds bits 49 to 55: past 2^53 is refused here, where the sum would round.
      if (n === MAX_VARINT_BYTES - 1 && ((b & 127) > 16 || ((b & 127) === 16 && v !== 0))) return this.fail()
      v += (b & 127) * scale
      if (b < 128) return v <= MAX_TOTAL ? v : this.fail()
      scale *= 128
    }
    return this.fail()
  }

  double(): number {
    if (this.at < 0 || this.at + 8 > this.end) return this.fail()
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.at, 8).getFloat64(0, true)
    this.at += 8
    return v
  }

  /** The lowest key and the span, within the limits every sketch keeps. */
  span(): [number, number] {
    const z = this.varint()
    const key = z % 2 === 0 ? z / 2 : -(z + 1) / 2
    const span = this.varint()
    if (!(span >= 1 && span <= BIN_LIMIT && key >= -MAX_COMPACT_KEY && key + span - 1 <= MAX_COMPACT_KEY)) this.fail()
    return [key, span]
  }
}

/**
 * Reads one compact sketch at `bytes[at, end)` and adds it into `into` as `Sketch.merge` adds a
 * sketch: its zeros, then each bin's count in key order. `exact`: `into` is empty and becomes the
 * sketch exactly, its bins' total included (which the doubles form holds apart). Returns where the
 * sketch ends, or -1 if the bytes are not a compact sketch (`into` is then to be thrown away).
 */
export function readCompact(bytes: Uint8Array, at: number, end: number, into: TsSketch, exact: boolean): number {
  const r = new Reader(bytes, at, end)
  if (at >= end) return -1
  const flags = bytes[r.at++]
  if (flags > (ZEROS | BINS | DOUBLES)) return -1
  const doubles = (flags & DOUBLES) !== 0
  if ((flags & ZEROS) !== 0) {
    const zeros = doubles ? r.double() : r.varint()
    if (!(zeros > 0 && zeros < Infinity)) return -1
    into.zeroCount += zeros
  }
  if ((flags & BINS) === 0) return r.at
  if (doubles) {
    const total = r.double()
    const [key, span] = r.span()
    if (r.at < 0 || !(total > 0 && total < Infinity)) return -1
    for (let i = 0; i < span; i++) {
      const c = r.double()
      if (r.at < 0 || !(c >= 0 && c < Infinity) || (c === 0 && (i === 0 || i === span - 1))) return -1
      if (c !== 0) into.addKey(key + i, c)
    }
    if (exact) into.binCount = total
    return r.at
  }
  const [key, span] = r.span()
  let total = 0
  for (let i = 0; i < span && r.at >= 0; ) {
    const t = r.varint()
    if (t % 2 === 0) {
      if (t === 0) return -1
      into.addKey(key + i, t / 2)
      total += t / 2
      i++
    } else {
      const run = (t - 1) / 2
      if (run === 0 || i === 0 || i + run >= span) return -1
      i += run
    }
  }
  return r.at >= 0 && total <= MAX_TOTAL ? r.at : -1
}
