import type { DrainedBucket } from '../core/types.js'
import { TsSketch } from './sketch.js'

/** The stats of one (bucket, hash, parent hash, node): three sketches. */
class Point {
  readonly pathway = new TsSketch()
  readonly edge = new TsSketch()
  readonly payload = new TsSketch()
  constructor(
    readonly bucket: number,
    readonly hashHi: number,
    readonly hashLo: number,
    readonly parentHi: number,
    readonly parentLo: number,
    readonly node: number,
  ) {}
}

/**
 * Stats points of all live buckets, in insertion order, found through an open-addressing
 * index of point positions. `assembly/aggregator.ts` keeps the same order, so both cores
 * drain identical lists.
 */
export class Aggregator {
  private points: Point[] = []
  private slots = new Int32Array(1024) // position + 1; 0 is empty
  dropped = 0

  constructor(private readonly maxPoints: number) {}

  get live(): number {
    return this.points.length
  }

  record(
    bucket: number,
    hashHi: number,
    hashLo: number,
    parentHi: number,
    parentLo: number,
    node: number,
    pathwayLatency: number,
    edgeLatency: number,
    payloadBytes: number,
  ): boolean {
    const mask = this.slots.length - 1
    let slot = mix(bucket, hashLo, parentLo, node) & mask
    let point: Point | undefined
    for (;;) {
      const at = this.slots[slot]
      if (at === 0) break
      const p = this.points[at - 1]
      if (p.hashLo === hashLo && p.hashHi === hashHi && p.parentLo === parentLo && p.parentHi === parentHi && p.bucket === bucket && p.node === node) {
        point = p
        break
      }
      slot = (slot + 1) & mask
    }
    if (point === undefined) {
      if (this.points.length >= this.maxPoints) {
        this.dropped++
        return false
      }
      point = new Point(bucket, hashHi, hashLo, parentHi, parentLo, node)
      this.points.push(point)
      this.slots[slot] = this.points.length
      if (this.points.length * 2 > this.slots.length) this.reindex(this.slots.length * 2)
    }
    point.pathway.add(pathwayLatency)
    point.edge.add(edgeLatency)
    point.payload.add(payloadBytes)
    return true
  }

  drain(beforeBucket: number): DrainedBucket[] {
    const kept: Point[] = []
    const byBucket = new Map<number, DrainedBucket>()
    for (const p of this.points) {
      if (p.bucket >= beforeBucket) {
        kept.push(p)
        continue
      }
      let b = byBucket.get(p.bucket)
      if (b === undefined) byBucket.set(p.bucket, (b = { bucket: p.bucket, points: [] }))
      b.points.push({
        hashHi: p.hashHi,
        hashLo: p.hashLo,
        parentHi: p.parentHi,
        parentLo: p.parentLo,
        node: p.node,
        pathwayLatency: p.pathway.toProto(),
        edgeLatency: p.edge.toProto(),
        payloadSize: p.payload.toProto(),
      })
    }
    if (byBucket.size === 0) return []
    this.points = kept
    let size = 1024
    while (kept.length * 2 > size) size *= 2
    this.reindex(size)
    return [...byBucket.values()].sort((a, b) => a.bucket - b.bucket)
  }

  private reindex(size: number): void {
    const slots = new Int32Array(size)
    const mask = size - 1
    for (let i = 0; i < this.points.length; i++) {
      const p = this.points[i]
      let slot = mix(p.bucket, p.hashLo, p.parentLo, p.node) & mask
      while (slots[slot] !== 0) slot = (slot + 1) & mask
      slots[slot] = i + 1
    }
    this.slots = slots
  }
}

function mix(bucket: number, hashLo: number, parentLo: number, node: number): number {
  let h = Math.imul(hashLo ^ bucket, 0x9e3779b1)
  h = Math.imul(h ^ parentLo ^ (node << 16), 0x85ebca6b)
  return h ^ (h >>> 15)
}
