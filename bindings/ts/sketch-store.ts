import { MAX_CELL_WIDTH } from '../core/compact-constants.js'
import type { CellBytes, SketchStore } from '../core/sketch-store.js'
import { resetSketch, compactSize, readCompact, writeCompact } from './compact.js'
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

  constructor(width: number) {
    this.width = cellWidth(width)
    this.work = Array.from({ length: this.width }, () => new TsSketch())
    this.sums = Array.from({ length: this.width }, () => new TsSketch())
  }

  newCell(): number {
    const id = this.freeIds.pop() ?? this.cells.length
    this.cells[id] = EMPTY
    this.cellCount++
    return id
  }

  freeCell(id: number): void {
    const cell = this.cells[id]
    if (cell === undefined) return
    this.byteCount -= cell.length
    this.cells[id] = undefined
    this.freeIds.push(id)
    this.cellCount--
  }

  merge(ids: ArrayLike<number>, input: Uint8Array, starts: ArrayLike<number>, count: number, merged?: Uint8Array): number {
    let done = 0
    for (let i = 0; i < count; i++) {
      const id = ids[i]
      const ok = this.cells[id] !== undefined && this.load(id) && this.add(input, starts[i], starts[i + 1])
      if (ok) {
        this.store(id)
        done++
      }
      if (merged) merged[i] = ok ? 1 : 0
    }
    return done
  }

  mergeCells(target: number, sources: ArrayLike<number>, count: number): void {
    if (this.cells[target] === undefined) return
    this.load(target)
    for (let i = 0; i < count; i++) {
      const cell = this.cells[sources[i]]
      if (cell !== undefined) this.add(cell, 0, cell.length)
    }
    this.store(target)
  }

  bytesOf(ids: ArrayLike<number>, count: number): CellBytes {
    const ends = new Uint32Array(count)
    let size = 0
    for (let i = 0; i < count; i++) ends[i] = size += this.bytesOfCell(ids[i]).length
    const bytes = new Uint8Array(size)
    for (let i = 0; i < count; i++) bytes.set(this.bytesOfCell(ids[i]), i === 0 ? 0 : ends[i - 1])
    return { bytes, ends }
  }

  sum(ids: ArrayLike<number>, count: number): void {
    for (const s of this.sums) resetSketch(s)
    for (let i = 0; i < count; i++) {
      const cell = this.cells[ids[i]]
      if (cell === undefined || cell.length === 0) continue
      let p = 0
      for (const s of this.sums) p = readCompact(cell, p, cell.length, s, false)
    }
  }

  sumCount(i: number): number {
    return this.sums[i].count
  }

  sumZeroCount(i: number): number {
    return this.sums[i].zeroCount
  }

  sumQuantile(i: number, q: number): number {
    return this.sums[i].quantile(q)
  }

  sumProto(i: number): Uint8Array {
    return this.sums[i].toProto()
  }

  /** A cell's compact bytes, an empty one's included (`width` empty sketches). */
  private bytesOfCell(id: number): Uint8Array {
    const cell = this.cells[id]
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

  /** The work sketches, compact, as cell `id`. */
  private store(id: number): void {
    let size = 0
    let empty = true
    for (const s of this.work) {
      size += compactSize(s)
      empty &&= s.count === 0
    }
    const cell = empty ? EMPTY : new Uint8Array(size)
    if (!empty) {
      let p = 0
      for (const s of this.work) p = writeCompact(s, cell, p)
    }
    this.byteCount += cell.length - this.cells[id]!.length
    this.cells[id] = cell
  }
}

/** A width as the stores take it: an integer from 1 to MAX_CELL_WIDTH. */
export function cellWidth(width: number | undefined): number {
  const w = width ?? 1
  if (!(Number.isInteger(w) && w >= 1 && w <= MAX_CELL_WIDTH)) {
    throw new RangeError(`a cell holds 1 to ${MAX_CELL_WIDTH} sketches, not ${String(width)}`)
  }
  return w
}
