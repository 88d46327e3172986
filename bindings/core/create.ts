import type { Core, CoreOptions } from './types.js'
import { TsCore } from '../ts/core.js'
import { createWasmCore } from '../wasm/core.js'

export interface CreateCoreOptions extends CoreOptions {
  /**
   * A compiled `WebAssembly.Module` handed over by the runtime (workerd forbids compiling Wasm from
   * bytes). Typed as an object so that the declarations need no DOM lib; anything else is ignored.
   */
  wasmModule?: object
  /** Called once when the Wasm core cannot be used and the TS core stands in. */
  onFallback?: (reason: string) => void
}

/** The Wasm core by default; the pure-TS core where WebAssembly is unavailable or when asked for. */
export function createCore(options: CreateCoreOptions = {}): Core {
  if (options.backend === 'ts') return new TsCore(options)
  if (typeof WebAssembly !== 'object' || WebAssembly === null) {
    options.onFallback?.('WebAssembly is not available in this runtime')
    return new TsCore(options)
  }
  const compiled = options.wasmModule instanceof WebAssembly.Module ? options.wasmModule : undefined
  try {
    return createWasmCore(options, compiled)
  } catch (err) {
    if (options.backend === 'wasm' && compiled !== undefined) throw err
    options.onFallback?.(`the Wasm core could not start: ${(err as Error).message}`)
    return new TsCore(options)
  }
}
