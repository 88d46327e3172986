import { LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js'
import { MIN_INDEXABLE_VALUE, SKETCH_GAMMA, sketchKeyValue } from 'pathwise/core'

/**
 * The sketches the agent computes with, all DDSketches at 1% (what every tracer sends). The store's
 * cells are in pathwise's sketch store (model/store.ts): merged in Wasm, compact, never a JS
 * object per bin; what a view reads of them is a MergedSketch, its counts and quantiles. The
 * transaction tracker keeps its own few sketches as @datadog/sketches-js objects (`emptySketch`).
 */

export type Sketch = LogCollapsingLowestDenseDDSketch

/** The store's mapping: gamma of 1% accuracy (SKETCH_GAMMA), no offset; values at or below MIN_INDEXABLE_VALUE count as zeros. */
export { MIN_INDEXABLE_VALUE, SKETCH_GAMMA }
/** The value a sketch key stands for (within 1% of every value of the key), as the cores compute it. */
export const keyValue: (key: number) => number = sketchKeyValue

export function emptySketch(): Sketch {
  return new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: 0.01 })
}

export interface Quantiles {
  p50: number
  p95: number
  p99: number
}

/** A merge of cells as a view reads it: its total and zero counts, and its quantiles (null when empty). */
export interface MergedSketch {
  count: number
  zeroCount: number
  quantiles: Quantiles | null
}

/** p50, p95 and p99, or null for an empty sketch. */
export function quantilesOf(sketch: Sketch | MergedSketch): Quantiles | null {
  if ('quantiles' in sketch) return sketch.quantiles
  if (sketch.count === 0) return null
  return { p50: sketch.getValueAtQuantile(0.5), p95: sketch.getValueAtQuantile(0.95), p99: sketch.getValueAtQuantile(0.99) }
}

/** A sketch's bins as the intake decoded them, for counting (prometheus/metrics.ts). */
export interface SketchBins {
  readonly zeroCount: number
  /** Every occupied bin, lowest key first. */
  forEachBin(each: (key: number, count: number) => void): void
}
