import { GAMMA } from '../core/sketch-constants.js'

/**
 * DDSketch protobuf (ddsketch.proto of sketches-go), written by hand because it is four fields:
 * mapping {gamma}, positiveValues, an empty negativeValues (always present: some decoders
 * dereference it), zeroCount; fields at their proto3 default are left out. The positive store in
 * one of its two forms: contiguous {contiguousBinCounts, contiguousBinIndexOffset}, every bin from
 * the lowest occupied to the highest (8 bytes each, empty ones too), which every reader takes; or
 * sparse, a binCounts entry {key, count} per occupied bin (13 to 17 bytes), which sketches-js
 * ignores. A store is measured first: `measureStore` picks the form and packs it with the store's
 * length (its `form`), and `sketchSize` and `writeSketch` take that value. `assembly/proto.ts`
 * writes the same bytes.
 */

function contiguousLength(n: number, minKey: number): number {
  const offsetField = n > 0 && minKey !== 0 ? 1 + varintSize(zigzag32(minKey)) : 0
  const countsField = n > 0 ? 1 + varintSize(8 * n) + 8 * n : 0
  return countsField + offsetField
}

/** A binCounts entry's own bytes: key (sint32) and count (double). */
function entryLength(key: number): number {
  return 1 + varintSize(zigzag32(key)) + 1 + 8
}

/**
 * The store of the `n` bins of `bins` from `start` (the first counting `minKey`): its length in
 * bytes, shifted left by one, its lowest bit set when the sparse form is chosen (allowed, and smaller).
 */
export function measureStore(bins: Float64Array, start: number, n: number, minKey: number, allowSparse: boolean): number {
  const dense = contiguousLength(n, minKey)
  if (!allowSparse) return dense * 2
  let sparse = 0
  for (let i = 0; i < n && sparse < dense; i++) if (bins[start + i] !== 0) sparse += 2 + entryLength(minKey + i)
  return sparse < dense ? sparse * 2 + 1 : dense * 2
}

/** Bytes `writeSketch` writes for a store measured as `form`. */
export function sketchSize(form: number, zeroCount: number): number {
  const storeLen = form >>> 1
  return 11 + 1 + varintSize(storeLen) + storeLen + 2 + (zeroCount !== 0 ? 9 : 0)
}

/** Writes the sketch at `p` of `out` (`view` over the same bytes); `form` is what `measureStore` gave for the same bins. Returns the end. */
export function writeSketch(out: Uint8Array, view: DataView, p: number, bins: Float64Array, start: number, n: number, minKey: number, zeroCount: number, form: number): number {
  out[p++] = 0x0a // mapping
  out[p++] = 9
  out[p++] = 0x09 // gamma, fixed64
  view.setFloat64(p, GAMMA, true)
  p += 8
  out[p++] = 0x12 // positiveValues
  p = writeVarint(out, p, form >>> 1)
  if (form & 1) {
    for (let i = 0; i < n; i++) {
      const count = bins[start + i]
      if (count === 0) continue
      const key = minKey + i
      out[p++] = 0x0a // binCounts entry
      out[p++] = entryLength(key)
      out[p++] = 0x08 // key, sint32
      p = writeVarint(out, p, zigzag32(key))
      out[p++] = 0x11 // count, fixed64
      view.setFloat64(p, count, true)
      p += 8
    }
  } else if (n > 0) {
    out[p++] = 0x12 // contiguousBinCounts, packed
    p = writeVarint(out, p, 8 * n)
    for (let i = 0; i < n; i++, p += 8) view.setFloat64(p, bins[start + i], true)
    if (minKey !== 0) {
      out[p++] = 0x18 // contiguousBinIndexOffset, sint32
      p = writeVarint(out, p, zigzag32(minKey))
    }
  }
  out[p++] = 0x1a // negativeValues, empty
  out[p++] = 0
  if (zeroCount !== 0) {
    out[p++] = 0x21 // zeroCount, fixed64
    view.setFloat64(p, zeroCount, true)
    p += 8
  }
  return p
}

/** The sketch alone, in the contiguous form. */
export function encodeSketch(bins: Float64Array, start: number, n: number, minKey: number, zeroCount: number): Uint8Array {
  const form = measureStore(bins, start, n, minKey, false)
  const out = new Uint8Array(sketchSize(form, zeroCount))
  writeSketch(out, new DataView(out.buffer), 0, bins, start, n, minKey, zeroCount, form)
  return out
}

function zigzag32(n: number): number {
  return ((n << 1) ^ (n >> 31)) >>> 0
}

function varintSize(n: number): number {
  let size = 1
  while (n >= 0x80) {
    n >>>= 7
    size++
  }
  return size
}

function writeVarint(out: Uint8Array, p: number, n: number): number {
  while (n >= 0x80) {
    out[p++] = (n & 0x7f) | 0x80
    n >>>= 7
  }
  out[p++] = n
  return p
}
