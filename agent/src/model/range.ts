import { cellWidth, coarseBefore, minuteStart, type Cells } from './cells.js'
import { EDGE, PATHWAY, SIZE } from './payload.js'
import type { MergedSketch } from './sketch.js'
import { BUCKET_MS, bucketStart } from './store.js'

/**
 * Which buckets a summary reads, the same for every series so that the two ends of a queue fed
 * the same messages show the same rate. Tracers send a 10 s bucket after it ends, on a 10 s
 * timer (pathwise, dd-trace), so a bucket keeps filling until about 20 s after its start: read
 * earlier, the last bucket holds the points of the services that have flushed and not of the
 * others. A bucket is settled `SETTLE_MS` after it ends; rates and quantiles read the settled
 * buckets of the range, over one span for the whole store: from the range's start, or from the
 * first bucket holding data anywhere (so that an agent started 20 s ago does not dilute its
 * rates over a minute), to the first bucket still filling. Counts also take the buckets still
 * filling, and say how many of their messages are in them. A series with nothing settled yet
 * (a pipeline that just started) shows its filling buckets, which its `filling` count marks.
 *
 * A range reaching past the last 16 minutes, where buckets are rolled up into minutes
 * (model/cells.ts), starts at the start of the minute holding its start: the 1 h range reads up to
 * 50 s more, and its rates divide by the time it reads.
 */

/** A tracer's flush interval and a delivery's slack: a bucket ended this long ago is complete. */
export const SETTLE_MS = 12_000

export interface Range {
  now: number
  /** The range asked for, in whole buckets. */
  rangeMs: number
  /** Buckets starting at or after this are read. */
  from: number
  /** Buckets starting at or after this are not read (default: none). */
  until?: number
  /** Buckets starting at or after this are still filling. */
  settled: number
  /** Rates divide the settled counts by the time from this to `settled`. */
  rateFrom: number
}

/**
 * The range of the last `rangeMs` of settled buckets. `cellMaps` (every series of the store) says
 * where data starts; without them, rates read the whole range.
 */
export function rangeOf(now: number, rangeMs: number, cellMaps?: Iterable<Cells>): Range {
  const settled = bucketStart(now - SETTLE_MS)
  const whole = Math.max(BUCKET_MS, Math.ceil(rangeMs / BUCKET_MS) * BUCKET_MS)
  let from = settled - whole
  if (from < coarseBefore(now)) from = minuteStart(from)
  if (!cellMaps) return { now, rangeMs: whole, from, settled, rateFrom: from }
  let first = settled
  for (const cells of cellMaps) {
    const i = cells.indexOf(from)
    if (i < cells.size && cells.startAt(i) < first) first = cells.startAt(i)
  }
  return { now, rangeMs: whole, from, settled, rateFrom: first }
}

/** How long the bucket starting at `start` covers at `now`: 10 s, or a minute once rolled up. */
export const bucketWidth = (start: number, now: number): number => cellWidth(start, coarseBefore(now))

export interface Merged {
  pathway: MergedSketch
  edge: MergedSketch
  size: MergedSketch
  /** Messages (the edge-latency sketch's count) over the range, buckets still filling included. */
  count: number
  /** Of `count`, the messages in buckets still filling. */
  filling: number
  /** Messages per second, as the comment above says. */
  rate: number
}

/** Cells of a merge, gathered before the sketch store sums them. */
class Gathered {
  ids = new Int32Array(64)
  n = 0
  push(id: number): void {
    if (this.n === this.ids.length) {
      const bigger = new Int32Array(2 * this.n)
      bigger.set(this.ids)
      this.ids = bigger
    }
    this.ids[this.n++] = id
  }
}
const settledCells = new Gathered()
const fillingCells = new Gathered()

/** Merges the cells of one or more series over a range. */
export function mergeCells(cellMaps: Iterable<Cells>, range: Range): Merged {
  settledCells.n = 0
  fillingCells.n = 0
  let firstFilling = Infinity
  let lastFilling = -Infinity
  let sketches: Cells['sketches'] | null = null
  const until = range.until ?? Infinity
  for (const cells of cellMaps) {
    sketches ??= cells.sketches
    for (let i = cells.indexOf(range.from); i < cells.size; i++) {
      const start = cells.startAt(i)
      if (start >= until) break
      if (start < range.settled) {
        settledCells.push(cells.cellAt(i))
        continue
      }
      fillingCells.push(cells.cellAt(i))
      firstFilling = Math.min(firstFilling, start)
      lastFilling = Math.max(lastFilling, start)
    }
  }
  const settled = sum(sketches, settledCells)
  const filling = sum(sketches, fillingCells)
  const count = settled.edge.count + filling.edge.count
  if (settled.edge.count > 0 || filling.edge.count === 0) {
    const rate = settled.edge.count / (Math.max(BUCKET_MS, range.settled - range.rateFrom) / 1000)
    return { ...settled, count, filling: filling.edge.count, rate }
  }
  // Nothing settled: the filling buckets, over the time they have covered so far.
  const span = Math.min(range.now, lastFilling + BUCKET_MS) - firstFilling
  return { ...filling, count, filling: filling.edge.count, rate: filling.edge.count / Math.max(1, span / 1000) }
}

const EMPTY: MergedSketch = { count: 0, zeroCount: 0, quantiles: null }

function sum(sketches: Cells['sketches'] | null, cells: Gathered): Pick<Merged, 'pathway' | 'edge' | 'size'> {
  if (sketches === null || cells.n === 0) return { pathway: EMPTY, edge: EMPTY, size: EMPTY }
  sketches.sum(cells.ids, cells.n)
  const read = (i: number): MergedSketch => {
    const count = sketches.sumCount(i)
    const quantiles = count === 0 ? null : { p50: sketches.sumQuantile(i, 0.5), p95: sketches.sumQuantile(i, 0.95), p99: sketches.sumQuantile(i, 0.99) }
    return { count, zeroCount: sketches.sumZeroCount(i), quantiles }
  }
  return { pathway: read(PATHWAY), edge: read(EDGE), size: read(SIZE) }
}
