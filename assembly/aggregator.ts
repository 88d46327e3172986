import { allocZeroed, grow } from './alloc'
import { clearSketch, Sketch, SKETCH_SIZE } from './sketch'

/**
 * Stats points of all live buckets, kept as `bindings/ts/aggregator.ts` keeps them: a list in
 * insertion order, found through an open-addressing index that probes in the same slot order
 * (the index holds point addresses rather than positions), and per live bucket its number of
 * points, which the cap bounds. A drain hands points out by bucket, in insertion order within one.
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

/** Most points a bucket holds, and most alive at once. */
let maxPoints: i32 = 0
let maxLive: i32 = 0
/** Live points, in insertion order. */
let points: usize = 0
let pointCount: i32 = 0
let pointCapacity: i32 = 0
/** Open-addressing index: point addresses, 0 is empty. */
let slots: usize = 0
let slotCount: i32 = 0
/** A float so that it never wraps. */
let dropped: f64 = 0
/** Points handed out by the drain under way, by bucket, in insertion order within one. */
let drained: usize = 0
let drainedCount: i32 = 0
let drainedCapacity: i32 = 0
/** Live buckets, in order of their first point: a bucket number, then its number of points (two i32). */
let buckets: usize = 0
let bucketCount: i32 = 0
let bucketCapacity: i32 = 0
/** Where the last bucket looked up is: checkpoints come in the current bucket, one after the other. */
let lastBucket: i32 = 0

export function initAggregator(perBucket: i32, live: i32): void {
  maxPoints = perBucket
  maxLive = live
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
 * The point the last checkpoint went to (0: none): a run of checkpoints of one pathway in one
 * bucket (a stream's messages) goes to it without a probe. Points never move while alive; a
 * drain, which frees them, forgets it.
 */
let lastPoint: usize = 0

/**
 * Records one checkpoint, its three values already turned into keys by keyOrZero, into its
 * point; false when the cap dropped it. Callers compute the keys ahead: the logarithms are
 * independent of each other and of the probe, and the CPU overlaps them.
 */
// @ts-ignore: decorator
@inline
export function record(bucket: i32, hash: u64, parent: u64, node: i32, pathwayKey: i32, edgeKey: i32, payloadKey: i32): bool {
  let at = lastPoint
  if (at == 0 || !isPoint(changetype<Point>(at), bucket, hash, parent, node)) {
    at = findPoint(bucket, hash, parent, node)
    if (at == 0) return false
    lastPoint = at
  }
  const point = changetype<Point>(at)
  point.pathway.addKeyOrZero(pathwayKey, 1)
  point.edge.addKeyOrZero(edgeKey, 1)
  point.payload.addKeyOrZero(payloadKey, 1)
  return true
}

// @ts-ignore: decorator
@inline
function isPoint(p: Point, bucket: i32, hash: u64, parent: u64, node: i32): bool {
  return p.hash == hash && p.parent == parent && p.bucket == bucket && p.node == node
}

/** The point of this key, made if new; 0 when the cap drops it. */
function findPoint(bucket: i32, hash: u64, parent: u64, node: i32): usize {
  const mask = <u32>slotCount - 1
  let slot = mix(bucket, <u32>hash, <u32>parent, node) & mask
  let at: usize = 0
  for (;;) {
    at = load<usize>(slots + (<usize>slot << PTR_SHIFT))
    if (at == 0) break
    if (isPoint(changetype<Point>(at), bucket, hash, parent, node)) return at
    slot = (slot + 1) & mask
  }
  const b = pointCount < maxLive ? bucketEntry(bucket) : 0
  if (b == 0 || load<i32>(b, 4) >= maxPoints) {
    dropped += 1
    return 0
  }
  store<i32>(b, load<i32>(b, 4) + 1, 4)
  return newPoint(bucket, hash, parent, node, slot)
}

/** The entry (bucket, points) of a bucket, added with no points if it has none yet. */
function bucketEntry(bucket: i32): usize {
  if (lastBucket < bucketCount) {
    const last = buckets + (<usize>lastBucket << 3)
    if (load<i32>(last) == bucket) return last
  }
  for (let i = 0; i < bucketCount; i++) {
    const e = buckets + (<usize>i << 3)
    if (load<i32>(e) == bucket) {
      lastBucket = i
      return e
    }
  }
  if (bucketCount == bucketCapacity) {
    bucketCapacity = bucketCapacity == 0 ? 8 : bucketCapacity << 1
    buckets = grow(buckets, <usize>bucketCapacity << 3)
  }
  const e = buckets + (<usize>bucketCount << 3)
  store<i32>(e, bucket)
  store<i32>(e, 0, 4)
  lastBucket = bucketCount++
  return e
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
 * list, by bucket (ascending), in insertion order within one, and returns how many moved. They
 * stay readable through `drainedPoint` until `freeDrained`. `beforeBucket` is a float so that
 * Infinity drains everything. A counting sort: the live bucket entries give each drained bucket
 * its number of points, so each point goes straight to its place.
 */
export function beginDrain(beforeBucket: f64): i32 {
  lastPoint = 0
  freeDrained()
  // the drained buckets' entries move to the end of the entries, sorted (they come almost in order: an insertion sort)
  let kept = 0
  let total = 0
  const spare = heap.alloc((bucketCount > 0 ? <usize>bucketCount : 1) << 3)
  let moved = 0
  for (let i = 0; i < bucketCount; i++) {
    const e = buckets + (<usize>i << 3)
    const bucket = load<i32>(e)
    const n = load<i32>(e, 4)
    if (<f64>bucket >= beforeBucket) {
      store<u64>(buckets + (<usize>(kept++) << 3), load<u64>(e))
      continue
    }
    let j = moved++
    while (j > 0 && load<i32>(spare + (<usize>(j - 1) << 3)) > bucket) {
      store<u64>(spare + (<usize>j << 3), load<u64>(spare + (<usize>(j - 1) << 3)))
      j--
    }
    store<i32>(spare + (<usize>j << 3), bucket)
    store<i32>(spare + (<usize>j << 3), n, 4)
    total += n
  }
  bucketCount = kept
  lastBucket = 0
  if (total == 0) {
    heap.free(spare)
    return 0
  }
  // each drained bucket's entry now holds where its next point goes
  let at = 0
  for (let j = 0; j < moved; j++) {
    const n = load<i32>(spare + (<usize>j << 3), 4)
    store<i32>(spare + (<usize>j << 3), at, 4)
    at += n
  }
  if (drainedCapacity < total) {
    drainedCapacity = total
    drained = grow(drained, <usize>drainedCapacity << PTR_SHIFT)
  }
  let live = 0
  for (let i = 0; i < pointCount; i++) {
    const p = pointAt(points, i)
    if (<f64>p.bucket >= beforeBucket) {
      store<usize>(points + (<usize>(live++) << PTR_SHIFT), changetype<usize>(p))
      continue
    }
    // binary search among the drained buckets
    let lo = 0
    let hi = moved - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (load<i32>(spare + (<usize>mid << 3)) < p.bucket) lo = mid + 1
      else hi = mid
    }
    const e = spare + (<usize>lo << 3)
    const place = load<i32>(e, 4)
    store<i32>(e, place + 1, 4)
    store<usize>(drained + (<usize>place << PTR_SHIFT), changetype<usize>(p))
  }
  heap.free(spare)
  drainedCount = total
  pointCount = live
  let size = MIN_SLOTS
  while (live * 2 > size) size *= 2
  reindex(size)
  return total
}

/** Points of the drain under way. */
export function drainedTotal(): i32 {
  return drainedCount
}

export function drainedPoint(i: i32): Point {
  return pointAt(drained, i)
}

/** Frees drained point `i` (written out): a drain's frees are spread over its chunks rather than all at its end. */
export function freeDrainedPoint(i: i32): void {
  const at = drained + (<usize>i << PTR_SHIFT)
  const p = load<usize>(at)
  if (p == 0) return
  freePoint(changetype<Point>(p))
  store<usize>(at, 0)
}

export function freeDrained(): void {
  for (let i = 0; i < drainedCount; i++) freeDrainedPoint(i)
  drainedCount = 0
}

function freePoint(p: Point): void {
  p.pathway.release()
  p.edge.release()
  p.payload.release()
  heap.free(changetype<usize>(p))
}
