import { BIN_LIMIT, BOUNDARY_MARGIN, GAMMA, INITIAL_BINS, KEY_MULTIPLIER, MIN_INDEXABLE_VALUE } from '../core/sketch-constants.js'
import type { Sketch } from '../core/types.js'
import { ln } from './log.js'
import { encodeSketch, measureStore, sketchSize, writeSketch } from './proto.js'

/**
 * The sketch key of a value above MIN_INDEXABLE_VALUE. Math.log is several times faster than the
 * portable `ln` that keeps the cores identical; it decides wherever the two cannot disagree, and
 * `ln` decides near a boundary, so the key is always the one the Wasm core computes.
 */
export function keyOf(value: number): number {
  const x = Math.log(value) * KEY_MULTIPLIER
  const key = Math.ceil(x)
  const gap = key - x
  return gap > BOUNDARY_MARGIN && gap < 1 - BOUNDARY_MARGIN ? key : Math.ceil(ln(value) * KEY_MULTIPLIER)
}

/** The value a key stands for: gamma^key * 2 / (1 + gamma), within 1% of every value of the key. */
export function valueOf(key: number): number {
  return (Math.pow(GAMMA, key) * 2) / (1 + GAMMA)
}

/**
 * DDSketch over non-negative values: a dense store of positive keys that keeps at most
 * BIN_LIMIT bins, folding keys below (maxKey - BIN_LIMIT + 1) into the lowest kept bin,
 * plus a zero count. `assembly/sketch.ts` implements the same steps.
 */
export class TsSketch implements Sketch {
  /** bins[i] counts key (offset + i). */
  bins: Float64Array = EMPTY
  offset = 0
  /** Lowest and highest occupied keys; meaningful while binCount > 0. */
  minKey = 0
  maxKey = 0
  binCount = 0
  zeroCount = 0

  get count(): number {
    return this.binCount + this.zeroCount
  }

  add(value: number, weight = 1): void {
    if (!(weight > 0)) return
    if (value > MIN_INDEXABLE_VALUE) this.addKey(keyOf(value), weight)
    else this.zeroCount += weight
  }

  addKey(key: number, weight: number): void {
    if (this.binCount === 0) {
      if (this.bins.length === 0) this.bins = new Float64Array(INITIAL_BINS)
      this.offset = key - (this.bins.length >> 1)
      this.minKey = key
      this.maxKey = key
    } else if (key < this.minKey || key > this.maxKey) {
      const newMax = key > this.maxKey ? key : this.maxKey
      let newMin = key < this.minKey ? key : this.minKey
      if (newMax - newMin + 1 > BIN_LIMIT) newMin = newMax - BIN_LIMIT + 1
      if (newMin < this.offset || newMax >= this.offset + this.bins.length || newMin > this.minKey) {
        this.relocate(newMin, newMax)
      }
      this.minKey = newMin
      this.maxKey = newMax
      if (key < newMin) key = newMin
    }
    this.bins[key - this.offset] += weight
    this.binCount += weight
  }

  /** Moves the occupied bins into a window that holds [newMin, newMax], folding keys below newMin into it. */
  private relocate(newMin: number, newMax: number): void {
    const span = newMax - newMin + 1
    const old = this.bins
    const oldOffset = this.offset
    let length = old.length
    // span <= BIN_LIMIT, a power of two: doubling stops there
    while (length < span) length *= 2
    const bins = new Float64Array(length)
    const offset = newMin - ((length - span) >> 1)
    for (let k = this.minKey; k <= this.maxKey; k++) {
      const c = old[k - oldOffset]
      if (c !== 0) bins[(k < newMin ? newMin : k) - offset] += c
    }
    this.bins = bins
    this.offset = offset
  }

  merge(other: Sketch): void {
    const o = other as TsSketch
    this.zeroCount += o.zeroCount
    if (o.binCount === 0) return
    for (let k = o.minKey; k <= o.maxKey; k++) {
      const c = o.bins[k - o.offset]
      if (c !== 0) this.addKey(k, c)
    }
  }

  /** The key at rank (0-based, by cumulative weight), or NaN for a rank among the zeros. */
  keyAtRank(rank: number): number {
    if (rank < this.zeroCount) return NaN
    let running = this.zeroCount
    for (let k = this.minKey; k <= this.maxKey; k++) {
      running += this.bins[k - this.offset]
      if (running > rank) return k
    }
    return this.maxKey
  }

  quantile(q: number): number {
    if (!(q >= 0 && q <= 1) || this.count === 0) return NaN
    const key = this.keyAtRank(q * (this.count - 1))
    return key !== key ? 0 : valueOf(key)
  }

  toProto(): Uint8Array {
    return encodeSketch(this.bins, this.minKey - this.offset, this.occupied(), this.minKey, this.zeroCount)
  }

  /** The bins from the lowest occupied to the highest. */
  private occupied(): number {
    return this.binCount === 0 ? 0 : this.maxKey - this.minKey + 1
  }

  /** The protobuf form of the store (see `measureStore`): sparse only if `allowSparse` and smaller. */
  measure(allowSparse: boolean): number {
    return measureStore(this.bins, this.minKey - this.offset, this.occupied(), this.minKey, allowSparse)
  }

  protoSize(form: number): number {
    return sketchSize(form, this.zeroCount)
  }

  /** Writes the protobuf (protoSize(form) bytes) at `at`; returns its end. */
  write(out: Uint8Array, view: DataView, at: number, form: number): number {
    return writeSketch(out, view, at, this.bins, this.minKey - this.offset, this.occupied(), this.minKey, this.zeroCount, form)
  }

  free(): void {
    this.bins = EMPTY
    this.binCount = 0
    this.zeroCount = 0
  }
}

const EMPTY = new Float64Array(0)
