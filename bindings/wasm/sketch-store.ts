import type { CellBytes, SketchStore } from '../core/sketch-store.js'
import { cellId, cellWidth, commands, isSketch, spanOk } from '../ts/sketch-store.js'
import { valueOf } from '../ts/sketch.js'
import { coreModule } from './module.js'

/** What `assembly/sketch-store.ts` exports. Addresses arrive as signed numbers (hence `>>> 0`). */
interface Exports {
  readonly memory: WebAssembly.Memory
  storeInit(width: number): void
  storeCellCount(): number
  storeByteCount(): number
  storeNewCell(): number
  storeFreeCell(id: number): void
  storeInput(size: number): number
  storeIds(count: number): number
  storeStarts(): number
  storeFlags(): number
  storeMerge(count: number): number
  storeMergeCells(target: number, count: number): void
  storeBytesOf(count: number): number
  storeSum(count: number): void
  storeSumCount(i: number): number
  storeSumZeroCount(i: number): number
  storeSumQuantileKey(i: number, q: number): number
  storeSumEncode(i: number): number
  storeResult(): number
}

/**
 * The sketch store over an instance of the core's module of its own (compiled once per process,
 * unless the runtime hands one over). Its memory is the instance's: it goes when the store does.
 */
export function createWasmSketchStore(width: number, module?: WebAssembly.Module): SketchStore {
  return new WasmSketchStore(cellWidth(width), module ?? coreModule())
}

class WasmSketchStore implements SketchStore {
  readonly backend = 'wasm' as const
  private readonly x: Exports

  constructor(
    readonly width: number,
    module: WebAssembly.Module,
  ) {
    this.x = new WebAssembly.Instance(module, {}).exports as unknown as Exports
    this.x.storeInit(width)
  }

  get cellCount(): number {
    return this.x.storeCellCount()
  }

  get byteCount(): number {
    return this.x.storeByteCount()
  }

  newCell(): number {
    return this.x.storeNewCell()
  }

  freeCell(id: number): void {
    this.x.storeFreeCell(cellId(id))
  }

  merge(ids: ArrayLike<number>, input: Uint8Array, starts: ArrayLike<number>, count: number, merged?: Uint8Array): number {
    const n = commands(count, Math.min(ids.length, starts.length - 1))
    if (n === 0) return 0
    const at = this.x.storeInput(input.length) >>> 0
    new Uint8Array(this.x.memory.buffer, at, input.length).set(input)
    const idsAt = this.x.storeIds(n) >>> 0
    const view = new Int32Array(this.x.memory.buffer, idsAt, n)
    const s = new Uint32Array(this.x.memory.buffer, this.x.storeStarts() >>> 0, n + 1)
    // A command whose span is not one of the input merges nothing, as in the TS store.
    for (let i = 0; i < n; i++) view[i] = spanOk(starts[i], starts[i + 1], input.length) ? cellId(ids[i]) : 0
    for (let i = 0; i <= n; i++) s[i] = spanOk(starts[i], starts[i], input.length) ? starts[i] : 0
    const done = this.x.storeMerge(n)
    if (merged) merged.set(new Uint8Array(this.x.memory.buffer, this.x.storeFlags() >>> 0, Math.min(n, merged.length)))
    return done
  }

  mergeCells(target: number, sources: ArrayLike<number>, count: number): void {
    this.x.storeMergeCells(cellId(target), this.putIds(sources, count))
  }

  bytesOf(ids: ArrayLike<number>, count: number): CellBytes {
    count = this.putIds(ids, count)
    const at = this.x.storeBytesOf(count) >>> 0
    const ends = new Uint32Array(this.x.memory.buffer, at, count).slice()
    const size = count === 0 ? 0 : ends[count - 1]
    return { bytes: new Uint8Array(this.x.memory.buffer, at + 4 * count, size).slice(), ends }
  }

  sum(ids: ArrayLike<number>, count: number): void {
    this.x.storeSum(this.putIds(ids, count))
  }

  sumCount(i: number): number {
    return isSketch(i, this.width) ? this.x.storeSumCount(i) : NaN
  }

  sumZeroCount(i: number): number {
    return isSketch(i, this.width) ? this.x.storeSumZeroCount(i) : NaN
  }

  sumQuantile(i: number, q: number): number {
    if (!isSketch(i, this.width)) return NaN
    const key = this.x.storeSumQuantileKey(i, q)
    // NaN: no quantile; Infinity: the rank falls among the zeros
    if (key !== key) return NaN
    return key === Infinity ? 0 : valueOf(key)
  }

  sumProto(i: number): Uint8Array {
    if (!isSketch(i, this.width)) return new Uint8Array(0)
    const at = this.x.storeSumEncode(i) >>> 0
    const length = new Uint32Array(this.x.memory.buffer, this.x.storeResult() >>> 0, 1)[0]
    return new Uint8Array(this.x.memory.buffer, at, length).slice()
  }

  /** The first `count` ids (those that are not one: 0, no cell) into the instance; returns how many. */
  private putIds(ids: ArrayLike<number>, count: number): number {
    const n = commands(count, ids.length)
    const at = this.x.storeIds(n) >>> 0
    const view = new Int32Array(this.x.memory.buffer, at, n)
    for (let i = 0; i < n; i++) view[i] = cellId(ids[i])
    return n
  }
}
