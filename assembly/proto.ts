import { GAMMA } from './generated/sketch-constants'

/**
 * The DDSketch protobuf of `bindings/ts/proto.ts`, byte for byte: mapping {gamma}, positiveValues,
 * an empty negativeValues, zeroCount; fields at their proto3 default are left out. The positive
 * store in one of its two forms: contiguous {contiguousBinCounts, contiguousBinIndexOffset}, every
 * bin from the lowest occupied to the highest (8 bytes each, empty ones too), which every reader
 * takes; or sparse, a binCounts entry {key, count} per occupied bin (13 to 17 bytes), which
 * sketches-js ignores. A store is measured first: `measureStore` picks the form and packs it with
 * the store's length (its `form`), and `sketchSize` and `encodeSketch` take that value.
 */

// @ts-ignore: decorator
@inline
function contiguousLength(n: i32, minKey: i32): i32 {
  const offsetField = n > 0 && minKey != 0 ? 1 + varintSize(zigzag32(minKey)) : 0
  const countsField = n > 0 ? 1 + varintSize(<u32>(8 * n)) + 8 * n : 0
  return countsField + offsetField
}

/** A binCounts entry's own bytes: key (sint32) and count (double). */
// @ts-ignore: decorator
@inline
function entryLength(key: i32): i32 {
  return 1 + varintSize(zigzag32(key)) + 1 + 8
}

/**
 * The store of `n` contiguous bins at `bins` (the first counting `minKey`): its length in bytes,
 * shifted left by one, its lowest bit set when the sparse form is chosen (allowed, and smaller).
 */
export function measureStore(bins: usize, n: i32, minKey: i32, allowSparse: bool): i32 {
  const dense = contiguousLength(n, minKey)
  if (!allowSparse) return dense << 1
  let sparse = 0
  for (let i = 0; i < n && sparse < dense; i++) {
    if (load<f64>(bins + (<usize>i << 3)) != 0) sparse += 2 + entryLength(minKey + i)
  }
  return sparse < dense ? (sparse << 1) | 1 : dense << 1
}

/** Bytes `encodeSketch` writes for a store measured as `form`. */
export function sketchSize(form: i32, zeroCount: f64): i32 {
  const storeLen = form >> 1
  return 11 + 1 + varintSize(<u32>storeLen) + storeLen + 2 + (zeroCount != 0 ? 9 : 0)
}

/** Writes the sketch at `out`; `form` is what `measureStore` gave for the same bins. Returns the end. */
export function encodeSketch(out: usize, bins: usize, n: i32, minKey: i32, zeroCount: f64, form: i32): usize {
  const storeLen = form >> 1
  let p = out
  store<u8>(p++, 0x0a) // mapping
  store<u8>(p++, 9)
  store<u8>(p++, 0x09) // gamma, fixed64
  store<f64>(p, GAMMA)
  p += 8
  store<u8>(p++, 0x12) // positiveValues
  p = writeVarint(p, <u32>storeLen)
  if (form & 1) {
    for (let i = 0; i < n; i++) {
      const count = load<f64>(bins + (<usize>i << 3))
      if (count == 0) continue
      const key = minKey + i
      store<u8>(p++, 0x0a) // binCounts entry
      store<u8>(p++, <u8>entryLength(key))
      store<u8>(p++, 0x08) // key, sint32
      p = writeVarint(p, zigzag32(key))
      store<u8>(p++, 0x11) // count, fixed64
      store<f64>(p, count)
      p += 8
    }
  } else if (n > 0) {
    store<u8>(p++, 0x12) // contiguousBinCounts, packed
    p = writeVarint(p, <u32>(8 * n))
    memory.copy(p, bins, <usize>n << 3)
    p += <usize>n << 3
    if (minKey != 0) {
      store<u8>(p++, 0x18) // contiguousBinIndexOffset, sint32
      p = writeVarint(p, zigzag32(minKey))
    }
  }
  store<u8>(p++, 0x1a) // negativeValues, empty
  store<u8>(p++, 0)
  if (zeroCount != 0) {
    store<u8>(p++, 0x21) // zeroCount, fixed64
    store<f64>(p, zeroCount)
    p += 8
  }
  return p
}

// @ts-ignore: decorator
@inline
function zigzag32(n: i32): u32 {
  return <u32>((n << 1) ^ (n >> 31))
}

function varintSize(n: u32): i32 {
  let size = 1
  while (n >= 0x80) {
    n >>>= 7
    size++
  }
  return size
}

function writeVarint(p: usize, n: u32): usize {
  while (n >= 0x80) {
    store<u8>(p++, <u8>((n & 0x7f) | 0x80))
    n >>>= 7
  }
  store<u8>(p++, <u8>n)
  return p
}
