import { grow } from './alloc'
import { FNV_OFFSET, fnv1Bytes, fnv1Word } from './fnv'

/**
 * The node table, indexed by node id (the host hands ids out and reuses released ones): per id,
 * the node's hash, then the FNV state after hashing le64(nodeHash), so that a pathway hash,
 * fnv1_64(le64(nodeHash) ++ le64(parent)), only hashes the parent's 8 bytes. The table holds no
 * address, so its bytes copied into a fresh instance's table carry every node over.
 */

const ENTRY_SHIFT: usize = 4
let table: usize = 0
let capacity: i32 = 0
let count: i32 = 0
/** The state of an unknown id: the TS core hashes an unknown node as 0. */
const UNKNOWN_STATE: u64 = fnv1Word(FNV_OFFSET, 0)

/** Makes the table at least `n` ids long (the new ids unknown); returns its address. */
export function sizeNodes(n: i32): usize {
  if (n > capacity) {
    let c = capacity == 0 ? 64 : capacity
    while (c < n) c <<= 1
    table = grow(table, <usize>c << ENTRY_SHIFT)
    capacity = c
  }
  for (; count < n; count++) {
    const at = table + (<usize>count << ENTRY_SHIFT)
    store<u64>(at, 0)
    store<u64>(at, UNKNOWN_STATE, 8)
  }
  return table
}

/** The table's length in bytes. */
export function nodeBytes(): usize {
  return <usize>count << ENTRY_SHIFT
}

/** Hashes the utf8(service + env + sortedTags.join('')) at `ptr` into node `id`. */
export function defineNode(id: i32, ptr: usize, len: usize): void {
  if (id < 0) return
  sizeNodes(id + 1)
  const hash = fnv1Bytes(ptr, len)
  const at = table + (<usize>id << ENTRY_SHIFT)
  store<u64>(at, hash)
  store<u64>(at, fnv1Word(FNV_OFFSET, hash), 8)
}

export function nodeHash(node: i32): u64 {
  return <u32>node < <u32>count ? load<u64>(table + (<usize>node << ENTRY_SHIFT)) : 0
}

// @ts-ignore: decorator
@inline
export function pathwayHash(node: i32, parent: u64): u64 {
  const state = <u32>node < <u32>count ? load<u64>(table + (<usize>node << ENTRY_SHIFT), 8) : UNKNOWN_STATE
  return fnv1Word(state, parent)
}
