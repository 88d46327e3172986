import { read } from '../common/input.js'
import type { Core, CoreOptions } from '../core/types.js'
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

/**
 * The Wasm core by default; the pure-TS core where WebAssembly is unavailable or when asked for.
 * Options are read once, safely: one that cannot be read or has the wrong type counts as not given.
 * (The core's own methods take numbers as documented: its callers validate, the hot path does not.)
 */
export function createCore(options: CreateCoreOptions = {}): Core {
  const backend = read(options, 'backend')
  const maxPoints = read(options, 'maxPoints')
  const maxLivePoints = read(options, 'maxLivePoints')
  const given: CoreOptions = {
    maxPoints: typeof maxPoints === 'number' ? maxPoints : undefined,
    maxLivePoints: typeof maxLivePoints === 'number' ? maxLivePoints : undefined,
  }
  const onFallback = read(options, 'onFallback')
  const fallback = (reason: string): Core => {
    if (typeof onFallback === 'function') onFallback(reason)
    return new TsCore(given)
  }
  if (backend === 'ts') return new TsCore(given)
  if (typeof WebAssembly !== 'object' || WebAssembly === null) return fallback('WebAssembly is not available in this runtime')
  const compiled = compiledModule(read(options, 'wasmModule'))
  try {
    return createWasmCore(given, compiled)
  } catch (err) {
    if (backend === 'wasm' && compiled !== undefined) throw err
    return fallback(`the Wasm core could not start: ${(err as Error).message}`)
  }
}

/** A compiled module as handed over, or undefined for anything else (the embedded bytes are used then). */
export function compiledModule(value: unknown): WebAssembly.Module | undefined {
  try {
    return typeof WebAssembly === 'object' && value instanceof WebAssembly.Module ? value : undefined
  } catch {
    return undefined
  }
}
