import type { DataStreams } from '../api/data-streams.js'
import { read } from '../common/input.js'
import { enabledDataStreams } from './settings.js'

/**
 * Automatic instrumentation of one npm module: `patch` changes the module's exports in place
 * (class prototypes, so that CommonJS and ESM users share the patch) and returns its undo.
 */
export interface Instrumentation {
  readonly module: string
  /** The versions it patches (`>=a <b`, the optional peer dependency's range): others are left alone (register/supported-versions.ts). */
  readonly supportedVersions: string
  patch(exports: unknown, dsm: DataStreams): () => void
}

/**
 * Replaces obj[name] with wrap(original) and returns the undo. The undo restores the original
 * only if nobody wrapped the method again since, so that undoing never removes someone else's patch.
 * Never throws: an object that cannot be patched (frozen, a Proxy, no such method) is left as
 * it is, with a no-op undo.
 */
export function wrapMethod<T extends object, K extends keyof T & string>(
  obj: T,
  name: K,
  wrap: (original: T[K]) => T[K],
): () => void {
  const original = read(obj, name) as T[K]
  if (typeof original !== 'function') return () => {}
  const wrapped = wrap(original)
  let own: boolean
  try {
    own = Object.prototype.hasOwnProperty.call(obj, name)
    obj[name] = wrapped
  } catch {
    return () => {}
  }
  return () => {
    if (read(obj, name) !== wrapped) return
    try {
      if (own) obj[name] = original
      else delete obj[name]
    } catch {
      // It became frozen since: the wrapper stays, and passes through once its instrumentation is off.
    }
  }
}

/** Runs every undo, last patch first. */
export function undoAll(undos: (() => void)[]): () => void {
  return () => {
    for (let i = undos.length - 1; i >= 0; i--) undos[i]()
    undos.length = 0
  }
}

/**
 * Instruments with an off switch: `install(dsm, active)` installs its wrappers and returns their
 * undo; the undo returned here first turns `active` off, so that the wrappers still in use (by
 * clients made while instrumented, or under someone's later wrapper) pass everything through.
 * With a DataStreams that is not an enabled one, nothing is installed.
 */
export function withOffSwitch(dsm: unknown, install: (dsm: DataStreams, active: () => boolean) => () => void): () => void {
  const enabled = enabledDataStreams(dsm)
  if (enabled === null) return () => {}
  let on = true
  const undo = install(enabled, () => on)
  return () => {
    on = false
    undo()
  }
}
