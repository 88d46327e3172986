import { COMPACT_BINS, COMPACT_DOUBLES, COMPACT_ZEROS, MAX_COMPACT_KEY } from './generated/compact-constants'
import { BIN_LIMIT, INITIAL_BINS } from './generated/sketch-constants'
import { allocZeroed } from './alloc'
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

/**
 * Makes room in `s`'s bins for keys [lo, lo + n) before they are added, so that they are added in
 * place: true when they can be (what a sketch's own steps would do then is to add each count at its
 * key and widen its span), false when the span would pass BIN_LIMIT (then it is the sketch's own
 * steps, collapsing). Memory only: keys, counts and every later step are as without it.
 */
function reserve(s: Sketch, lo: i32, n: i32): bool {
  const empty = s.binCount == 0
  const newMin = empty || lo < s.minKey ? lo : s.minKey
  const newMax = empty || lo + n - 1 > s.maxKey ? lo + n - 1 : s.maxKey
  const span = newMax - newMin + 1
  if (span > BIN_LIMIT) return false
  if (!empty && newMin >= s.offset && newMax < s.offset + s.length) return true
  let length = s.length < INITIAL_BINS ? INITIAL_BINS : s.length
  while (length < 2 * span) length <<= 1
  const offset = newMin - ((length - span) >> 1)
  if (empty) {
    if (length != s.length) {
      if (s.length != 0) heap.free(s.bins)
      s.bins = allocZeroed(<usize>length << 3)
      s.length = length
    }
    s.offset = offset
    return true
  }
  const bins = allocZeroed(<usize>length << 3)
  const used = s.maxKey - s.minKey + 1
  memory.copy(bins + (<usize>(s.minKey - offset) << 3), s.bins + (<usize>(s.minKey - s.offset) << 3), <usize>used << 3)
  heap.free(s.bins)
  s.bins = bins
  s.length = length
  s.offset = offset
  return true
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

function writeVarint(p: usize, v: u64): usize {
  if (v < 128) {
    store<u8>(p, <u8>v)
    return p + 1
  }
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

/** The most a sketch's compact form takes: flags, zeros and total as doubles, the span's header, BIN_LIMIT doubles. */
export const MAX_COMPACT_SIZE: usize = 1 + 8 + 8 + 5 + 5 + 8 * <usize>BIN_LIMIT

/** Writes the compact form of `s` at `p` (at most MAX_COMPACT_SIZE bytes); returns where it ends: bindings/ts/compact.ts's steps. */
export function writeCompact(s: Sketch, p: usize): usize {
  const end = writeIntegers(s, p)
  return end != 0 ? end : writeDoubles(s, p)
}

/** The integer form, or 0 when it cannot hold the sketch (checked as it writes). */
function writeIntegers(s: Sketch, p: usize): usize {
  if (!(isInteger(s.zeroCount) && s.zeroCount <= MAX_TOTAL && s.binCount <= MAX_TOTAL)) return 0
  const n = s.binCount == 0 ? 0 : s.maxKey - s.minKey + 1
  store<u8>(p++, <u8>((s.zeroCount != 0 ? COMPACT_ZEROS : 0) | (n != 0 ? COMPACT_BINS : 0)))
  if (s.zeroCount != 0) p = writeVarint(p, <u64>s.zeroCount)
  if (n == 0) return p
  p = writeVarint(writeVarint(p, zigzag(s.minKey)), <u64>n)
  let run: u64 = 0
  let sum: f64 = 0
  for (let i = s.minKey - s.offset, last = i + n - 1; i <= last; i++) {
    const c = bin(s, i)
    if (c == 0) {
      run++
      continue
    }
    if (!(isInteger(c) && c <= MAX_COUNT)) return 0
    sum += c
    if (run > 0) p = writeVarint(p, 2 * run + 1)
    run = 0
    p = writeVarint(p, 2 * <u64>c)
  }
  return sum == s.binCount ? p : 0
}

function writeDoubles(s: Sketch, p: usize): usize {
  const n = s.binCount == 0 ? 0 : s.maxKey - s.minKey + 1
  store<u8>(p++, <u8>((s.zeroCount != 0 ? COMPACT_ZEROS : 0) | (n != 0 ? COMPACT_BINS : 0) | COMPACT_DOUBLES))
  if (s.zeroCount != 0) {
    store<f64>(p, s.zeroCount)
    p += 8
  }
  if (n == 0) return p
  store<f64>(p, s.binCount)
  p = writeVarint(writeVarint(p + 8, zigzag(s.minKey)), <u64>n)
  memory.copy(p, s.bins + (<usize>(s.minKey - s.offset) << 3), <usize>n << 3)
  return p + (<usize>n << 3)
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
  const stated = doubles ? double() : 0
  const n = readSpan()
  if (readFailed || (doubles && !(stated > 0 && stated < Infinity))) return <usize>fail()
  const key = spanKey
  const inPlace = reserve(into, key, n)
  // The bins' total as adding each count in turn makes it.
  let total = into.binCount
  if (inPlace && !doubles) {
    total = addIntegersInPlace(into.bins + (<usize>(key - into.offset) << 3), n, total)
    if (readFailed) return <usize>fail()
  } else for (let i = 0; i < n; ) {
    let c: f64
    if (doubles) {
      c = double()
      if (readFailed || !(c >= 0 && c < Infinity) || (c == 0 && (i == 0 || i == n - 1))) return <usize>fail()
    } else {
      // Most tokens are one byte.
      const b = at < end ? <u64>load<u8>(at) : 128
      let t: u64
      if (b < 128) {
        at++
        t = b
      } else t = varint()
      if (readFailed || t == 0) return <usize>fail()
      if ((t & 1) == 1) {
        const run = t >> 1
        if (run == 0 || i == 0 || <u64>i + run >= <u64>n) return <usize>fail()
        i += <i32>run
        continue
      }
      c = <f64>(t >> 1)
    }
    if (c != 0) {
      if (inPlace) {
        const bin = into.bins + (<usize>(key + i - into.offset) << 3)
        store<f64>(bin, load<f64>(bin) + c)
        total += c
      } else into.addKey(key + i, c)
    }
    i++
  }
  if (!inPlace) return at
  if (into.binCount == 0 || key < into.minKey) into.minKey = key
  if (into.binCount == 0 || key + n - 1 > into.maxKey) into.maxKey = key + n - 1
  into.binCount = exact && doubles ? stated : total
  return at
}

/**
 * readCompact's loop for integer counts added in place, the usual case: the `n` keys' tokens from
 * `at`, each count added to its bin from `bin` on, with the same checks; returns `total` with each
 * count added in turn (readFailed set if the tokens are not a span's).
 */
function addIntegersInPlace(bin: usize, n: i32, total: f64): f64 {
  const last = bin + (<usize>n << 3)
  const first = bin
  let p = at
  while (bin < last) {
    if (p >= end) {
      fail()
      return total
    }
    let t = <u64>load<u8>(p)
    if (t < 128) p++
    else {
      at = p
      t = varint()
      if (readFailed) return total
      p = at
    }
    if ((t & 1) == 1) {
      const run = t >> 1
      if (run == 0 || bin == first || <u64>bin + (run << 3) >= <u64>last) {
        fail()
        return total
      }
      bin += <usize>run << 3
      continue
    }
    if (t == 0) {
      fail()
      return total
    }
    const c = <f64>(t >> 1)
    store<f64>(bin, load<f64>(bin) + c)
    total += c
    bin += 8
  }
  at = p
  return total
}
