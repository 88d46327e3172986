import { COMPACT_BINS, COMPACT_DOUBLES, COMPACT_ZEROS, MAX_COMPACT_KEY } from './generated/compact-constants'
import { BIN_LIMIT } from './generated/sketch-constants'
import { Sketch } from './sketch'

/**
 * The compact form of a sketch (`bindings/core/sketch-store.ts`), written from and read into the
 * Wasm core's sketches: the steps of `bindings/ts/compact.ts`, byte for byte.
 */

/** A count the integer form holds: twice it is a varint of 53 bits at most. */
const MAX_COUNT: f64 = 4503599627370496 // 2^52
/** The bins' total the integer form holds exactly. */
const MAX_TOTAL: f64 = 9007199254740992 // 2^53
const MAX_VARINT_BYTES = 8

/** Set by `readCompact` when the bytes are not a compact sketch. */
export let readFailed = false

/** Empties a sketch, keeping its bins' memory for the next one. */
export function resetSketch(s: Sketch): void {
  if (s.binCount != 0) memory.fill(s.bins + (<usize>(s.minKey - s.offset) << 3), 0, <usize>(s.maxKey - s.minKey + 1) << 3)
  s.binCount = 0
  s.zeroCount = 0
}

// @ts-ignore: decorator
@inline
function bin(s: Sketch, i: i32): f64 {
  return load<f64>(s.bins + (<usize>i << 3))
}

// @ts-ignore: decorator
@inline
function zigzag(k: i32): u32 {
  return <u32>((k << 1) ^ (k >> 31))
}

function varintSize(v: u64): i32 {
  let size = 1
  while (v >= 128) {
    v >>= 7
    size++
  }
  return size
}

function writeVarint(p: usize, v: u64): usize {
  while (v >= 128) {
    store<u8>(p++, <u8>((v & 127) | 128))
    v >>= 7
  }
  store<u8>(p++, <u8>v)
  return p
}

// @ts-ignore: decorator
@inline
function isInteger(v: f64): bool {
  return v == Math.floor(v)
}

function span(s: Sketch): i32 {
  return s.binCount == 0 ? 0 : s.maxKey - s.minKey + 1
}

/** Whether the integer form holds the sketch: integer counts, and bins whose total is their exact sum. */
function integral(s: Sketch): bool {
  if (!(isInteger(s.zeroCount) && s.zeroCount <= MAX_TOTAL)) return false
  if (s.binCount == 0) return true
  if (!(s.binCount <= MAX_TOTAL)) return false
  let sum: f64 = 0
  for (let i = s.minKey - s.offset, last = s.maxKey - s.offset; i <= last; i++) {
    const c = bin(s, i)
    if (!(isInteger(c) && c <= MAX_COUNT)) return false
    sum += c
  }
  return sum == s.binCount
}

/** Bytes `writeCompact` writes for `s`. */
export function compactSize(s: Sketch): i32 {
  const n = span(s)
  const head = n == 0 ? 0 : varintSize(zigzag(s.minKey)) + varintSize(<u64>n)
  if (!integral(s)) return 1 + (s.zeroCount != 0 ? 8 : 0) + (n == 0 ? 0 : 8 + head + 8 * n)
  let size = 1 + (s.zeroCount != 0 ? varintSize(<u64>s.zeroCount) : 0)
  if (n == 0) return size
  size += head
  let run: u64 = 0
  for (let i = s.minKey - s.offset, last = s.maxKey - s.offset; i <= last; i++) {
    const c = bin(s, i)
    if (c == 0) {
      run++
      continue
    }
    if (run > 0) size += varintSize(2 * run + 1)
    run = 0
    size += varintSize(2 * <u64>c)
  }
  return size
}

/** Writes the compact form of `s` at `p` (compactSize(s) bytes); returns where it ends. */
export function writeCompact(s: Sketch, p: usize): usize {
  const n = span(s)
  const first = s.minKey - s.offset
  const doubles = !integral(s)
  store<u8>(p++, <u8>((s.zeroCount != 0 ? COMPACT_ZEROS : 0) | (n != 0 ? COMPACT_BINS : 0) | (doubles ? COMPACT_DOUBLES : 0)))
  if (doubles) {
    if (s.zeroCount != 0) {
      store<f64>(p, s.zeroCount)
      p += 8
    }
    if (n == 0) return p
    store<f64>(p, s.binCount)
    p = writeVarint(writeVarint(p + 8, zigzag(s.minKey)), <u64>n)
    memory.copy(p, s.bins + (<usize>first << 3), <usize>n << 3)
    return p + (<usize>n << 3)
  }
  if (s.zeroCount != 0) p = writeVarint(p, <u64>s.zeroCount)
  if (n == 0) return p
  p = writeVarint(writeVarint(p, zigzag(s.minKey)), <u64>n)
  let run: u64 = 0
  for (let i = first, last = first + n - 1; i <= last; i++) {
    const c = bin(s, i)
    if (c == 0) {
      run++
      continue
    }
    if (run > 0) p = writeVarint(p, 2 * run + 1)
    run = 0
    p = writeVarint(p, 2 * <u64>c)
  }
  return p
}

/** Where reading is, and where the bytes end; `at` is 0 once reading has failed. */
let at: usize = 0
let end: usize = 0

function fail(): u64 {
  readFailed = true
  at = 0
  return 0
}

/** A varint of 53 bits at most. */
function varint(): u64 {
  let v: u64 = 0
  for (let n = 0; n < MAX_VARINT_BYTES; n++) {
    if (readFailed || at >= end) return fail()
    const b = <u64>load<u8>(at++)
    v |= (b & 127) << (<u64>(7 * n))
    if (b < 128) return v <= <u64>MAX_TOTAL ? v : fail()
  }
  return fail()
}

function double(): f64 {
  if (readFailed || at + 8 > end) {
    fail()
    return 0
  }
  const v = load<f64>(at)
  at += 8
  return v
}

let spanKey: i32 = 0

/** The span (its lowest key into spanKey), within the limits every sketch keeps; 0 once failed. */
function readSpan(): i32 {
  const z = varint()
  const key = (z & 1) == 0 ? <i64>(z >> 1) : -<i64>((z + 1) >> 1)
  const n = <i64>varint()
  if (readFailed || !(n >= 1 && n <= BIN_LIMIT && key >= -MAX_COMPACT_KEY && key + n - 1 <= MAX_COMPACT_KEY)) {
    fail()
    return 0
  }
  spanKey = <i32>key
  return <i32>n
}

/**
 * Reads one compact sketch at [from, to) and adds it into `into` as `Sketch.merge` adds a sketch:
 * its zeros, then each bin's count in key order. `exact`: `into` is empty and becomes the sketch
 * exactly, its bins' total included. Returns where the sketch ends, or 0 (and sets readFailed)
 * if the bytes are not a compact sketch (`into` is then to be thrown away).
 */
export function readCompact(from: usize, to: usize, into: Sketch, exact: bool): usize {
  readFailed = false
  at = from
  end = to
  if (at >= end) return <usize>fail()
  const flags = <i32>load<u8>(at++)
  if (flags > (COMPACT_ZEROS | COMPACT_BINS | COMPACT_DOUBLES)) return <usize>fail()
  const doubles = (flags & COMPACT_DOUBLES) != 0
  if ((flags & COMPACT_ZEROS) != 0) {
    const zeros = doubles ? double() : <f64>varint()
    if (readFailed || !(zeros > 0 && zeros < Infinity)) return <usize>fail()
    into.zeroCount += zeros
  }
  if ((flags & COMPACT_BINS) == 0) return at
  if (doubles) {
    const total = double()
    const n = readSpan()
    if (readFailed || !(total > 0 && total < Infinity)) return <usize>fail()
    const key = spanKey
    for (let i = 0; i < n; i++) {
      const c = double()
      if (readFailed || !(c >= 0 && c < Infinity) || (c == 0 && (i == 0 || i == n - 1))) return <usize>fail()
      if (c != 0) into.addKey(key + i, c)
    }
    if (exact) into.binCount = total
    return at
  }
  const n = readSpan()
  const key = spanKey
  let total: f64 = 0
  for (let i = 0; i < n && !readFailed; ) {
    const t = varint()
    if ((t & 1) == 0) {
      if (t == 0) return <usize>fail()
      const c = <f64>(t >> 1)
      into.addKey(key + i, c)
      total += c
      i++
    } else {
      const run = t >> 1
      if (run == 0 || i == 0 || <u64>i + run >= <u64>n) return <usize>fail()
      i += <i32>run
    }
  }
  return !readFailed && total <= MAX_TOTAL ? at : <usize>fail()
}
