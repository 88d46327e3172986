/**
 * FNV-1 64 (multiply, then xor) on 32-bit halves, without BigInt.
 * The prime 0x100000001b3 is 2^40 + 0x1b3, so h * prime = (h << 40) + h * 0x1b3 (mod 2^64).
 */

const TWO_32 = 4294967296
export const OFFSET_HI = 0xcbf29ce4
export const OFFSET_LO = 0x84222325

/** Result halves of the last call, unsigned. */
export const fnvOut = { hi: 0, lo: 0 }

export function fnv1Bytes(bytes: Uint8Array, hi = OFFSET_HI, lo = OFFSET_LO): void {
  for (let i = 0; i < bytes.length; i++) {
    const t = lo * 0x1b3
    hi = (hi * 0x1b3 + Math.floor(t / TWO_32) + (lo << 8)) >>> 0
    lo = ((t >>> 0) ^ bytes[i]) >>> 0
  }
  fnvOut.hi = hi
  fnvOut.lo = lo
}

/** fnv1_64(le64(a) ++ le64(b)), into fnvOut. */
export function fnv1Pair(aHi: number, aLo: number, bHi: number, bLo: number): void {
  let hi = OFFSET_HI
  let lo = OFFSET_LO
  for (let i = 0; i < 16; i++) {
    const word = i < 4 ? aLo : i < 8 ? aHi : i < 12 ? bLo : bHi
    const t = lo * 0x1b3
    hi = (hi * 0x1b3 + Math.floor(t / TWO_32) + (lo << 8)) >>> 0
    lo = ((t >>> 0) ^ ((word >>> ((i & 3) << 3)) & 0xff)) >>> 0
  }
  fnvOut.hi = hi
  fnvOut.lo = lo
}
