import { MAX_COMPACT_KEY } from '../core/compact-constants.js'
import { BIN_LIMIT } from '../core/sketch-constants.js'
import { cellWidth, isSketch, spanOk } from './sketch-store.js'
import { MAX_COMPACT_SIZE, readCompact, reserve, resetSketch, writeCompact } from './compact.js'
import { TsSketch } from './sketch.js'

/**
 * Cells in the compact form (`bindings/core/sketch-store.ts`) for a caller that handles sketches
 * itself: the pathwise agent's intake, which reads other tracers' protobufs into cells for a
 * store's `merge` (CompactWriter), and counts their bins into /metrics (CompactReader).
 */

/** Builds cells from values or keys, as a core's sketches would hold them. */
export class CompactWriter {
  readonly width: number
  private readonly sketches: TsSketch[]
  /** Room for a cell of any spans. */
  private readonly out: Uint8Array

  constructor(width: number) {
    this.width = cellWidth(width)
    this.sketches = Array.from({ length: this.width }, () => {
      const s = new TsSketch()
      // Bins for any span from the first key on, up or down: keys added in order never move them.
      reserve(s, 0, BIN_LIMIT)
      return s
    })
    this.out = new Uint8Array(this.width * MAX_COMPACT_SIZE)
  }

  /**
   * Adds `value` to sketch `i` as `Sketch.add` does. An `i` that is not one of the cell's sketches,
   * or a weight that is not positive or would take the sketch's count past the largest number, adds
   * nothing: every cell written reads back.
   */
  add(i: number, value: number, weight = 1): void {
    if (this.fits(i, weight)) this.sketches[i].add(value, weight)
  }

  /**
   * Adds `count` at `key` of sketch `i` (keys below the span's limit fold into its lowest bin, as in
   * a core's sketch). A key that is not an integer within +-MAX_COMPACT_KEY, or a count that is not
   * positive and finite, adds nothing.
   */
  addKey(i: number, key: number, count: number): void {
    if (this.fits(i, count) && Number.isInteger(key) && Math.abs(key) <= MAX_COMPACT_KEY) this.sketches[i].addKey(key, count)
  }

  /**
   * Adds `counts[j]` at key `firstKey + j` to sketch `i` (a 0 adds nothing), as adding each in
   * order would: for a sketch's contiguous bins, read at once into an empty sketch. Returns their
   * total; NaN, having added nothing, when a key is out of range or a count is not finite and at
   * least 0, or when they would take the sketch's count past the largest number.
   */
  addCounts(i: number, firstKey: number, counts: Float64Array): number {
    const n = counts.length
    if (!(isSketch(i, this.width) && Number.isInteger(firstKey) && firstKey >= -MAX_COMPACT_KEY && firstKey + n - 1 <= MAX_COMPACT_KEY)) return NaN
    let sum = 0
    for (let j = 0; j < n; j++) {
      const c = counts[j]
      if (!(c >= 0 && c < Infinity)) return NaN
      sum += c
    }
    if (!this.fits(i, sum)) return sum === 0 ? 0 : NaN
    const s = this.sketches[i]
    if (s.binCount !== 0 || n === 0 || counts[0] === 0 || counts[n - 1] === 0 || !reserve(s, firstKey, n)) {
      for (let j = 0; j < n; j++) if (counts[j] > 0) s.addKey(firstKey + j, counts[j])
      return sum
    }
    s.bins.set(counts, firstKey - s.offset)
    s.minKey = firstKey
    s.maxKey = firstKey + n - 1
    s.binCount = sum
    return sum
  }

  /** Adds `count` zeros to sketch `i` (a count as `add` takes it). */
  addZeros(i: number, count: number): void {
    if (this.fits(i, count)) this.sketches[i].zeroCount += count
  }

  /** Whether `i` is one of the cell's sketches, and `count` positive and within what its count can take. */
  private fits(i: number, count: number): boolean {
    return isSketch(i, this.width) && count > 0 && this.sketches[i].count + count < Infinity
  }

  /** Empties the sketches, dropping a cell begun. */
  clear(): void {
    for (const s of this.sketches) resetSketch(s)
  }

  /** The cell's compact bytes (a view, valid until the next call), and the sketches emptied for the next cell. */
  endCell(): Uint8Array {
    let p = 0
    for (const s of this.sketches) {
      p = writeCompact(s, this.out, p)
      resetSketch(s)
    }
    return this.out.subarray(0, p)
  }
}

/** Reads a compact cell's sketches back, bin by bin. */
export class CompactReader {
  readonly width: number
  private readonly sketches: TsSketch[]

  constructor(width: number) {
    this.width = cellWidth(width)
    this.sketches = Array.from({ length: this.width }, () => new TsSketch())
  }

  /** Reads the cell at `bytes[at, end)`; false (and empty sketches) if it is not one. */
  read(bytes: Uint8Array, at: number, end: number): boolean {
    let p = at
    for (const s of this.sketches) resetSketch(s)
    if (!spanOk(at, end, bytes.length)) return false
    for (const s of this.sketches) {
      p = readCompact(bytes, p, end, s, true)
      if (p < 0) break
    }
    if (p === end) return true
    for (const s of this.sketches) resetSketch(s)
    return false
  }

  zeroCount(i: number): number {
    return isSketch(i, this.width) ? this.sketches[i].zeroCount : NaN
  }

  /** Every occupied bin of sketch `i`, lowest key first. */
  forEachBin(i: number, each: (key: number, count: number) => void): void {
    if (!isSketch(i, this.width)) return
    const s = this.sketches[i]
    if (s.binCount === 0) return
    for (let k = s.minKey; k <= s.maxKey; k++) {
      const c = s.bins[k - s.offset]
      if (c !== 0) each(k, c)
    }
  }
}
