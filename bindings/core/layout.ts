/**
 * The memory both cores share with their callers, and the Wasm core with its host: the single
 * definition of it. `scripts/gen-assembly-constants.mjs` writes it out as
 * `assembly/generated/layout.ts` at build time, so the AssemblyScript side cannot drift from it.
 */

/** Batch record layout: indexes into a record of BATCH_STRIDE float64 slots. */
export const BATCH_NODE = 0
export const BATCH_PARENT_HI = 1
export const BATCH_PARENT_LO = 2
export const BATCH_PATHWAY_LATENCY = 3
export const BATCH_EDGE_LATENCY = 4
export const BATCH_PAYLOAD = 5
export const BATCH_OUT_HI = 6
export const BATCH_OUT_LO = 7
export const BATCH_STRIDE = 8
export const BATCH_CAPACITY = 1024

/**
 * Wasm scratch words (u32) through which results the host reads come out. A 64-bit value is
 * stored whole at its LO word, so its HI word is the next one (Wasm is little-endian). Calls
 * reuse words 2 and 3: an encoded sketch's or a drained chunk's length; a sketch's occupied bins'
 * count and first key; the node table's or a node's tags' length in bytes. A drained chunk's
 * bucket and the addresses of its bytes and of its points' ends follow.
 */
export const HASH_LO = 0
export const HASH_HI = HASH_LO + 1
export const OUT_LENGTH = 2
export const OUT_MIN_KEY = 3
export const CHUNK_BUCKET = 4
export const CHUNK_AT = 5
export const CHUNK_ENDS = 6
export const SCRATCH_WORDS = 8
