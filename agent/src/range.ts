import { BUCKET_MS, type Cell } from './store.js'
import { emptySketch, type Sketch } from './sketch.js'

/**
 * Which buckets a summary reads. Quantiles merge every bucket of the last `range`, the current
 * (still filling) one included, so the page is live. Rates divide the counts of the closed buckets
 * by their span, which starts at the range's start or at the first bucket holding data, whichever
 * is later (so that an edge seen for 20 s is not diluted over a minute); while only the current
 * bucket has data, its count is divided by the time elapsed in it.
 */
export interface Range {
  now: number
  /** The range asked for, in whole buckets. */
  rangeMs: number
  /** Quantiles read buckets starting at or after this. */
  from: number
  /** Start of the current bucket; rates read the closed buckets before it. */
  current: number
}

export function rangeOf(now: number, rangeMs: number): Range {
  const current = now - (now % BUCKET_MS)
  const whole = Math.max(BUCKET_MS, Math.ceil(rangeMs / BUCKET_MS) * BUCKET_MS)
  return { now, rangeMs: whole, from: current - whole, current }
}

export interface Merged {
  pathway: Sketch
  edge: Sketch
  size: Sketch
  /** Messages (the edge-latency sketch's count) over the range. */
  count: number
  /** Messages per second, as the comment above says. */
  rate: number
}

/** Merges the cells of one or more series over a range. */
export function mergeCells(cellMaps: Iterable<Map<number, Cell>>, range: Range): Merged {
  const out: Merged = { pathway: emptySketch(), edge: emptySketch(), size: emptySketch(), count: 0, rate: 0 }
  let closed = 0
  let open = 0
  let first = range.current
  for (const cells of cellMaps) {
    for (const [start, cell] of cells) {
      if (start < range.from) continue
      out.pathway.merge(cell.pathway)
      out.edge.merge(cell.edge)
      out.size.merge(cell.size)
      out.count += cell.edge.count
      if (start >= range.current) {
        open += cell.edge.count
      } else {
        closed += cell.edge.count
        if (start < first) first = start
      }
    }
  }
  out.rate = first < range.current ? closed / ((range.current - first) / 1000) : open / Math.max(1, (range.now - range.current) / 1000)
  return out
}
