import { grow } from './alloc'
import { FNV_OFFSET, fnv1Bytes, fnv1Word } from './fnv'

/**
 * Registered nodes: each node's hash, and the FNV state after hashing le64(nodeHash), so that a
 * pathway hash, fnv1_64(le64(nodeHash) ++ le64(parent)), only hashes the parent's 8 bytes.
 * Both are u64 arrays indexed by node id, ids handed out from 0 in registration order.
 */

let hashes: usize = 0
let states: usize = 0
let capacity: i32 = 0
let count: i32 = 0
/** The state of an unknown id: the TS core hashes an unknown node as 0. */
const UNKNOWN_STATE: u64 = fnv1Word(FNV_OFFSET, 0)

/** Registers the node whose utf8(service + env + sortedTags.join('')) is at `ptr`; returns its id. */
export function registerNode(ptr: usize, len: usize): i32 {
  if (count == capacity) {
    capacity = capacity == 0 ? 64 : capacity << 1
    hashes = grow(hashes, <usize>capacity << 3)
    states = grow(states, <usize>capacity << 3)
  }
  const hash = fnv1Bytes(ptr, len)
  store<u64>(hashes + (<usize>count << 3), hash)
  store<u64>(states + (<usize>count << 3), fnv1Word(FNV_OFFSET, hash))
  return count++
}

export function nodeHash(node: i32): u64 {
  return <u32>node < <u32>count ? load<u64>(hashes + (<usize>node << 3)) : 0
}

// @ts-ignore: decorator
@inline
export function pathwayHash(node: i32, parent: u64): u64 {
  const state = <u32>node < <u32>count ? load<u64>(states + (<usize>node << 3)) : UNKNOWN_STATE
  return fnv1Word(state, parent)
}
