/**
 * The numbers of the compact sketch form and the sketch store (`bindings/core/sketch-store.ts`),
 * defined once: `scripts/gen-assembly-constants.mjs` writes them out as
 * `assembly/generated/compact-constants.ts` at build time.
 */

/** Flags of a compact sketch: a zero count follows; bins follow; counts are doubles. */
export const COMPACT_ZEROS = 1
export const COMPACT_BINS = 2
export const COMPACT_DOUBLES = 4
/** Keys the compact form takes: a 1% sketch of any double has keys within +-36,000. */
export const MAX_COMPACT_KEY = 1048576
/** Most sketches a cell holds. */
export const MAX_CELL_WIDTH = 8
