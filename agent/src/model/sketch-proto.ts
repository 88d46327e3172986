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
 * payload of 50 points), and protobufjs's decode alone, which builds an object and an array of
 * numbers per store, takes 1.7 µs a sketch of the load bench, 3.5-4.5 µs with the cell written from
 * what it builds, against 1.1-1.4 µs for reading here and writing the cell (CPU time, side by side).
 * Nothing is allocated per bin, and a claim of more bins than the bytes hold is refused before
 * anything is read.
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

/** A Store message's place and what its first reading found: its dense bins' first key, and where its bins are when they are one packed list. */
interface StoreSpan {
  at: number
  end: number
  offset: number
  /** The packed list's first byte and number of counts, when the store has no other bins (what tracers write); -1 otherwise. */
  packedAt: number
  packed: number
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

let counts = new Float64Array(2048)
/** Protobuf doubles are little-endian: so are the hosts Node runs on but s390x, where they are read one by one. */
const LITTLE_ENDIAN = new Uint8Array(Float64Array.of(1).buffer)[7] === 0x3f

/** `n` packed doubles at `at`, into a reused array. */
function readCounts(r: Reader, at: number, n: number): Float64Array {
  if (counts.length < n) counts = new Float64Array(Math.max(n, 2 * counts.length))
  if (LITTLE_ENDIAN) new Uint8Array(counts.buffer, 0, 8 * n).set(r.bytes.subarray(at, at + 8 * n))
  else for (let j = 0; j < n; j++) counts[j] = r.view.getFloat64(at + 8 * j, true)
  return counts
}

const malformed = (why: string): SketchError => new SketchError(`not a DDSketch protobuf (${why})`)
const zigzag = (v: number): number => (v >>> 1) ^ -(v & 1)

function checkedCount(count: number): number {
  if (!(count >= 0 && Number.isFinite(count))) throw new SketchError(`sketch has an invalid count (${count})`)
  return count
}

/** Reads a Store message's bin count (refused past MAX_PROTO_BINS) and dense offset; its bins are read later, when the mapping is known. */
function readStore(r: Reader, end: number): StoreSpan {
  const span: StoreSpan = { at: r.at, end, offset: 0, packedAt: -1, packed: 0 }
  let bins = 0
  let lists = 0
  while (r.at < end) {
    const tag = r.varint()
    const field = tag >>> 3
    const wire = tag & 7
    if (field === 1 && wire === 2) {
      r.at = r.length()
      bins++
      lists++
    } else if (field === 2 && wire === 2) {
      const listEnd = r.length()
      if ((listEnd - r.at) % 8 !== 0) throw malformed('index out of range')
      span.packedAt = r.at
      span.packed = (listEnd - r.at) / 8
      bins += span.packed
      lists++
      r.at = listEnd
    } else if (field === 2 && wire === 1) {
      r.double()
      bins++
      lists++
    } else if (field === 3 && wire === 0) {
      span.offset = zigzag(r.varint())
    } else {
      r.skip(wire)
    }
  }
  if (bins > MAX_PROTO_BINS) throw new SketchError(`sketch has more than ${MAX_PROTO_BINS} bins`)
  if (lists !== 1) span.packedAt = -1
  return span
}

/** Where a store's bins go. */
interface BinSink {
  bin(key: number, count: number): void
}

/** Calls `sink.bin(key, count)` for every bin of a store in the order written (dense ones from its offset on); empty bins left out. */
function forEachBin(r: Reader, span: StoreSpan | null, sink: BinSink): void {
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
      if (checkedCount(count) > 0) sink.bin(key, count)
    } else if (field === 2 && (wire === 2 || wire === 1)) {
      const listEnd = wire === 2 ? r.length() : r.at + 8
      while (r.at < listEnd) {
        const count = checkedCount(r.double())
        if (count > 0) sink.bin(dense, count)
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
  const bins = new Bins(mapping, writer, i, checkedCount(zeros))
  forEachBin(r, negative, bins.negative)
  if (positive && !bins.packed(r, positive)) forEachBin(r, positive, bins)
  if (!Number.isFinite(bins.total)) throw new SketchError('sketch counts add up past the largest number')
  if (bins.zeros > 0) writer.addZeros(i, bins.zeros)
}

/**
 * A sketch's positive bins into sketch `i` of the writer: at their keys under the agent's own
 * mapping, at their values under another; the mapping is read at the first bin (a sketch with no
 * bins needs none). Negative values, and keys whose value is too small, count as zeros.
 */
class Bins implements BinSink {
  total: number
  /** The negative store's bins, as zeros. */
  readonly negative: BinSink = new Zeros(this)
  private own = false
  private theirs: KeyMapping | null = null

  constructor(
    private readonly mapping: Mapping | null,
    private readonly writer: CompactWriter,
    private readonly i: number,
    public zeros: number,
  ) {
    this.total = zeros
  }

  bin(key: number, count: number): void {
    this.total += count
    if (this.own || (this.theirs === null && this.resolve())) return this.ownKey(key, count)
    const value = this.theirs!.value(key)
    if (!(value > 0 && Number.isFinite(value))) throw new SketchError(`bin key ${key} is out of range`)
    this.writer.add(this.i, value, count)
  }

  /**
   * A store that is one packed list of counts under the agent's own mapping (what pathwise and
   * dd-trace-js write), added at once; false for any other, which is then read bin by bin.
   */
  packed(r: Reader, span: StoreSpan): boolean {
    if (span.packedAt < 0) return false
    const counts = readCounts(r, span.packedAt, span.packed)
    let first = 0
    let last = span.packed - 1
    while (first <= last && counts[first] === 0) first++
    while (last > first && counts[last] === 0) last--
    if (first > last) return true
    if (!(this.own || (this.theirs === null && this.resolve()))) return false
    if (span.offset + first < KEYS.zeroBelow || span.offset + last > KEYS.max) return false
    const added = this.writer.addCounts(this.i, span.offset + first, counts.subarray(first, last + 1))
    // NaN: a count that is not one, or counts past the largest number, which reading bin by bin says.
    if (added !== added) return false
    this.total += added
    return true
  }

  /** Reads the mapping: true if it is the agent's own. */
  private resolve(): boolean {
    const m = checkedMapping(this.mapping)
    this.own = m.gamma === SKETCH_GAMMA && m.indexOffset === 0 && m.interpolation === 0
    if (!this.own) this.theirs = foreignMapping(m)
    return this.own
  }

  private ownKey(key: number, count: number): void {
    if (key < KEYS.min || key > KEYS.max) throw new SketchError(`bin key ${key} is out of range`)
    if (key < KEYS.zeroBelow) this.zeros += count
    else this.writer.addKey(this.i, key, count)
  }

  addZeros(count: number): void {
    this.zeros += count
    this.total += count
  }
}

class Zeros implements BinSink {
  constructor(private readonly bins: Bins) {}
  bin(_key: number, count: number): void {
    this.bins.addZeros(count)
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
