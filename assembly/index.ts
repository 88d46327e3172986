/**
 * The exports of the Wasm core, wrapped by `bindings/wasm/core.ts`. 64-bit hashes cross as u32
 * halves in and through the scratch area out, never as BigInt. Sketches are handles: the address
 * of an unmanaged Sketch.
 */
import {
  beginDrain,
  droppedPoints as aggregatorDropped,
  drainedPoint,
  freeDrained,
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
} from './constants'
import { defineNode, nodeBytes, nodeHash as hashOfNode, pathwayHash as hashPathway, sizeNodes } from './nodes'
import { clearSketch, keyOrZero, Sketch, SKETCH_SIZE } from './sketch'

/**
 * Scratch words (u32) the host reads: the last hash at 0 (lo) and 1 (hi); a drained point's
 * bucket at 2, node at 3, hash at 4-5, parent at 6-7, sketch lengths at 8-10; an encoded
 * sketch's length at 2; a sketch's occupied bins at 2 (count) and 3 (minKey); the node table's
 * length at 2.
 */
const SCRATCH = memory.data(64, 8)
/** The batch buffer the host fills through a Float64Array. */
const BATCH = memory.data(BATCH_CAPACITY * BATCH_STRIDE * 8, 8)
/** Host-written bytes (node text, bins of a sketch from another instance). */
let input: usize = 0
let inputCapacity: usize = 0
/** Bytes for the host to copy out (protobufs). */
let output: usize = 0
let outputCapacity: usize = 0

function reserveOutput(size: usize): usize {
  if (size > outputCapacity) {
    outputCapacity = size > outputCapacity << 1 ? size : outputCapacity << 1
    if (output != 0) heap.free(output)
    output = heap.alloc(outputCapacity)
  }
  return output
}

export function init(maxPoints: i32): void {
  initAggregator(maxPoints)
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

/** Defines node `id` (new, or reused after a release): utf8(service + env + sortedTags.join('')) is the first `len` input bytes. */
export function node(id: i32, len: usize): void {
  defineNode(id, input, len)
}

/**
 * Makes the node table at least `count` ids long and returns its address; its length in bytes
 * into the scratch. The host copies these bytes from an instance to its replacement.
 */
export function nodeTable(count: i32): usize {
  const at = sizeNodes(count)
  store<i32>(SCRATCH, <i32>nodeBytes(), 8)
  return at
}

export function nodeHash(node: i32): void {
  store<u64>(SCRATCH, hashOfNode(node))
}

export function pathwayHash(node: i32, parentHi: u32, parentLo: u32): void {
  store<u64>(SCRATCH, hashPathway(node, (<u64>parentHi << 32) | parentLo))
}

export function checkpoint(node: i32, parentHi: u32, parentLo: u32, bucket: i32, pathwayLatency: f64, edgeLatency: f64, payloadBytes: f64): bool {
  const parent = (<u64>parentHi << 32) | parentLo
  const hash = hashPathway(node, parent)
  store<u64>(SCRATCH, hash)
  return record(bucket, hash, parent, node, keyOrZero(pathwayLatency), keyOrZero(edgeLatency), keyOrZero(payloadBytes))
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
    const hash = hashPathway(<i32>toUint32(slot(r, BATCH_NODE)), batchParent(r))
    store<u64>(BATCH_HASHES + (<usize>i << 3), hash)
    store<f64>(r + (BATCH_OUT_HI << 3), <f64>(<u32>(hash >>> 32)))
    store<f64>(r + (BATCH_OUT_LO << 3), <f64>(<u32>hash))
    const k = BATCH_KEYS + <usize>i * 12
    store<i32>(k, keyOrZero(slot(r, BATCH_PATHWAY_LATENCY)))
    store<i32>(k, keyOrZero(slot(r, BATCH_EDGE_LATENCY)), 4)
    store<i32>(k, keyOrZero(slot(r, BATCH_PAYLOAD)), 8)
  }
  let recorded = 0
  for (let i = 0; i < count; i++) {
    const r = BATCH + ((<usize>i * BATCH_STRIDE) << 3)
    const k = BATCH_KEYS + <usize>i * 12
    const hash = load<u64>(BATCH_HASHES + (<usize>i << 3))
    if (record(bucket, hash, batchParent(r), <i32>toUint32(slot(r, BATCH_NODE)), load<i32>(k), load<i32>(k, 4), load<i32>(k, 8))) recorded++
  }
  // like a run of single checkpoints, the last one's hash is the current hash
  if (count > 0) store<u64>(SCRATCH, load<u64>(BATCH_HASHES + (<usize>(count - 1) << 3)))
  return recorded
}

export function livePoints(): i32 {
  return aggregatorLive()
}

export function droppedPoints(): f64 {
  return aggregatorDropped()
}

/** Starts a drain of the buckets below `beforeBucket`: how many points it hands out. */
export function drainBegin(beforeBucket: f64): i32 {
  return beginDrain(beforeBucket)
}

/** Encodes the i-th drained point's sketches, one after the other, into the output; its key into the scratch. */
export function drainPoint(i: i32): usize {
  const p = drainedPoint(i)
  const a = p.pathway.protoSize()
  const b = p.edge.protoSize()
  const c = p.payload.protoSize()
  const out = reserveOutput(<usize>(a + b + c))
  p.pathway.encode(out)
  p.edge.encode(out + a)
  p.payload.encode(out + a + b)
  store<i32>(SCRATCH, p.bucket, 8)
  store<i32>(SCRATCH, p.node, 12)
  store<u64>(SCRATCH, p.hash, 16)
  store<u64>(SCRATCH, p.parent, 24)
  store<i32>(SCRATCH, a, 32)
  store<i32>(SCRATCH, b, 36)
  store<i32>(SCRATCH, c, 40)
  return out
}

/** Frees the drained points. */
export function drainEnd(): void {
  freeDrained()
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

/** Merges a sketch of another instance: its zero count, and its occupied bins copied to the input (count at scratch 2, minKey at 3 of `sketchBins`). */
export function sketchMergeInput(s: Sketch, zeroCount: f64, n: i32, minKey: i32): void {
  s.mergeBins(zeroCount, input, n, minKey)
}

/** The address of the occupied bins; their count and first key into the scratch. */
export function sketchBins(s: Sketch): usize {
  store<i32>(SCRATCH, s.occupiedLength(), 8)
  store<i32>(SCRATCH, s.minKey, 12)
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

/** Encodes the protobuf into the output; its length into the scratch. */
export function sketchEncode(s: Sketch): usize {
  const size = s.protoSize()
  const out = reserveOutput(<usize>size)
  s.encode(out)
  store<i32>(SCRATCH, size, 8)
  return out
}

export function sketchFree(s: Sketch): void {
  s.release()
  heap.free(changetype<usize>(s))
}
