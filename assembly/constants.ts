/**
 * The literals of `bindings/core/constants.ts` and the batch layout of `bindings/core/types.ts`:
 * keep them equal, since both cores must produce identical keys and bytes.
 */

/** gamma = 1 + 2a/(1-a), a = 0.01. */
export const GAMMA: f64 = 1.02020202020202
/** 1 / ln(gamma): key(v) = ceil(ln(v) * KEY_MULTIPLIER). */
export const KEY_MULTIPLIER: f64 = 49.998333288886556
/** Values not above 2^-1023 * gamma count as zeros. */
export const MIN_INDEXABLE_VALUE: f64 = 1.135012422773875e-308
/** Dense stores keep at most this many bins and fold lower keys into the lowest one. */
export const BIN_LIMIT: i32 = 2048
/** Dense stores start with this many bins and double as their keys spread, up to BIN_LIMIT. */
export const INITIAL_BINS: i32 = 16

/** Batch record layout: float64 slots of a record. */
export const BATCH_NODE: i32 = 0
export const BATCH_PARENT_HI: i32 = 1
export const BATCH_PARENT_LO: i32 = 2
export const BATCH_PATHWAY_LATENCY: i32 = 3
export const BATCH_EDGE_LATENCY: i32 = 4
export const BATCH_PAYLOAD: i32 = 5
export const BATCH_OUT_HI: i32 = 6
export const BATCH_OUT_LO: i32 = 7
export const BATCH_STRIDE: i32 = 8
export const BATCH_CAPACITY: i32 = 1024
