import { COMPACT_BINS as BINS, COMPACT_DOUBLES as DOUBLES, COMPACT_ZEROS as ZEROS, MAX_COMPACT_KEY } from '../core/compact-constants.js'
import { BIN_LIMIT, INITIAL_BINS } from '../core/sketch-constants.js'
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

/**
 * Makes room in `s`'s bins for keys [lo, lo + n) before they are added, so that they are added in
 * place: true when they can be (what a sketch's own steps would do then is to add each count at its
 * key and widen its span), false when the span would pass BIN_LIMIT (then it is the sketch's own
 * steps, collapsing). Memory only: keys, counts and every later step are as without it.
 * `assembly/compact.ts` makes the same room.
 */
export function reserve(s: TsSketch, lo: number, n: number): boolean {
  const empty = s.binCount === 0
  const newMin = empty || lo < s.minKey ? lo : s.minKey
  const newMax = empty || lo + n - 1 > s.maxKey ? lo + n - 1 : s.maxKey
  const span = newMax - newMin + 1
  if (span > BIN_LIMIT) return false
  if (!empty && newMin >= s.offset && newMax < s.offset + s.bins.length) return true
  let length = Math.max(INITIAL_BINS, s.bins.length)
  while (length < 2 * span) length *= 2
  const offset = newMin - ((length - span) >> 1)
  if (empty) {
    if (length !== s.bins.length) s.bins = new Float64Array(length)
    s.offset = offset
    return true
  }
  const bins = new Float64Array(length)
  bins.set(s.bins.subarray(s.minKey - s.offset, s.maxKey - s.offset + 1), s.minKey - offset)
  s.bins = bins
  s.offset = offset
  return true
}

function writeVarint(out: Uint8Array, p: number, v: number): number {
  if (v < 128) {
    out[p] = v
    return p + 1
  }
  while (v >= 128) {
    out[p++] = (v % 128) | 128
    v = Math.floor(v / 128)
  }
  out[p++] = v
  return p
}

const zigzag = (k: number): number => ((k << 1) ^ (k >> 31)) >>> 0

/** The most a sketch's compact form takes: flags, zeros and total as doubles, the span's header, BIN_LIMIT doubles. */
export const MAX_COMPACT_SIZE = 1 + 8 + 8 + 5 + 5 + 8 * BIN_LIMIT

/** Writes the compact form of `s` at `out[p]` (at most MAX_COMPACT_SIZE bytes); returns where it ends. */
export function writeCompact(s: TsSketch, out: Uint8Array, p: number): number {
  const end = writeIntegers(s, out, p)
  return end >= 0 ? end : writeDoubles(s, out, p)
}

/**
 * The integer form, or -1 when it cannot hold the sketch: a count that is not an integer or past
 * MAX_COUNT, or bins whose total is not their exact sum. Checked as it writes: a sketch of
 * integers, the usual one, is read once.
 */
function writeIntegers(s: TsSketch, out: Uint8Array, p: number): number {
  if (!(Number.isInteger(s.zeroCount) && s.zeroCount <= MAX_TOTAL && s.binCount <= MAX_TOTAL)) return -1
  const span = s.binCount === 0 ? 0 : s.maxKey - s.minKey + 1
  out[p++] = (s.zeroCount !== 0 ? ZEROS : 0) | (span !== 0 ? BINS : 0)
  if (s.zeroCount !== 0) p = writeVarint(out, p, s.zeroCount)
  if (span === 0) return p
  p = writeVarint(out, writeVarint(out, p, zigzag(s.minKey)), span)
  let run = 0
  let sum = 0
  for (let i = s.minKey - s.offset, last = i + span - 1; i <= last; i++) {
    const c = s.bins[i]
    if (c === 0) {
      run++
      continue
    }
    if (!(Number.isInteger(c) && c <= MAX_COUNT)) return -1
    sum += c
    if (run > 0) p = writeVarint(out, p, 2 * run + 1)
    run = 0
    p = writeVarint(out, p, 2 * c)
  }
  return sum === s.binCount ? p : -1
}

function writeDoubles(s: TsSketch, out: Uint8Array, p: number): number {
  const span = s.binCount === 0 ? 0 : s.maxKey - s.minKey + 1
  const first = s.minKey - s.offset
  out[p++] = (s.zeroCount !== 0 ? ZEROS : 0) | (span !== 0 ? BINS : 0) | DOUBLES
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
  const stated = doubles ? r.double() : 0
  const [key, span] = r.span()
  if (r.at < 0 || (doubles && !(stated > 0 && stated < Infinity))) return -1
  const inPlace = reserve(into, key, span)
  // The bins' total as adding each count in turn makes it.
  let total = into.binCount
  for (let i = 0; i < span; ) {
    let c: number
    if (doubles) {
      c = r.double()
      if (r.at < 0 || !(c >= 0 && c < Infinity) || (c === 0 && (i === 0 || i === span - 1))) return -1
    } else {
      const t = r.varint()
      if (r.at < 0 || t === 0) return -1
      if (t % 2 === 1) {
        const run = (t - 1) / 2
        if (run === 0 || i === 0 || i + run >= span) return -1
        i += run
        continue
      }
      c = t / 2
    }
    if (c !== 0) {
      if (inPlace) {
        into.bins[key + i - into.offset] += c
        total += c
      } else into.addKey(key + i, c)
    }
    i++
  }
  if (!inPlace) return r.at
  if (into.binCount === 0 || key < into.minKey) into.minKey = key
  if (into.binCount === 0 || key + span - 1 > into.maxKey) into.maxKey = key + span - 1
  into.binCount = exact && doubles ? stated : total
  return r.at
}
