import { BUCKET_MS, bucketStart, type Cell } from './store.js'
import { emptySketch, type Sketch } from './sketch.js'

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
 */

/** A tracer's flush interval and a delivery's slack: a bucket ended this long ago is complete. */
export const SETTLE_MS = 12_000

export interface Range {
  now: number
  /** The range asked for, in whole buckets. */
  rangeMs: number
  /** Buckets starting at or after this are read. */
  from: number
  /** Buckets starting at or after this are still filling. */
  settled: number
  /** Rates divide the settled counts by the time from this to `settled`. */
  rateFrom: number
}

/**
 * The range of the last `rangeMs` of settled buckets. `cellMaps` (every series of the store) says
 * where data starts; without them, rates read the whole range.
 */
export function rangeOf(now: number, rangeMs: number, cellMaps?: Iterable<Map<number, unknown>>): Range {
  const settled = bucketStart(now - SETTLE_MS)
  const whole = Math.max(BUCKET_MS, Math.ceil(rangeMs / BUCKET_MS) * BUCKET_MS)
  const from = settled - whole
  if (!cellMaps) return { now, rangeMs: whole, from, settled, rateFrom: from }
  let first = settled
  for (const cells of cellMaps) for (const start of cells.keys()) if (start >= from && start < first) first = start
  return { now, rangeMs: whole, from, settled, rateFrom: first }
}

export interface Merged {
  pathway: Sketch
  edge: Sketch
  size: Sketch
  /** Messages (the edge-latency sketch's count) over the range, buckets still filling included. */
  count: number
  /** Of `count`, the messages in buckets still filling. */
  filling: number
  /** Messages per second, as the comment above says. */
  rate: number
}

/** Merges the cells of one or more series over a range. */
export function mergeCells(cellMaps: Iterable<Map<number, Cell>>, range: Range): Merged {
  const settled = { pathway: emptySketch(), edge: emptySketch(), size: emptySketch(), count: 0 }
  const filling = { pathway: emptySketch(), edge: emptySketch(), size: emptySketch(), count: 0 }
  let firstFilling = Infinity
  let lastFilling = -Infinity
  for (const cells of cellMaps) {
    for (const [start, cell] of cells) {
      if (start < range.from) continue
      const into = start < range.settled ? settled : filling
      into.pathway.merge(cell.pathway)
      into.edge.merge(cell.edge)
      into.size.merge(cell.size)
      into.count += cell.edge.count
      if (into === filling) {
        firstFilling = Math.min(firstFilling, start)
        lastFilling = Math.max(lastFilling, start)
      }
    }
  }
  const count = settled.count + filling.count
  if (settled.count > 0 || filling.count === 0) {
    const rate = settled.count / (Math.max(BUCKET_MS, range.settled - range.rateFrom) / 1000)
    return { pathway: settled.pathway, edge: settled.edge, size: settled.size, count, filling: filling.count, rate }
  }
  // Nothing settled: the filling buckets, over the time they have covered so far.
  const span = Math.min(range.now, lastFilling + BUCKET_MS) - firstFilling
  return { pathway: filling.pathway, edge: filling.edge, size: filling.size, count, filling: filling.count, rate: filling.count / Math.max(1, span / 1000) }
}
