import { GAMMA } from '../core/sketch-constants.js'

/**
 * DDSketch protobuf (ddsketch.proto of sketches-go), written by hand because it is four
 * fields: mapping {gamma}, positiveValues {contiguousBinCounts, contiguousBinIndexOffset},
 * an empty negativeValues (always present: some decoders dereference it), zeroCount.
 * Fields at their proto3 default are left out. `assembly/proto.ts` writes the same bytes.
 */
export function encodeSketch(bins: Float64Array, start: number, n: number, minKey: number, zeroCount: number): Uint8Array {
  const offsetField = n > 0 && minKey !== 0 ? 1 + varintSize(zigzag32(minKey)) : 0
  const countsField = n > 0 ? 1 + varintSize(8 * n) + 8 * n : 0
  const storeLen = countsField + offsetField
  const size = 11 + 1 + varintSize(storeLen) + storeLen + 2 + (zeroCount !== 0 ? 9 : 0)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  let p = 0
  out[p++] = 0x0a // mapping
  out[p++] = 9
  out[p++] = 0x09 // gamma, fixed64
  view.setFloat64(p, GAMMA, true)
  p += 8
  out[p++] = 0x12 // positiveValues
  p = writeVarint(out, p, storeLen)
  if (n > 0) {
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
  }
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
