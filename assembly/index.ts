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
  HASH_LO,
  OUT_BUCKET,
  OUT_EDGE_LENGTH,
  OUT_HASH_LO,
  OUT_LENGTH,
  OUT_MIN_KEY,
  OUT_NODE,
  OUT_PARENT_LO,
  OUT_PATHWAY_LENGTH,
  OUT_PAYLOAD_LENGTH,
  SCRATCH_WORDS,
} from './generated/layout'
import { defineNode, nodeBytes, nodeHash as hashOfNode, pathwayHash as hashPathway, sizeNodes } from './nodes'
import { clearSketch, keyOrZero, Sketch, SKETCH_SIZE } from './sketch'

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
  putWord(OUT_LENGTH, <i32>nodeBytes())
  return at
}

export function nodeHash(node: i32): void {
  putWords(HASH_LO, hashOfNode(node))
}

export function pathwayHash(node: i32, parentHi: u32, parentLo: u32): void {
  putWords(HASH_LO, hashPathway(node, (<u64>parentHi << 32) | parentLo))
}

export function checkpoint(node: i32, parentHi: u32, parentLo: u32, bucket: i32, pathwayLatency: f64, edgeLatency: f64, payloadBytes: f64): bool {
  const parent = (<u64>parentHi << 32) | parentLo
  const hash = hashPathway(node, parent)
  putWords(HASH_LO, hash)
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
  if (count > 0) putWords(HASH_LO, load<u64>(BATCH_HASHES + (<usize>(count - 1) << 3)))
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
  putWord(OUT_BUCKET, p.bucket)
  putWord(OUT_NODE, p.node)
  putWords(OUT_HASH_LO, p.hash)
  putWords(OUT_PARENT_LO, p.parent)
  putWord(OUT_PATHWAY_LENGTH, a)
  putWord(OUT_EDGE_LENGTH, b)
  putWord(OUT_PAYLOAD_LENGTH, c)
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

/** Encodes the protobuf into the output; its length into the scratch. */
export function sketchEncode(s: Sketch): usize {
  const size = s.protoSize()
  const out = reserveOutput(<usize>size)
  s.encode(out)
  putWord(OUT_LENGTH, size)
  return out
}

export function sketchFree(s: Sketch): void {
  s.release()
  heap.free(changetype<usize>(s))
}
