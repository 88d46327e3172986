import { grow } from './alloc'
import { FNV_OFFSET, fnv1Bytes, fnv1Word } from './fnv'

/**
 * The node table, indexed by node id (the host hands ids out and reuses released ones): per id,
 * the node's hash, then the FNV state after hashing le64(nodeHash), so that a pathway hash,
 * fnv1_64(le64(nodeHash) ++ le64(parent)), only hashes the parent's 8 bytes. The table holds no
 * address, so its bytes copied into a fresh instance's table carry every node over.
 *
 * Beside it, per id, the node's edge tags as msgpack (an array of strings, encoded once by the
 * host), which every drained point of the node carries: a block of its own, copied over by the
 * host one id at a time.
 */

const ENTRY_SHIFT: usize = 4
let table: usize = 0
let capacity: i32 = 0
let count: i32 = 0
/** Per id: the address of its tags block, then its length (two u32). */
const TAGS_SHIFT: usize = 3
let tags: usize = 0
/** The state of an unknown id: the TS core hashes an unknown node as 0. */
const UNKNOWN_STATE: u64 = fnv1Word(FNV_OFFSET, 0)

/** Makes the table at least `n` ids long (the new ids unknown); returns its address. */
export function sizeNodes(n: i32): usize {
  if (n > capacity) {
    let c = capacity == 0 ? 64 : capacity
    while (c < n) c <<= 1
    table = grow(table, <usize>c << ENTRY_SHIFT)
    tags = grow(tags, <usize>c << TAGS_SHIFT)
    capacity = c
  }
  for (; count < n; count++) {
    const at = table + (<usize>count << ENTRY_SHIFT)
    store<u64>(at, 0)
    store<u64>(at, UNKNOWN_STATE, 8)
    store<u64>(tags + (<usize>count << TAGS_SHIFT), 0)
  }
  return table
}

/** The table's length in bytes. */
export function nodeBytes(): usize {
  return <usize>count << ENTRY_SHIFT
}

/**
 * Node `id`: hashes the utf8(service + env + sortedTags.join('')) at `ptr` (`len` bytes), and
 * keeps the `tagsLen` bytes after it, its edge tags as msgpack.
 */
export function defineNode(id: i32, ptr: usize, len: usize, tagsLen: usize): void {
  if (id < 0) return
  sizeNodes(id + 1)
  const hash = fnv1Bytes(ptr, len)
  const at = table + (<usize>id << ENTRY_SHIFT)
  store<u64>(at, hash)
  store<u64>(at, fnv1Word(FNV_OFFSET, hash), 8)
  setNodeTags(id, ptr + len, tagsLen)
}

/** Copies `len` bytes at `ptr` as node `id`'s edge tags (msgpack), replacing any it had. */
export function setNodeTags(id: i32, ptr: usize, len: usize): void {
  if (id < 0) return
  sizeNodes(id + 1)
  const at = tags + (<usize>id << TAGS_SHIFT)
  const old = load<u32>(at)
  if (old != 0) heap.free(old)
  const block: usize = len == 0 ? 0 : heap.alloc(len)
  if (len != 0) memory.copy(block, ptr, len)
  store<u32>(at, <u32>block)
  store<u32>(at, <u32>len, 4)
}

/** The address of node `id`'s edge tags (0 for an unknown id, whose points carry an empty list). */
// @ts-ignore: decorator
@inline
export function nodeTagsAt(node: i32): usize {
  return <u32>node < <u32>count ? <usize>load<u32>(tags + (<usize>node << TAGS_SHIFT)) : 0
}

// @ts-ignore: decorator
@inline
export function nodeTagsLength(node: i32): usize {
  return <u32>node < <u32>count ? <usize>load<u32>(tags + (<usize>node << TAGS_SHIFT), 4) : 0
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
