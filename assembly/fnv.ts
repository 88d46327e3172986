/** FNV-1 64 (multiply, then xor) on native u64. */

export const FNV_OFFSET: u64 = 0xcbf29ce484222325
const FNV_PRIME: u64 = 0x100000001b3

export function fnv1Bytes(ptr: usize, len: usize): u64 {
  let h = FNV_OFFSET
  for (let i: usize = 0; i < len; i++) h = (h * FNV_PRIME) ^ <u64>load<u8>(ptr + i)
  return h
}

/** Continues the hash `h` with the 8 bytes of le64(word), unrolled: this is the hot path of every checkpoint. */
// @ts-ignore: decorator
@inline
export function fnv1Word(h: u64, word: u64): u64 {
  h = (h * FNV_PRIME) ^ (word & 0xff)
  h = (h * FNV_PRIME) ^ ((word >>> 8) & 0xff)
  h = (h * FNV_PRIME) ^ ((word >>> 16) & 0xff)
  h = (h * FNV_PRIME) ^ ((word >>> 24) & 0xff)
  h = (h * FNV_PRIME) ^ ((word >>> 32) & 0xff)
  h = (h * FNV_PRIME) ^ ((word >>> 40) & 0xff)
  h = (h * FNV_PRIME) ^ ((word >>> 48) & 0xff)
  return (h * FNV_PRIME) ^ (word >>> 56)
}
