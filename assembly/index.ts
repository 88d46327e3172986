/**
 * The exports of the Wasm core, wrapped by `bindings/wasm/core.ts`. 64-bit hashes cross as u32
 * halves in and through the scratch area out, never as BigInt. Sketches are handles: the address
 * of an unmanaged Sketch.
 */
import {
  beginDrain,
  droppedPoints as aggregatorDropped,
  drainedPoint,
  drainedTotal,
  freeDrained,
  freeDrainedPoint,
  initAggregator,
  livePoints as aggregatorLive,
  record,
} from './aggregator'
import { grow } from './alloc'
import {
  BATCH_CAPACITY,
  BATCH_EDGE_LATENCY,
  BATCH_NODE,
  BATCH_OUT_HI,
  BATCH_OUT_LO,
  BATCH_PARENT_HI,
  BATCH_PARENT_LO,
  BATCH_PATHWAY_LATENCY,
  BATCH_PAYLOAD,
  BATCH_STRIDE,
  CHUNK_AT,
  CHUNK_BUCKET,
  CHUNK_ENDS,
  HASH_LO,
  OUT_LENGTH,
  OUT_MIN_KEY,
  SCRATCH_WORDS,
} from './generated/layout'
import { defineNode, nodeBytes, nodeHash as hashOfNode, nodeTagsAt, nodeTagsLength, pathwayHash as hashPathway, setNodeTags, sizeNodes } from './nodes'
import { clearSketch, keyOrZero, Sketch, SKETCH_SIZE } from './sketch'
import { measurePoint, writePoint } from './stats-point'

/** Words the host reads results from, laid out by `bindings/core/layout.ts`. */
const SCRATCH = memory.data(SCRATCH_WORDS << 2, 8)

// @ts-ignore: decorator
@inline
function putWord(word: i32, value: i32): void {
  store<i32>(SCRATCH + (<usize>word << 2), value)
}

/** A 64-bit value at its LO word; the next word is its HI. */
// @ts-ignore: decorator
@inline
function putWords(lo: i32, value: u64): void {
  store<u64>(SCRATCH + (<usize>lo << 2), value)
}

/** The batch buffer the host fills through a Float64Array. */
const BATCH = memory.data(BATCH_CAPACITY * BATCH_STRIDE * 8, 8)
/** Host-written bytes (node text, bins of a sketch from another instance). */
let input: usize = 0
let inputCapacity: usize = 0
/** Bytes for the host to copy out (protobufs, drained points). */
let output: usize = 0
let outputCapacity: usize = 0
/** The end of each point of the last chunk (u32 offsets into the output). */
let ends: usize = 0
let endsCapacity: i32 = 0
/** The drain under way: its next point, whether its sketches may take the sparse form. */
let cursor: i32 = 0
let sparse = false

/** Room for `size` bytes of output; `keep`: what it holds is kept. */
function reserveOutput(size: usize, keep: bool = false): usize {
  if (size > outputCapacity) {
    outputCapacity = size > outputCapacity << 1 ? size : outputCapacity << 1
    if (keep) {
      output = grow(output, outputCapacity)
    } else {
      if (output != 0) heap.free(output)
      output = heap.alloc(outputCapacity)
    }
  }
  return output
}

/** At most `perBucket` points in a bucket, and `live` in all. */
export function init(perBucket: i32, live: i32): void {
  initAggregator(perBucket, live)
}

export function scratch(): usize {
  return SCRATCH
}

export function batch(): usize {
  return BATCH
}

/** The address where the host writes `size` bytes for the next call that reads input. */
export function reserveInput(size: usize): usize {
  if (size > inputCapacity) {
    inputCapacity = size > inputCapacity << 1 ? size : inputCapacity << 1
    input = grow(input, inputCapacity)
  }
  return input
}

/**
 * Defines node `id` (new, or reused after a release): utf8(service + env + sortedTags.join('')) is
 * the first `len` input bytes, its sorted edge tags as msgpack the `tagsLen` after them.
 */
export function node(id: i32, len: usize, tagsLen: usize): void {
  defineNode(id, input, len, tagsLen)
  hashedNode = -1
}

/** The address of node `id`'s edge tags (msgpack), their length into the scratch: for the host to copy them to a new instance. */
export function nodeTags(id: i32): usize {
  putWord(OUT_LENGTH, <i32>nodeTagsLength(id))
  return nodeTagsAt(id)
}

/** Node `id`'s edge tags (msgpack) are the first `len` input bytes. */
export function nodeTagsSet(id: i32, len: usize): void {
  setNodeTags(id, input, len)
}

/**
 * Makes the node table at least `count` ids long and returns its address; its length in bytes
 * into the scratch. The host copies these bytes from an instance to its replacement.
 */
export function nodeTable(count: i32): usize {
  const at = sizeNodes(count)
  putWord(OUT_LENGTH, <i32>nodeBytes())
  return at
}

export function nodeHash(node: i32): void {
  putWords(HASH_LO, hashOfNode(node))
}

export function pathwayHash(node: i32, parentHi: u32, parentLo: u32): void {
  putWords(HASH_LO, hashPathway(node, (<u64>parentHi << 32) | parentLo))
}

/**
 * The last pathway hash computed and its node and parent: a stream's messages hang off one parent
 * (a send's, a pathway's), and their hash is then not computed again. A node defined anew forgets it.
 */
let hashedNode: i32 = -1
let hashedParent: u64 = 0
let hashed: u64 = 0

// @ts-ignore: decorator
@inline
function pathwayHashOf(node: i32, parent: u64): u64 {
  if (node != hashedNode || parent != hashedParent) {
    hashed = hashPathway(node, parent)
    hashedNode = node
    hashedParent = parent
  }
  return hashed
}

/**
 * The last value of each sketch turned into a key, and its key: sizes repeat (messages of one
 * shape), and so do both latencies across the messages of a batch sent together. (NaN never
 * equals itself: the first value is always keyed.)
 */
let keyedPathway: f64 = NaN
let pathwayKey: i32 = 0
let keyedEdge: f64 = NaN
let edgeKey: i32 = 0
let keyedPayload: f64 = NaN
let payloadKey: i32 = 0

// @ts-ignore: decorator
@inline
function pathwayKeyOf(latency: f64): i32 {
  if (latency != keyedPathway) {
    pathwayKey = keyOrZero(latency)
    keyedPathway = latency
  }
  return pathwayKey
}

// @ts-ignore: decorator
@inline
function edgeKeyOf(latency: f64): i32 {
  if (latency != keyedEdge) {
    edgeKey = keyOrZero(latency)
    keyedEdge = latency
  }
  return edgeKey
}

// @ts-ignore: decorator
@inline
function payloadKeyOf(bytes: f64): i32 {
  if (bytes != keyedPayload) {
    payloadKey = keyOrZero(bytes)
    keyedPayload = bytes
  }
  return payloadKey
}

export function checkpoint(node: i32, parentHi: u32, parentLo: u32, bucket: i32, pathwayLatency: f64, edgeLatency: f64, payloadBytes: f64): bool {
  const parent = (<u64>parentHi << 32) | parentLo
  const hash = pathwayHashOf(node, parent)
  putWords(HASH_LO, hash)
  return record(bucket, hash, parent, node, pathwayKeyOf(pathwayLatency), edgeKeyOf(edgeLatency), payloadKeyOf(payloadBytes))
}

/** The 32 bits JS's ToUint32 gives a batch slot (for integers of magnitude below 2^63, as TsCore reads them). */
// @ts-ignore: decorator
@inline
function toUint32(x: f64): u32 {
  return <u32><i64>x
}

// @ts-ignore: decorator
@inline
function slot(record: usize, field: i32): f64 {
  return load<f64>(record + (<usize>field << 3))
}

// @ts-ignore: decorator
@inline
function batchParent(record: usize): u64 {
  return (<u64>toUint32(slot(record, BATCH_PARENT_HI)) << 32) | toUint32(slot(record, BATCH_PARENT_LO))
}

/** Per batch record: its pathway hash and three keys, computed in a first pass. */
const BATCH_HASHES = memory.data(BATCH_CAPACITY * 8, 8)
const BATCH_KEYS = memory.data(BATCH_CAPACITY * 3 * 4, 4)

/**
 * Two passes: hashes and keys of every record first (pure, and independent from record to record,
 * so the CPU runs several records' FNV and logarithm chains at once), then the probes and adds.
 */
export function checkpointBatch(count: i32, bucket: i32): i32 {
  if (count > BATCH_CAPACITY) count = BATCH_CAPACITY
  for (let i = 0; i < count; i++) {
    const r = BATCH + ((<usize>i * BATCH_STRIDE) << 3)
    const hash = pathwayHashOf(<i32>toUint32(slot(r, BATCH_NODE)), batchParent(r))
    store<u64>(BATCH_HASHES + (<usize>i << 3), hash)
    store<f64>(r + (BATCH_OUT_HI << 3), <f64>(<u32>(hash >>> 32)))
    store<f64>(r + (BATCH_OUT_LO << 3), <f64>(<u32>hash))
    const k = BATCH_KEYS + <usize>i * 12
    store<i32>(k, pathwayKeyOf(slot(r, BATCH_PATHWAY_LATENCY)))
    store<i32>(k, edgeKeyOf(slot(r, BATCH_EDGE_LATENCY)), 4)
    store<i32>(k, payloadKeyOf(slot(r, BATCH_PAYLOAD)), 8)
  }
  let recorded = 0
  for (let i = 0; i < count; i++) {
    const r = BATCH + ((<usize>i * BATCH_STRIDE) << 3)
    const k = BATCH_KEYS + <usize>i * 12
    const hash = load<u64>(BATCH_HASHES + (<usize>i << 3))
    if (record(bucket, hash, batchParent(r), <i32>toUint32(slot(r, BATCH_NODE)), load<i32>(k), load<i32>(k, 4), load<i32>(k, 8))) recorded++
  }
  // like a run of single checkpoints, the last one's hash is the current hash
  if (count > 0) putWords(HASH_LO, load<u64>(BATCH_HASHES + (<usize>(count - 1) << 3)))
  return recorded
}

export function livePoints(): i32 {
  return aggregatorLive()
}

export function droppedPoints(): f64 {
  return aggregatorDropped()
}

/**
 * Starts a drain of the buckets below `beforeBucket` (ending the one under way): how many points
 * it hands out. `allowSparse`: each sketch in the smaller of its two protobuf forms.
 */
export function drainBegin(beforeBucket: f64, allowSparse: bool): i32 {
  cursor = 0
  sparse = allowSparse
  return beginDrain(beforeBucket)
}

/**
 * Writes the next drained points, all of one bucket, as msgpack StatsPoint maps into the output:
 * as many as fit in `maxBytes`, and at least one. Returns how many (0 once the drain is written);
 * their bucket, their bytes' length, the output's and the ends' addresses into the scratch.
 */
export function drainChunk(maxBytes: i32): i32 {
  const total = drainedTotal()
  if (cursor >= total) return 0
  const bucket = drainedPoint(cursor).bucket
  let out = output
  let length = 0
  let n = 0
  while (cursor < total) {
    const p = drainedPoint(cursor)
    if (p.bucket != bucket) break
    const size = measurePoint(p, sparse)
    if (n > 0 && length + size > maxBytes) break
    if (<usize>(length + size) > outputCapacity) out = reserveOutput(<usize>(length + size), true)
    if (n == endsCapacity) {
      endsCapacity = endsCapacity == 0 ? 256 : endsCapacity << 1
      ends = grow(ends, <usize>endsCapacity << 2)
    }
    length = <i32>(writePoint(out + <usize>length, p) - out)
    store<u32>(ends + (<usize>n << 2), length)
    freeDrainedPoint(cursor)
    n++
    cursor++
  }
  putWord(CHUNK_BUCKET, bucket)
  putWord(OUT_LENGTH, length)
  putWord(CHUNK_AT, <i32>out)
  putWord(CHUNK_ENDS, <i32>ends)
  return n
}

/** Ends the drain: frees its points, written or not. */
export function drainEnd(): void {
  freeDrained()
  cursor = 0
}

export function sketchNew(): Sketch {
  return clearSketch(heap.alloc(SKETCH_SIZE))
}

export function sketchAdd(s: Sketch, value: f64, weight: f64): void {
  s.add(value, weight)
}

export function sketchMerge(s: Sketch, other: Sketch): void {
  s.merge(other)
}

/** Merges a sketch of another instance: its zero count, and its occupied bins copied to the input (n and minKey are what `sketchBins` put in the scratch). */
export function sketchMergeInput(s: Sketch, zeroCount: f64, n: i32, minKey: i32): void {
  s.mergeBins(zeroCount, input, n, minKey)
}

/** The address of the occupied bins; their count and first key into the scratch. */
export function sketchBins(s: Sketch): usize {
  putWord(OUT_LENGTH, s.occupiedLength())
  putWord(OUT_MIN_KEY, s.minKey)
  return s.occupiedBins()
}

export function sketchQuantileKey(s: Sketch, q: f64): f64 {
  return s.quantileKey(q)
}

export function sketchCount(s: Sketch): f64 {
  return s.binCount + s.zeroCount
}

export function sketchZeroCount(s: Sketch): f64 {
  return s.zeroCount
}

/** Encodes the protobuf (the contiguous form) into the output; its length into the scratch. */
export function sketchEncode(s: Sketch): usize {
  const form = s.measure(false)
  const size = s.protoSize(form)
  const out = reserveOutput(<usize>size)
  s.encode(out, form)
  putWord(OUT_LENGTH, size)
  return out
}

export function sketchFree(s: Sketch): void {
  s.release()
  heap.free(changetype<usize>(s))
}

/** The sketch store (`store*`), used in an instance of its own: assembly/sketch-store.ts. */
export * from './sketch-store'
