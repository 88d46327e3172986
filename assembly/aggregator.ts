import { allocZeroed, grow } from './alloc'
import { clearSketch, Sketch, SKETCH_SIZE } from './sketch'

/**
 * Stats points of all live buckets, kept as `bindings/ts/aggregator.ts` keeps them: a list in
 * insertion order (which is the drain order), found through an open-addressing index that
 * probes in the same slot order. The index holds point addresses rather than positions.
 */

/** The key of one stats point; its three sketches follow it in the same block. */
// @ts-ignore: decorator
@unmanaged
export class Point {
  hash: u64
  parent: u64
  bucket: i32
  node: i32

  // @ts-ignore: decorator
  @inline
  get pathway(): Sketch {
    return changetype<Sketch>(changetype<usize>(this) + offsetof<Point>())
  }

  // @ts-ignore: decorator
  @inline
  get edge(): Sketch {
    return changetype<Sketch>(changetype<usize>(this) + offsetof<Point>() + SKETCH_SIZE)
  }

  // @ts-ignore: decorator
  @inline
  get payload(): Sketch {
    return changetype<Sketch>(changetype<usize>(this) + offsetof<Point>() + 2 * SKETCH_SIZE)
  }
}

const MIN_SLOTS: i32 = 1024
/** log2 of an address's size: lists and the index hold addresses. */
const PTR_SHIFT: usize = alignof<usize>()

let maxPoints: i32 = 0
/** Live points, in insertion order. */
let points: usize = 0
let pointCount: i32 = 0
let pointCapacity: i32 = 0
/** Open-addressing index: point addresses, 0 is empty. */
let slots: usize = 0
let slotCount: i32 = 0
/** A float so that it never wraps. */
let dropped: f64 = 0
/** Points handed out by the drain under way, in insertion order. */
let drained: usize = 0
let drainedCount: i32 = 0
let drainedCapacity: i32 = 0

export function initAggregator(cap: i32): void {
  maxPoints = cap
  reindex(MIN_SLOTS)
}

export function livePoints(): i32 {
  return pointCount
}

export function droppedPoints(): f64 {
  return dropped
}

// @ts-ignore: decorator
@inline
function mix(bucket: i32, hashLo: u32, parentLo: u32, node: i32): u32 {
  let h = (hashLo ^ <u32>bucket) * 0x9e3779b1
  h = (h ^ parentLo ^ (<u32>node << 16)) * 0x85ebca6b
  return h ^ (h >>> 15)
}

// @ts-ignore: decorator
@inline
function pointAt(list: usize, i: i32): Point {
  return changetype<Point>(load<usize>(list + (<usize>i << PTR_SHIFT)))
}

/**
 * Records one checkpoint, its three values already turned into keys by keyOrZero, into its
 * point; false when the cap dropped it. Callers compute the keys ahead: the logarithms are
 * independent of each other and of the probe, and the CPU overlaps them.
 */
// @ts-ignore: decorator
@inline
export function record(bucket: i32, hash: u64, parent: u64, node: i32, pathwayKey: i32, edgeKey: i32, payloadKey: i32): bool {
  const mask = <u32>slotCount - 1
  let slot = mix(bucket, <u32>hash, <u32>parent, node) & mask
  let at: usize = 0
  for (;;) {
    at = load<usize>(slots + (<usize>slot << PTR_SHIFT))
    if (at == 0) break
    const p = changetype<Point>(at)
    if (p.hash == hash && p.parent == parent && p.bucket == bucket && p.node == node) break
    slot = (slot + 1) & mask
  }
  if (at == 0) {
    if (pointCount >= maxPoints) {
      dropped += 1
      return false
    }
    at = newPoint(bucket, hash, parent, node, slot)
  }
  const point = changetype<Point>(at)
  point.pathway.addKeyOrZero(pathwayKey, 1)
  point.edge.addKeyOrZero(edgeKey, 1)
  point.payload.addKeyOrZero(payloadKey, 1)
  return true
}

function newPoint(bucket: i32, hash: u64, parent: u64, node: i32, slot: u32): usize {
  const point = changetype<Point>(heap.alloc(offsetof<Point>() + 3 * SKETCH_SIZE))
  point.hash = hash
  point.parent = parent
  point.bucket = bucket
  point.node = node
  clearSketch(changetype<usize>(point.pathway))
  clearSketch(changetype<usize>(point.edge))
  clearSketch(changetype<usize>(point.payload))
  if (pointCount == pointCapacity) {
    pointCapacity = pointCapacity == 0 ? 1024 : pointCapacity << 1
    points = grow(points, <usize>pointCapacity << PTR_SHIFT)
  }
  store<usize>(points + (<usize>pointCount << PTR_SHIFT), changetype<usize>(point))
  pointCount++
  store<usize>(slots + (<usize>slot << PTR_SHIFT), changetype<usize>(point))
  if (pointCount * 2 > slotCount) reindex(slotCount * 2)
  return changetype<usize>(point)
}

function reindex(size: i32): void {
  if (slots != 0) heap.free(slots)
  slots = allocZeroed(<usize>size << PTR_SHIFT)
  slotCount = size
  const mask = <u32>size - 1
  for (let i = 0; i < pointCount; i++) {
    const p = pointAt(points, i)
    let slot = mix(p.bucket, <u32>p.hash, <u32>p.parent, p.node) & mask
    while (load<usize>(slots + (<usize>slot << PTR_SHIFT)) != 0) slot = (slot + 1) & mask
    store<usize>(slots + (<usize>slot << PTR_SHIFT), changetype<usize>(p))
  }
}

/**
 * Moves every point of a bucket numbered below `beforeBucket` from the live list to the drained
 * list (both keep insertion order) and returns how many moved. They stay readable through
 * `drainedPoint` until `freeDrained`. `beforeBucket` is a float so that Infinity drains everything.
 */
export function beginDrain(beforeBucket: f64): i32 {
  freeDrained()
  if (drainedCapacity < pointCount) {
    drainedCapacity = pointCapacity
    drained = grow(drained, <usize>drainedCapacity << PTR_SHIFT)
  }
  let kept = 0
  for (let i = 0; i < pointCount; i++) {
    const p = pointAt(points, i)
    if (<f64>p.bucket >= beforeBucket) store<usize>(points + (<usize>(kept++) << PTR_SHIFT), changetype<usize>(p))
    else store<usize>(drained + (<usize>(drainedCount++) << PTR_SHIFT), changetype<usize>(p))
  }
  if (drainedCount == 0) return 0
  pointCount = kept
  let size = MIN_SLOTS
  while (kept * 2 > size) size *= 2
  reindex(size)
  return drainedCount
}

export function drainedPoint(i: i32): Point {
  return pointAt(drained, i)
}

export function freeDrained(): void {
  for (let i = 0; i < drainedCount; i++) {
    const p = pointAt(drained, i)
    p.pathway.release()
    p.edge.release()
    p.payload.release()
    heap.free(changetype<usize>(p))
  }
  drainedCount = 0
}
