/**
 * Numbers both cores share. `assembly/constants.ts` holds the same literals: keep them equal,
 * since the two cores must produce identical keys and bytes.
 */

/** gamma = 1 + 2a/(1-a) for the relative accuracy a = 0.01 that Datadog's tracers use. */
export const GAMMA = 1.02020202020202
/** 1 / ln(gamma) = 1 / log1p(2a/(1-a)): key(v) = ceil(ln(v) * KEY_MULTIPLIER). */
export const KEY_MULTIPLIER = 49.998333288886556
/** Values not above 2^-1023 * gamma count as zeros. */
export const MIN_INDEXABLE_VALUE = 1.135012422773875e-308
/** Dense stores keep at most this many bins and fold lower keys into the lowest one. */
export const BIN_LIMIT = 2048
/** Dense stores start with this many bins and double as their keys spread, up to BIN_LIMIT: most sketches stay small. */
export const INITIAL_BINS = 16
/** Stats buckets are 10 s wide. */
export const BUCKET_MS = 10_000
