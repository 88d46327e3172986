/**
 * The DDSketch numbers both cores use, defined once: `scripts/gen-assembly-constants.mjs` writes
 * them out as `assembly/generated/sketch-constants.ts` at build time (shortest round-trip
 * literals, so every float keeps its bits). Derived values use only IEEE-754 basic operations,
 * which give the same bits in every engine; the rest are literals because Math.log and its kin
 * do not.
 */

/** The relative accuracy of Datadog's tracers. */
export const RELATIVE_ACCURACY = 0.01
export const GAMMA = 1 + (2 * RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
/** 1 / ln(gamma) = 1 / log1p(2a/(1-a)): key(v) = ceil(ln(v) * KEY_MULTIPLIER). */
export const KEY_MULTIPLIER = 49.998333288886556
/** Values not above 2^-1023 * gamma count as zeros. */
export const MIN_INDEXABLE_VALUE = 1.135012422773875e-308
/** Dense stores keep at most this many bins and fold lower keys into the lowest one. */
export const BIN_LIMIT = 2048
/** Dense stores start with this many bins and double as their keys spread, up to BIN_LIMIT: most sketches stay small. */
export const INITIAL_BINS = 16
/**
 * How close to a key boundary Math.log is not trusted. It differs from the portable `ln` by a few
 * ulps (under 1e-10 here, for any double), so beyond this margin both give the same key.
 */
export const BOUNDARY_MARGIN = 1e-9

// The portable ln: ln(x) = e ln2 + ln(m), m in (sqrt2/2, sqrt2], and ln(m) = 2 atanh(s) =
// 2s (1 + LN_C1 s^2 + LN_C2 s^4 + ... + LN_C11 s^22), s = (m - 1) / (m + 1).
export const LN2 = 0.6931471805599453
export const SQRT2 = 1.4142135623730951
/** Scales a subnormal into the normal range. */
export const TWO_POW_54 = 18014398509481984
export const LN_C1 = 1 / 3
export const LN_C2 = 1 / 5
export const LN_C3 = 1 / 7
export const LN_C4 = 1 / 9
export const LN_C5 = 1 / 11
export const LN_C6 = 1 / 13
export const LN_C7 = 1 / 15
export const LN_C8 = 1 / 17
export const LN_C9 = 1 / 19
export const LN_C10 = 1 / 21
export const LN_C11 = 1 / 23
