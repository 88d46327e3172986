import { MAX_COMPACT_KEY } from '../core/compact-constants.js'
import { cellWidth } from './sketch-store.js'
import { compactSize, readCompact, resetSketch, writeCompact } from './compact.js'
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
  private out = new Uint8Array(256)

  constructor(width: number) {
    this.width = cellWidth(width)
    this.sketches = Array.from({ length: this.width }, () => new TsSketch())
  }

  /** Adds `value` to sketch `i` as `Sketch.add` does. */
  add(i: number, value: number, weight = 1): void {
    this.sketches[i].add(value, weight)
  }

  /** Adds `count` at `key` of sketch `i` (keys below the span's limit fold into its lowest bin, as in a core's sketch). */
  addKey(i: number, key: number, count: number): void {
    if (!(Number.isInteger(key) && Math.abs(key) <= MAX_COMPACT_KEY)) throw new RangeError(`sketch key ${key} is out of range`)
    if (!(count > 0 && count < Infinity)) throw new RangeError(`sketch count ${count} is not a positive number`)
    this.sketches[i].addKey(key, count)
  }

  /** Adds `count` zeros to sketch `i`. */
  addZeros(i: number, count: number): void {
    if (!(count > 0 && count < Infinity)) throw new RangeError(`sketch count ${count} is not a positive number`)
    this.sketches[i].zeroCount += count
  }

  /** The cell's compact bytes (a view, valid until the next call), and the sketches emptied for the next cell. */
  endCell(): Uint8Array {
    let size = 0
    for (const s of this.sketches) size += compactSize(s)
    if (size > this.out.length) this.out = new Uint8Array(Math.max(size, 2 * this.out.length))
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
    for (const s of this.sketches) {
      p = readCompact(bytes, p, end, s, true)
      if (p < 0) break
    }
    if (p === end) return true
    for (const s of this.sketches) resetSketch(s)
    return false
  }

  zeroCount(i: number): number {
    return this.sketches[i].zeroCount
  }

  /** Every occupied bin of sketch `i`, lowest key first. */
  forEachBin(i: number, each: (key: number, count: number) => void): void {
    const s = this.sketches[i]
    if (s.binCount === 0) return
    for (let k = s.minKey; k <= s.maxKey; k++) {
      const c = s.bins[k - s.offset]
      if (c !== 0) each(k, c)
    }
  }
}
