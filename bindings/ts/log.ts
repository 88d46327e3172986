import {
  LN_C1,
  LN_C10,
  LN_C11,
  LN_C2,
  LN_C3,
  LN_C4,
  LN_C5,
  LN_C6,
  LN_C7,
  LN_C8,
  LN_C9,
  LN2,
  SQRT2,
  TWO_POW_54,
} from '../core/sketch-constants.js'

/**
 * A natural logarithm built only from IEEE-754 basic operations, so that the TS and Wasm
 * cores (and every JS engine) compute the same bits. Math.log differs by an ulp between
 * V8, JavaScriptCore and AssemblyScript's libm, which would move a sketch key on a boundary.
 * Accuracy is a few ulps, far inside the sketch's 1%.
 */

const f64 = new Float64Array(1)
const u32 = new Uint32Array(f64.buffer)
// Which Uint32 half holds the sign/exponent: the high word, at index 1 on little-endian hosts.
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0

/** ln(x) for finite x > 0. */
export function ln(x: number): number {
  let e = 0
  f64[0] = x
  let hi = u32[HI]
  if (hi >>> 20 === 0) {
    // subnormal: scale into the normal range first
    f64[0] = x * TWO_POW_54
    hi = u32[HI]
    e = -54
  }
  e += (hi >>> 20) - 1023
  u32[HI] = (hi & 0x000fffff) | 0x3ff00000
  let m = f64[0] // in [1, 2)
  if (m > SQRT2) {
    m *= 0.5
    e += 1
  }
  // ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716: 12 odd terms reach 1e-17
  const s = (m - 1) / (m + 1)
  const s2 = s * s
  const p =
    1 +
    s2 *
      (LN_C1 +
        s2 *
          (LN_C2 +
            s2 * (LN_C3 + s2 * (LN_C4 + s2 * (LN_C5 + s2 * (LN_C6 + s2 * (LN_C7 + s2 * (LN_C8 + s2 * (LN_C9 + s2 * (LN_C10 + s2 * LN_C11))))))))))
  return e * LN2 + 2 * s * p
}
