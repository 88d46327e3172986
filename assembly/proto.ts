import { GAMMA } from './generated/sketch-constants'

/**
 * The DDSketch protobuf of `bindings/ts/proto.ts`, byte for byte: mapping {gamma},
 * positiveValues {contiguousBinCounts, contiguousBinIndexOffset}, an empty negativeValues,
 * zeroCount; fields at their proto3 default are left out.
 */

function storeLength(n: i32, minKey: i32): i32 {
  const offsetField = n > 0 && minKey != 0 ? 1 + varintSize(zigzag32(minKey)) : 0
  const countsField = n > 0 ? 1 + varintSize(<u32>(8 * n)) + 8 * n : 0
  return countsField + offsetField
}

/** Bytes `encodeSketch` writes for these arguments. */
export function sketchProtoSize(n: i32, minKey: i32, zeroCount: f64): i32 {
  const storeLen = storeLength(n, minKey)
  return 11 + 1 + varintSize(<u32>storeLen) + storeLen + 2 + (zeroCount != 0 ? 9 : 0)
}

/** Writes the sketch of `n` contiguous bins (at `bins`, the first counting `minKey`) at `out`. */
export function encodeSketch(out: usize, bins: usize, n: i32, minKey: i32, zeroCount: f64): void {
  const storeLen = storeLength(n, minKey)
  let p = out
  store<u8>(p++, 0x0a) // mapping
  store<u8>(p++, 9)
  store<u8>(p++, 0x09) // gamma, fixed64
  store<f64>(p, GAMMA)
  p += 8
  store<u8>(p++, 0x12) // positiveValues
  p = writeVarint(p, <u32>storeLen)
  if (n > 0) {
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
  }
}

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
