import { BUCKET_MS, type SketchStore } from 'pathwise/core'

/**
 * A series' cells (model/store.ts) in time order, and the resolution they are kept at: a cell per
 * 10 s bucket for the last FINE_MS (every range up to 15 minutes reads whole 10 s buckets, as
 * tracers send them), and beyond that one per minute, the six buckets of a minute rolled up into
 * one cell (the 1 h range and the edge chart's older part). A cell is an id in the store's sketch
 * store, which holds its three sketches.
 */

/** How long buckets are kept at 10 s: the page's 15 min range, its settling (12 s) and a bucket's rounding, and a little more. */
export const FINE_MS = 16 * 60_000
/** Older buckets are kept a minute to a cell. */
export const COARSE_MS = 60_000

/** The start of the minute holding `t` (ms); for times before 1970 too. */
export const minuteStart = (t: number): number => t - (((t % COARSE_MS) + COARSE_MS) % COARSE_MS)

/** Cells starting before this are minutes at `now`: everything older than FINE_MS, to the minute. */
export const coarseBefore = (now: number): number => minuteStart(now - FINE_MS)

/** How long the cell starting at `start` covers, in a store rolled up to `rolledBefore`. */
export const cellWidth = (start: number, rolledBefore: number): number => (start < rolledBefore ? COARSE_MS : BUCKET_MS)

/** A cell: its id in the store's sketch store, which holds its pathway, edge and size sketches. */
export type Cell = number

/**
 * A series' cells by start, oldest first, as two arrays (a Map per series would take several times
 * the memory at an hour of 10,000 series): lookups by binary search, the newest bucket at the end.
 * Reads as a Map of start → cell does.
 */
export class Cells implements Iterable<[number, Cell]> {
  private starts: number[] = []
  private ids: Cell[] = []

  constructor(
    /** Where the cells' sketches are. */
    readonly sketches: SketchStore,
  ) {}

  get size(): number {
    return this.starts.length
  }

  get(start: number): Cell | undefined {
    const i = this.indexOf(start)
    return i < this.starts.length && this.starts[i] === start ? this.ids[i] : undefined
  }

  has(start: number): boolean {
    return this.get(start) !== undefined
  }

  keys(): IterableIterator<number> {
    return this.starts.values()
  }

  values(): IterableIterator<Cell> {
    return this.ids.values()
  }

  *entries(): IterableIterator<[number, Cell]> {
    for (let i = 0; i < this.starts.length; i++) yield [this.starts[i], this.ids[i]]
  }

  [Symbol.iterator](): IterableIterator<[number, Cell]> {
    return this.entries()
  }

  /** The index of the first cell starting at or after `start` (size when none does). */
  indexOf(start: number): number {
    const n = this.starts.length
    // The newest bucket first: where almost every point goes.
    if (n === 0 || this.starts[n - 1] < start) return n
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.starts[mid] < start) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  startAt(i: number): number {
    return this.starts[i]
  }

  cellAt(i: number): Cell {
    return this.ids[i]
  }

  /** Adds a cell at a start that has none. */
  insert(start: number, cell: Cell): void {
    const i = this.indexOf(start)
    if (i === this.starts.length) {
      this.starts.push(start)
      this.ids.push(cell)
    } else {
      this.starts.splice(i, 0, start)
      this.ids.splice(i, 0, cell)
    }
  }

  /** Removes the cells at indexes [from, to), leaving their sketches to the caller. */
  removeRange(from: number, to: number): void {
    if (to <= from) return
    this.starts.splice(from, to - from)
    this.ids.splice(from, to - from)
  }
}
