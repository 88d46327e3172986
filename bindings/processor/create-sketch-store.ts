import { read } from '../common/input.js'
import type { SketchStore, SketchStoreOptions } from '../core/sketch-store.js'
import { TsSketchStore } from '../ts/sketch-store.js'
import { createWasmSketchStore } from '../wasm/sketch-store.js'

/**
 * A sketch store (`bindings/core/sketch-store.ts`): in Wasm memory by default, the TS one where
 * WebAssembly is unavailable or cannot start, or when asked for. Throws RangeError for a width it
 * cannot hold.
 */
export function createSketchStore(options: SketchStoreOptions = {}): SketchStore {
  const backend = read(options, 'backend')
  const width = read(options, 'width')
  const w = typeof width === 'number' ? width : 1
  if (backend === 'ts' || typeof WebAssembly !== 'object' || WebAssembly === null) return new TsSketchStore(w)
  const store = new TsSketchStore(w) // checks the width first, whichever store is made
  try {
    return createWasmSketchStore(store.width)
  } catch (err) {
    if (backend === 'wasm') throw err
    return store
  }
}
