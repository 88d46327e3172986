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
} from './generated/sketch-constants'

/**
 * The natural logarithm of `bindings/ts/log.ts`, step for step and constant for constant: built only
 * from IEEE-754 basic operations so that both cores compute the same bits (AssemblyScript's
 * Math.log and V8's differ by an ulp, which would move a sketch key on a boundary).
 */

/** ln(x) for finite x > 0. Inline, so that the three of a checkpoint run side by side. */
// @ts-ignore: decorator
@inline
export function ln(x: f64): f64 {
  let e: i32 = 0
  let bits = reinterpret<u64>(x)
  if (<u32>(bits >>> 52) == 0) {
    // subnormal: scale into the normal range first
    bits = reinterpret<u64>(x * TWO_POW_54)
    e = -54
  }
  const hi = <u32>(bits >>> 32)
  e += <i32>(hi >>> 20) - 1023
  let m = reinterpret<f64>((<u64>((hi & 0x000fffff) | 0x3ff00000) << 32) | (bits & 0xffffffff)) // in [1, 2)
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
  return <f64>e * LN2 + 2 * s * p
}
