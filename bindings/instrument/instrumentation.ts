import type { DataStreams } from '../data-streams.js'

/**
 * Automatic instrumentation of one npm module: `patch` changes the module's exports in place
 * (class prototypes, so that CommonJS and ESM users share the patch) and returns its undo.
 */
export interface Instrumentation {
  readonly module: string
  patch(exports: unknown, dsm: DataStreams): () => void
}

/**
 * Replaces obj[name] with wrap(original) and returns the undo. The undo restores the original
 * only if nobody wrapped the method again since, so that undoing never removes someone else's patch.
 */
export function wrapMethod<T extends object, K extends keyof T>(
  obj: T,
  name: K,
  wrap: (original: T[K]) => T[K],
): () => void {
  const original = obj[name]
  if (typeof original !== 'function') return () => {}
  const own = Object.prototype.hasOwnProperty.call(obj, name)
  const wrapped = wrap(original)
  obj[name] = wrapped
  return () => {
    if (obj[name] !== wrapped) return
    if (own) obj[name] = original
    else delete obj[name]
  }
}

/** Runs every undo, last patch first. */
export function undoAll(undos: (() => void)[]): () => void {
  return () => {
    for (let i = undos.length - 1; i >= 0; i--) undos[i]()
    undos.length = 0
  }
}
