/**
 * The core's Wasm module, compiled once per process from the embedded bytes: the cores and the
 * sketch stores each make instances of their own from it.
 */
import { moduleBytes } from './module-bytes.js'

let compiled: WebAssembly.Module | undefined

export function coreModule(): WebAssembly.Module {
  return (compiled ??= new WebAssembly.Module(moduleBytes()))
}
