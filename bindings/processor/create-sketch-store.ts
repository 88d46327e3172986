import { read } from '../common/input.js'
import type { SketchStore, SketchStoreOptions } from '../core/sketch-store.js'
import { cellWidth, TsSketchStore } from '../ts/sketch-store.js'
import { createWasmSketchStore } from '../wasm/sketch-store.js'

/**
 * A sketch store (`bindings/core/sketch-store.ts`): in Wasm memory by default, the TS one where
 * WebAssembly is unavailable or cannot start, or when asked for. Options are read as createCore
 * reads its own: one that cannot be read, or is not what it should be (a width that is not an
 * integer from 1 to 8), counts as not given.
 */
export function createSketchStore(options: SketchStoreOptions = {}): SketchStore {
  const backend = read(options, 'backend')
  const width = cellWidth(read(options, 'width'))
  if (backend === 'ts' || typeof WebAssembly !== 'object' || WebAssembly === null) return new TsSketchStore(width)
  try {
    return createWasmSketchStore(width)
  } catch {
    return new TsSketchStore(width)
  }
}
