/**
 * The natural logarithm of `bindings/ts/log.ts`, step for step and literal for literal: built only
 * from IEEE-754 basic operations so that both cores compute the same bits (AssemblyScript's
 * Math.log and V8's differ by an ulp, which would move a sketch key on a boundary).
 */

const LN2: f64 = 0.6931471805599453
const SQRT2: f64 = 1.4142135623730951
const TWO_POW_54: f64 = 18014398509481984

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
      (0.3333333333333333 +
        s2 *
          (0.2 +
            s2 *
              (0.14285714285714285 +
                s2 *
                  (0.1111111111111111 +
                    s2 *
                      (0.09090909090909091 +
                        s2 *
                          (0.07692307692307693 +
                            s2 *
                              (0.06666666666666667 +
                                s2 *
                                  (0.058823529411764705 +
                                    s2 * (0.05263157894736842 + s2 * (0.047619047619047616 + s2 * 0.043478260869565216))))))))))
  return <f64>e * LN2 + 2 * s * p
}
