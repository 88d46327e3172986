import type { CellBytes, SketchStore } from '../core/sketch-store.js'
import { cellWidth } from '../ts/sketch-store.js'
import { valueOf } from '../ts/sketch.js'
import { moduleBytes } from './module-bytes.js'

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

let compiled: WebAssembly.Module | undefined

/**
 * The sketch store over an instance of the core's module of its own (compiled once per process,
 * unless the runtime hands one over). Its memory is the instance's: it goes when the store does.
 */
export function createWasmSketchStore(width: number, module?: WebAssembly.Module): SketchStore {
  return new WasmSketchStore(cellWidth(width), module ?? (compiled ??= new WebAssembly.Module(moduleBytes())))
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
    this.x.storeFreeCell(id)
  }

  merge(ids: ArrayLike<number>, input: Uint8Array, starts: ArrayLike<number>, count: number, merged?: Uint8Array): number {
    if (count <= 0) return 0
    const at = this.x.storeInput(input.length) >>> 0
    new Uint8Array(this.x.memory.buffer, at, input.length).set(input)
    this.putIds(ids, count)
    const startsAt = this.x.storeStarts() >>> 0
    const s = new Uint32Array(this.x.memory.buffer, startsAt, count + 1)
    for (let i = 0; i <= count; i++) s[i] = starts[i]
    const done = this.x.storeMerge(count)
    if (merged) merged.set(new Uint8Array(this.x.memory.buffer, this.x.storeFlags() >>> 0, count))
    return done
  }

  mergeCells(target: number, sources: ArrayLike<number>, count: number): void {
    this.putIds(sources, count)
    this.x.storeMergeCells(target, count)
  }

  bytesOf(ids: ArrayLike<number>, count: number): CellBytes {
    this.putIds(ids, count)
    const at = this.x.storeBytesOf(count) >>> 0
    const ends = new Uint32Array(this.x.memory.buffer, at, count).slice()
    const size = count === 0 ? 0 : ends[count - 1]
    return { bytes: new Uint8Array(this.x.memory.buffer, at + 4 * count, size).slice(), ends }
  }

  sum(ids: ArrayLike<number>, count: number): void {
    this.putIds(ids, count)
    this.x.storeSum(count)
  }

  sumCount(i: number): number {
    return this.x.storeSumCount(i)
  }

  sumZeroCount(i: number): number {
    return this.x.storeSumZeroCount(i)
  }

  sumQuantile(i: number, q: number): number {
    const key = this.x.storeSumQuantileKey(i, q)
    // NaN: no quantile; Infinity: the rank falls among the zeros
    if (key !== key) return NaN
    return key === Infinity ? 0 : valueOf(key)
  }

  sumProto(i: number): Uint8Array {
    const at = this.x.storeSumEncode(i) >>> 0
    const length = new Uint32Array(this.x.memory.buffer, this.x.storeResult() >>> 0, 1)[0]
    return new Uint8Array(this.x.memory.buffer, at, length).slice()
  }

  private putIds(ids: ArrayLike<number>, count: number): void {
    const at = this.x.storeIds(count) >>> 0
    const view = new Int32Array(this.x.memory.buffer, at, count)
    for (let i = 0; i < count; i++) view[i] = ids[i]
  }
}
