import { allocZeroed } from './alloc'
import { BIN_LIMIT, BOUNDARY_MARGIN, INITIAL_BINS, KEY_MULTIPLIER, MIN_INDEXABLE_VALUE } from './generated/sketch-constants'
import { ln } from './log'
import { encodeSketch, measureStore, sketchSize } from './proto'

/** Stands for "counts as a zero" where a key is expected: real keys lie within +-36000. */
export const ZERO_KEY: i32 = i32.MIN_VALUE

/**
 * The sketch key of `value`, or ZERO_KEY for a value not above MIN_INDEXABLE_VALUE (NaN included).
 * Math.log decides where it cannot disagree with the portable `ln`; `ln` decides near a boundary.
 */
// @ts-ignore: decorator
@inline
export function keyOrZero(value: f64): i32 {
  if (!(value > MIN_INDEXABLE_VALUE)) return ZERO_KEY
  const x = Math.log(value) * KEY_MULTIPLIER
  const key = Math.ceil(x)
  const gap = key - x
  return gap > BOUNDARY_MARGIN && gap < 1 - BOUNDARY_MARGIN ? <i32>key : <i32>Math.ceil(ln(value) * KEY_MULTIPLIER)
}

function allocBins(length: i32): usize {
  return allocZeroed(<usize>length << 3)
}

/**
 * The DDSketch of `bindings/ts/sketch.ts`, step for step: a dense store of positive keys that keeps
 * at most BIN_LIMIT bins, folding keys below (maxKey - BIN_LIMIT + 1) into the lowest kept bin,
 * plus a zero count. Unmanaged: it lives in raw heap memory (alone, or inside a stats point) and
 * is zeroed to be empty, so no GC runs and no write barrier is paid.
 */
// @ts-ignore: decorator
@unmanaged
export class Sketch {
  /** bins[i] counts key (offset + i); 0 until the first key. */
  bins: usize
  /** Bins allocated at `bins`. */
  length: i32
  offset: i32
  /** Lowest and highest occupied keys; meaningful while binCount > 0. */
  minKey: i32
  maxKey: i32
  binCount: f64
  zeroCount: f64

  // @ts-ignore: decorator
  @inline
  add(value: f64, weight: f64): void {
    if (weight > 0) this.addKeyOrZero(keyOrZero(value), weight)
  }

  /** Adds a key from keyOrZero (computed ahead, so that a checkpoint's three logarithms overlap). */
  // @ts-ignore: decorator
  @inline
  addKeyOrZero(key: i32, weight: f64): void {
    if (key == ZERO_KEY) this.zeroCount += weight
    else this.addKey(key, weight)
  }

  /** addKey's common case, a key within the occupied range, inline; the rest in addKeyOutside. */
  // @ts-ignore: decorator
  @inline
  addKey(key: i32, weight: f64): void {
    if (this.binCount != 0 && key >= this.minKey && key <= this.maxKey) {
      const bin = this.bins + (<usize>(key - this.offset) << 3)
      store<f64>(bin, load<f64>(bin) + weight)
      this.binCount += weight
    } else {
      this.addKeyOutside(key, weight)
    }
  }

  /** The steps of TsSketch#addKey. */
  private addKeyOutside(key: i32, weight: f64): void {
    if (this.binCount == 0) {
      if (this.length == 0) {
        this.bins = allocBins(INITIAL_BINS)
        this.length = INITIAL_BINS
      }
      this.offset = key - (this.length >> 1)
      this.minKey = key
      this.maxKey = key
    } else if (key < this.minKey || key > this.maxKey) {
      const newMax = key > this.maxKey ? key : this.maxKey
      let newMin = key < this.minKey ? key : this.minKey
      if (newMax - newMin + 1 > BIN_LIMIT) newMin = newMax - BIN_LIMIT + 1
      if (newMin < this.offset || newMax >= this.offset + this.length || newMin > this.minKey) {
        this.relocate(newMin, newMax)
      }
      this.minKey = newMin
      this.maxKey = newMax
      if (key < newMin) key = newMin
    }
    const bin = this.bins + (<usize>(key - this.offset) << 3)
    store<f64>(bin, load<f64>(bin) + weight)
    this.binCount += weight
  }

  /** Moves the occupied bins into a window that holds [newMin, newMax], folding keys below newMin into it. */
  private relocate(newMin: i32, newMax: i32): void {
    const span = newMax - newMin + 1
    const old = this.bins
    const oldOffset = this.offset
    let length = this.length
    while (length < span) length <<= 1
    const bins = allocBins(length)
    const offset = newMin - ((length - span) >> 1)
    for (let k = this.minKey; k <= this.maxKey; k++) {
      const c = load<f64>(old + (<usize>(k - oldOffset) << 3))
      if (c != 0) {
        const bin = bins + (<usize>((k < newMin ? newMin : k) - offset) << 3)
        store<f64>(bin, load<f64>(bin) + c)
      }
    }
    heap.free(old)
    this.bins = bins
    this.length = length
    this.offset = offset
  }

  merge(other: Sketch): void {
    this.mergeBins(other.zeroCount, other.occupiedBins(), other.occupiedLength(), other.minKey)
  }

  /** Adds a zero count and `n` contiguous bins at `bins`, the first counting `minKey`: the steps of merge. */
  mergeBins(zeroCount: f64, bins: usize, n: i32, minKey: i32): void {
    this.zeroCount += zeroCount
    for (let i = 0; i < n; i++) {
      const c = load<f64>(bins + (<usize>i << 3))
      if (c != 0) this.addKey(minKey + i, c)
    }
  }

  /** The bin of minKey: the first of occupiedLength() contiguous bins. */
  occupiedBins(): usize {
    return this.bins + (<usize>(this.minKey - this.offset) << 3)
  }

  occupiedLength(): i32 {
    return this.binCount == 0 ? 0 : this.maxKey - this.minKey + 1
  }

  /**
   * The key of quantile `q` as a float: NaN when the quantile is NaN (q out of [0, 1] or an empty
   * sketch), +Infinity when the rank falls among the zeros (the value is 0). The caller maps a key
   * to its value in TS, so that both cores use the same Math.pow.
   */
  quantileKey(q: f64): f64 {
    const count = this.binCount + this.zeroCount
    if (!(q >= 0 && q <= 1) || count == 0) return NaN
    const rank = q * (count - 1)
    if (rank < this.zeroCount) return Infinity
    let running = this.zeroCount
    for (let k = this.minKey; k <= this.maxKey; k++) {
      running += load<f64>(this.bins + (<usize>(k - this.offset) << 3))
      if (running > rank) return <f64>k
    }
    return <f64>this.maxKey
  }

  /** The protobuf form of the store (see `measureStore`): sparse only if `allowSparse` and smaller. */
  measure(allowSparse: bool): i32 {
    return measureStore(this.occupiedBins(), this.occupiedLength(), this.minKey, allowSparse)
  }

  protoSize(form: i32): i32 {
    return sketchSize(form, this.zeroCount)
  }

  /** Writes the protobuf (protoSize(form) bytes) at `out`; returns its end. */
  encode(out: usize, form: i32): usize {
    return encodeSketch(out, this.occupiedBins(), this.occupiedLength(), this.minKey, this.zeroCount, form)
  }

  /** Frees the bins; the sketch's own memory belongs to whoever allocated it. */
  release(): void {
    if (this.length != 0) heap.free(this.bins)
  }
}

/** Bytes a sketch takes. */
// @ts-ignore: decorator
@inline
export const SKETCH_SIZE: usize = offsetof<Sketch>()

/** Makes the memory at `ptr` an empty sketch. */
// @ts-ignore: decorator
@inline
export function clearSketch(ptr: usize): Sketch {
  memory.fill(ptr, 0, SKETCH_SIZE)
  return changetype<Sketch>(ptr)
}
