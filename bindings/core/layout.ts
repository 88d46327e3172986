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
 * reuse words 2 and 3: a drained point's bucket and node; an encoded sketch's length; a sketch's
 * occupied bins' count and first key; the node table's length in bytes.
 */
export const HASH_LO = 0
export const HASH_HI = HASH_LO + 1
export const OUT_BUCKET = 2
export const OUT_LENGTH = 2
export const OUT_NODE = 3
export const OUT_MIN_KEY = 3
export const OUT_HASH_LO = 4
export const OUT_HASH_HI = OUT_HASH_LO + 1
export const OUT_PARENT_LO = 6
export const OUT_PARENT_HI = OUT_PARENT_LO + 1
export const OUT_PATHWAY_LENGTH = 8
export const OUT_EDGE_LENGTH = 9
export const OUT_PAYLOAD_LENGTH = 10
export const SCRATCH_WORDS = 16
