import { createRequire } from 'node:module'
import type { CompactWriter } from 'pathwise/core'
import { keyValue, MIN_INDEXABLE_VALUE, SKETCH_GAMMA } from './sketch.js'

/**
 * A DDSketch protobuf from any tracer (ddsketch.proto of sketches-go), read into a sketch of a
 * CompactWriter: a cell of the store. Both store forms are read, the contiguous bins and the sparse
 * `binCounts` map. Bins under the agent's own mapping (gamma of 1%, no offset, no interpolation:
 * what pathwise, dd-trace-js and sketches-js write) are taken key for key; under any other, each
 * bin is added at its value under the sender's mapping (@datadog/sketches-js's KeyMapping). The
 * negative store counts as zeros: latencies and sizes are never negative.
 *
 * Read by hand rather than by protobufjs: this runs for every sketch of every payload (150 a
 * payload of 50 points), and protobufjs's decode, which builds an object and an array per store,
 * took 2.6 µs a sketch against 0.4 here (agent/test/agent-sketch-proto.test.ts checks both read the
 * same). Nothing is allocated per bin, and a claim of more bins than the bytes hold is refused
 * before anything is read.
 */

export class SketchError extends Error {}

/** Bins one protobuf may hold: a collapsing sketch sends at most 2048; more is not a tracer's sketch. */
const MAX_PROTO_BINS = 65_536

interface KeyMapping {
  value(key: number): number
}
const require = createRequire(import.meta.url)
const mappings = require('@datadog/sketches-js/dist/ddsketch/mapping/index.js') as {
  KeyMapping: { fromProto(m: unknown): KeyMapping }
}

/** Keys of the agent's mapping whose value is a positive double, and below which a value counts as zero. */
const KEYS = (() => {
  let max = 0
  while (Number.isFinite(keyValue(max + 1))) max++
  let min = 0
  while (keyValue(min - 1) > 0) min--
  let zeroBelow = min
  while (!(keyValue(zeroBelow) > MIN_INDEXABLE_VALUE)) zeroBelow++
  return { min, max, zeroBelow }
})()

/** A Store message's place and what its first reading found: how many bins it claims, and its dense bins' first key. */
interface StoreSpan {
  at: number
  end: number
  offset: number
}

class Reader {
  readonly view: DataView
  constructor(
    readonly bytes: Uint8Array,
    public at: number,
    public end: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  done(): boolean {
    return this.at >= this.end
  }

  /** A varint's low 32 bits (what protobuf's 32-bit fields keep), the rest skipped. */
  varint(): number {
    let v = 0
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.at >= this.end) throw malformed('index out of range')
      const b = this.bytes[this.at++]
      if (shift < 32) v |= (b & 127) << shift
      if (b < 128) return v >>> 0
    }
    throw malformed('invalid varint encoding')
  }

  double(): number {
    if (this.at + 8 > this.end) throw malformed('index out of range')
    const v = this.view.getFloat64(this.at, true)
    this.at += 8
    return v
  }

  /** A length-delimited field: its end. */
  length(): number {
    const n = this.varint()
    if (this.at + n > this.end) throw malformed('index out of range')
    return this.at + n
  }

  skip(wire: number): void {
    if (wire === 0) this.varint()
    else if (wire === 1) this.fixed(8)
    else if (wire === 2) this.at = this.length()
    else if (wire === 5) this.fixed(4)
    else throw malformed(`invalid wire type ${wire}`)
  }

  private fixed(n: number): void {
    if (this.at + n > this.end) throw malformed('index out of range')
    this.at += n
  }
}

const malformed = (why: string): SketchError => new SketchError(`not a DDSketch protobuf (${why})`)
const zigzag = (v: number): number => (v >>> 1) ^ -(v & 1)

function checkedCount(count: number): number {
  if (!(count >= 0 && Number.isFinite(count))) throw new SketchError(`sketch has an invalid count (${count})`)
  return count
}

/** Reads a Store message's bin count (refused past MAX_PROTO_BINS) and dense offset; its bins are read later, when the mapping is known. */
function readStore(r: Reader, end: number): StoreSpan {
  const span: StoreSpan = { at: r.at, end, offset: 0 }
  let bins = 0
  while (r.at < end) {
    const tag = r.varint()
    const field = tag >>> 3
    const wire = tag & 7
    if (field === 1 && wire === 2) {
      r.at = r.length()
      bins++
    } else if (field === 2 && wire === 2) {
      const listEnd = r.length()
      if ((listEnd - r.at) % 8 !== 0) throw malformed('index out of range')
      bins += (listEnd - r.at) / 8
      r.at = listEnd
    } else if (field === 2 && wire === 1) {
      r.double()
      bins++
    } else if (field === 3 && wire === 0) {
      span.offset = zigzag(r.varint())
    } else {
      r.skip(wire)
    }
  }
  if (bins > MAX_PROTO_BINS) throw new SketchError(`sketch has more than ${MAX_PROTO_BINS} bins`)
  return span
}

/** Calls `each(key, count)` for every bin of a store in the order written (dense ones from its offset on); empty bins left out. */
function forEachBin(r: Reader, span: StoreSpan | null, each: (key: number, count: number) => void): void {
  if (!span) return
  let dense = span.offset
  r.at = span.at
  while (r.at < span.end) {
    const tag = r.varint()
    const field = tag >>> 3
    const wire = tag & 7
    if (field === 1 && wire === 2) {
      const entryEnd = r.length()
      let key = 0
      let count = 0
      while (r.at < entryEnd) {
        const t = r.varint()
        if (t >>> 3 === 1 && (t & 7) === 0) key = zigzag(r.varint())
        else if (t >>> 3 === 2 && (t & 7) === 1) count = r.double()
        else r.skip(t & 7)
      }
      if (checkedCount(count) > 0) each(key, count)
    } else if (field === 2 && (wire === 2 || wire === 1)) {
      const listEnd = wire === 2 ? r.length() : r.at + 8
      while (r.at < listEnd) {
        const count = checkedCount(r.double())
        if (count > 0) each(dense, count)
        dense++
      }
    } else {
      r.skip(wire)
    }
  }
}

interface Mapping {
  gamma: number
  indexOffset: number
  interpolation: number
}

function readMapping(r: Reader, end: number): Mapping {
  const m: Mapping = { gamma: 0, indexOffset: 0, interpolation: 0 }
  while (r.at < end) {
    const tag = r.varint()
    const field = tag >>> 3
    const wire = tag & 7
    if (field === 1 && wire === 1) m.gamma = r.double()
    else if (field === 2 && wire === 1) m.indexOffset = r.double()
    else if (field === 3 && wire === 0) m.interpolation = r.varint()
    else r.skip(wire)
  }
  return m
}

/**
 * Reads a DDSketch protobuf into sketch `i` of `writer`: its bins at their keys (under the agent's
 * mapping), its zero count and negative values as zeros. Throws SketchError on anything malformed,
 * having added nothing or part of it: the caller drops the cell (and the payload).
 */
export function readSketchProto(bytes: Uint8Array, writer: CompactWriter, i: number): void {
  const r = new Reader(bytes, 0, bytes.length)
  let mapping: Mapping | null = null
  let positive: StoreSpan | null = null
  let negative: StoreSpan | null = null
  let zeros = 0
  while (!r.done()) {
    const tag = r.varint()
    const field = tag >>> 3
    const wire = tag & 7
    if (field === 1 && wire === 2) {
      const end = r.length()
      mapping = readMapping(r, end)
    } else if ((field === 2 || field === 3) && wire === 2) {
      const end = r.length()
      const span = readStore(r, end)
      if (field === 2) positive = span
      else negative = span
    } else if (field === 4 && wire === 1) {
      zeros = r.double()
    } else {
      r.skip(wire)
    }
  }
  zeros = checkedCount(zeros)
  forEachBin(r, negative, (_, count) => (zeros += count))
  // The mapping is read at the first bin: a sketch with no bins needs none.
  let add: ((key: number, count: number) => void) | null = null
  let total = zeros
  forEachBin(r, positive, (key, count) => {
    add ??= adder(checkedMapping(mapping), writer, i, (n) => (zeros += n))
    add(key, count)
    total += count
  })
  if (!Number.isFinite(total)) throw new SketchError('sketch counts add up past the largest number')
  if (zeros > 0) writer.addZeros(i, zeros)
}

/** How a bin is added under mapping `m`: at its key under the agent's own, at its value under another. */
function adder(m: Mapping, writer: CompactWriter, i: number, addZeros: (count: number) => void): (key: number, count: number) => void {
  if (m.gamma === SKETCH_GAMMA && m.indexOffset === 0 && m.interpolation === 0) {
    return (key, count) => {
      if (key < KEYS.min || key > KEYS.max) throw new SketchError(`bin key ${key} is out of range`)
      if (key < KEYS.zeroBelow) addZeros(count)
      else writer.addKey(i, key, count)
    }
  }
  const theirs = foreignMapping(m)
  return (key, count) => {
    const value = theirs.value(key)
    if (!(value > 0 && Number.isFinite(value))) throw new SketchError(`bin key ${key} is out of range`)
    writer.add(i, value, count)
  }
}

function checkedMapping(m: Mapping | null): Mapping {
  if (!m || !(m.gamma > 1 && Number.isFinite(m.gamma))) throw new SketchError('sketch mapping has no valid gamma')
  if (!Number.isFinite(m.indexOffset)) throw new SketchError('sketch mapping has an invalid index offset')
  return m
}

function foreignMapping(m: Mapping): KeyMapping {
  try {
    return mappings.KeyMapping.fromProto({ gamma: m.gamma, indexOffset: m.indexOffset, interpolation: m.interpolation })
  } catch (err) {
    throw new SketchError(`unsupported sketch mapping (${(err as Error).message})`)
  }
}
