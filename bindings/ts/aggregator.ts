import { TsSketch } from './sketch.js'

/** The stats of one (bucket, hash, parent hash, node): three sketches. */
export class Point {
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
 * Stats points of all live buckets, in insertion order, found through an open-addressing index of
 * point positions, and per live bucket its number of points, which the cap bounds.
 * `assembly/aggregator.ts` keeps the same order, and a drain hands the points out in the same
 * order in both cores: by bucket, in insertion order within one.
 */
export class Aggregator {
  private points: Point[] = []
  private slots = new Int32Array(1024) // position + 1; 0 is empty
  /** Points of each live bucket. */
  private readonly perBucket = new Map<number, number>()
  dropped = 0

  /** At most `maxPoints` in a bucket, `maxLive` in all. */
  constructor(
    private readonly maxPoints: number,
    private readonly maxLive: number,
  ) {}

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
      const inBucket = this.perBucket.get(bucket) ?? 0
      if (this.points.length >= this.maxLive || inBucket >= this.maxPoints) {
        this.dropped++
        return false
      }
      this.perBucket.set(bucket, inBucket + 1)
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

  /** Takes every point of a bucket numbered below `beforeBucket` out of the live ones: by bucket, in insertion order within one. */
  drain(beforeBucket: number): Point[] {
    const kept: Point[] = []
    const drained: Point[] = []
    for (const p of this.points) (p.bucket >= beforeBucket ? kept : drained).push(p)
    if (drained.length === 0) return drained
    for (const bucket of [...this.perBucket.keys()]) if (bucket < beforeBucket) this.perBucket.delete(bucket)
    this.points = kept
    let size = 1024
    while (kept.length * 2 > size) size *= 2
    this.reindex(size)
    // points come bucket after bucket (the clock's): sorted already, most of the time; else a stable sort keeps insertion order within a bucket
    for (let i = 1; i < drained.length; i++) if (drained[i].bucket < drained[i - 1].bucket) return drained.sort((a, b) => a.bucket - b.bucket)
    return drained
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
