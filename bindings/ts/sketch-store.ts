import { MAX_CELL_WIDTH } from '../core/compact-constants.js'
import type { CellBytes, SketchStore } from '../core/sketch-store.js'
import { MAX_COMPACT_SIZE, readCompact, resetSketch, writeCompact } from './compact.js'
import { TsSketch } from './sketch.js'

/**
 * The sketch store in TS: each cell's compact bytes in their own Uint8Array (none for an empty
 * cell), merged through TsSketches. `assembly/sketch-store.ts` is the same store in Wasm memory.
 */

/** An empty cell: no bytes held. */
const EMPTY = new Uint8Array(0)

export class TsSketchStore implements SketchStore {
  readonly backend = 'ts' as const
  readonly width: number
  byteCount = 0
  cellCount = 0
  /** Cell id → its compact bytes; undefined for an id not in use. Id 0 is never handed out. */
  private readonly cells: Array<Uint8Array | undefined> = [undefined]
  private readonly freeIds: number[] = []
  /** The cell being merged, as sketches. */
  private readonly work: TsSketch[]
  private readonly sums: TsSketch[]
  /** Where a cell is written before it is copied at its size: room for `width` sketches of any span. */
  private readonly scratch: Uint8Array

  constructor(width: number) {
    this.width = cellWidth(width)
    this.work = Array.from({ length: this.width }, () => new TsSketch())
    this.sums = Array.from({ length: this.width }, () => new TsSketch())
    this.scratch = new Uint8Array(this.width * MAX_COMPACT_SIZE)
  }

  newCell(): number {
    const id = this.freeIds.pop() ?? this.cells.length
    this.cells[id] = EMPTY
    this.cellCount++
    return id
  }

  freeCell(id: number): void {
    id = cellId(id)
    const cell = this.cells[id]
    if (cell === undefined) return
    this.byteCount -= cell.length
    this.cells[id] = undefined
    this.freeIds.push(id)
    this.cellCount--
  }

  merge(ids: ArrayLike<number>, input: Uint8Array, starts: ArrayLike<number>, count: number, merged?: Uint8Array): number {
    let done = 0
    const n = commands(count, Math.min(ids.length, starts.length - 1))
    for (let i = 0; i < n; i++) {
      const id = ids[i]
      const ok = spanOk(starts[i], starts[i + 1], input.length) && this.cells[cellId(id)] !== undefined && this.load(id) && this.add(input, starts[i], starts[i + 1])
      if (ok) {
        this.store(id)
        done++
      }
      if (merged && i < merged.length) merged[i] = ok ? 1 : 0
    }
    return done
  }

  mergeCells(target: number, sources: ArrayLike<number>, count: number): void {
    if (this.cells[cellId(target)] === undefined) return
    this.load(target)
    for (let i = 0, n = commands(count, sources.length); i < n; i++) {
      const cell = this.cells[cellId(sources[i])]
      if (cell !== undefined) this.add(cell, 0, cell.length)
    }
    this.store(target)
  }

  bytesOf(ids: ArrayLike<number>, count: number): CellBytes {
    count = commands(count, ids.length)
    const ends = new Uint32Array(count)
    let size = 0
    for (let i = 0; i < count; i++) ends[i] = size += this.bytesOfCell(ids[i]).length
    const bytes = new Uint8Array(size)
    for (let i = 0; i < count; i++) bytes.set(this.bytesOfCell(ids[i]), i === 0 ? 0 : ends[i - 1])
    return { bytes, ends }
  }

  sum(ids: ArrayLike<number>, count: number): void {
    for (const s of this.sums) resetSketch(s)
    for (let i = 0, n = commands(count, ids.length); i < n; i++) {
      const cell = this.cells[cellId(ids[i])]
      if (cell === undefined || cell.length === 0) continue
      let p = 0
      for (const s of this.sums) p = readCompact(cell, p, cell.length, s, false)
    }
  }

  sumCount(i: number): number {
    return isSketch(i, this.width) ? this.sums[i].count : NaN
  }

  sumZeroCount(i: number): number {
    return isSketch(i, this.width) ? this.sums[i].zeroCount : NaN
  }

  sumQuantile(i: number, q: number): number {
    return isSketch(i, this.width) ? this.sums[i].quantile(q) : NaN
  }

  sumProto(i: number): Uint8Array {
    return isSketch(i, this.width) ? this.sums[i].toProto() : new Uint8Array(0)
  }

  /** A cell's compact bytes, an empty one's included (`width` empty sketches). */
  private bytesOfCell(id: number): Uint8Array {
    const cell = this.cells[cellId(id)]
    return cell === undefined || cell.length === 0 ? new Uint8Array(this.width) : cell
  }

  /** The cell into the work sketches, exactly. */
  private load(id: number): boolean {
    for (const s of this.work) resetSketch(s)
    const cell = this.cells[id]!
    let p = 0
    if (cell.length > 0) for (const s of this.work) p = readCompact(cell, p, cell.length, s, true)
    return true
  }

  /** Merges the compact cell at `bytes[at, end)` into the work sketches; false if it is not one. */
  private add(bytes: Uint8Array, at: number, end: number): boolean {
    let p = at
    for (const s of this.work) {
      p = readCompact(bytes, p, end, s, false)
      if (p < 0) return false
    }
    return p === end
  }

  /** The work sketches, compact, as cell `id`: written into the scratch, then copied at their size. */
  private store(id: number): void {
    let p = 0
    for (const s of this.work) p = writeCompact(s, this.scratch, p)
    const empty = this.work.every((s) => s.count === 0)
    const cell = empty ? EMPTY : this.scratch.slice(0, p)
    this.byteCount += cell.length - this.cells[id]!.length
    this.cells[id] = cell
  }
}

/** A width as the stores take it: an integer from 1 to MAX_CELL_WIDTH; anything else counts as 1. */
export function cellWidth(width: unknown): number {
  return typeof width === 'number' && Number.isInteger(width) && width >= 1 && width <= MAX_CELL_WIDTH ? width : 1
}

/** How many of `count` commands there are: an integer, at most `most` (what the arrays hold). */
export function commands(count: number, most: number): number {
  const n = Math.min(Math.floor(count), most)
  return n > 0 ? n : 0
}

/** Whether [from, to) is a span of an input of `length` bytes. */
export const spanOk = (from: number, to: number, length: number): boolean => Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= length

/** An id as the Wasm store takes it, or 0 (no cell) for a number that is not one. */
export const cellId = (id: number): number => (Number.isInteger(id) && id > 0 && id <= 0x7fffffff ? id : 0)

/** Whether `i` names one of `width` sketches. */
export const isSketch = (i: number, width: number): boolean => Number.isInteger(i) && i >= 0 && i < width
