import { encode } from '@msgpack/msgpack'

/**
 * The Agent payload of `POST /v0.1/pipeline_stats` (wire format, section 4). Runtime-neutral.
 * A payload is written front to back into one buffer: its head, then per bucket (a segment) the
 * bucket's head, its points' msgpack (as the cores write them, or encoded here from objects),
 * its backlogs and transaction records, then the payload's tail. The two arrays whose length is
 * only known at the end (buckets, a bucket's points) are written as array32 and filled in then;
 * every value is @msgpack/msgpack's encoding of it. What a payload holds where (`Payload`) is
 * kept, so that one an Agent refuses as too large can be cut in two (`splitPayload`).
 * BigInt appears here once per bucket at most: it makes the uint64 fields exact.
 */

/** One stats point: hashes as unsigned 32-bit halves, latencies and sizes as DDSketch protobufs. */
export interface ExportPoint {
  edgeTags: readonly string[]
  hashHi: number
  hashLo: number
  parentHi: number
  parentLo: number
  pathwayLatency: Uint8Array
  edgeLatency: Uint8Array
  payloadSize: Uint8Array
  timestampType: 'current' | 'origin'
}

export interface ExportBacklog {
  tags: readonly string[]
  /** An integer (a Kafka offset). */
  value: number
}

/** What a bucket carries besides its points. */
export interface BucketExtras {
  backlogs: readonly ExportBacklog[]
  /** Transaction records and the checkpoint names registered so far, in their wire form (bindings/processor/transactions.ts). */
  transactions?: { records: Uint8Array; checkpointIds: Uint8Array }
}

export interface ExportBucket extends BucketExtras {
  /** An integer: the bucket starts at `bucket * 10 s` since the epoch. */
  bucket: number
  points: ExportPoint[]
}

export interface PayloadMeta {
  env: string
  service: string
  version: string
  tracerVersion: string
  hostname?: string
  tags?: readonly string[]
  /** `key:value` tags of the process (bindings/node/process-tags.ts), as dd-trace-go sends them. */
  processTags?: readonly string[]
  /** The Datadog products at work, a bitmask (PRODUCT_DSM). */
  productMask?: number
}

/** ProductMask's bit for Data Streams Monitoring (dd-trace-go's `productDSM`; 1 is APM, which pathwise is not). */
export const PRODUCT_DSM = 2

/**
 * The payload field that carries the checkpoints dropped by the point cap since the previous
 * payload, written only when some were: pathwise's agent shows it; the Datadog Agent forwards
 * payloads as they are, and their readers skip fields they do not know.
 */
export const DROPPED_POINTS_FIELD = 'PathwiseDroppedPoints'

/** One bucket's part of a payload. */
export interface Segment {
  bucket: number
  /** Where its first point starts in the payload's bytes, and where each of its points ends. */
  start: number
  ends: Uint32Array
  /** The bucket's backlogs and transaction records: in its first segment only. */
  extras: BucketExtras | undefined
}

/** A msgpack StatsPayload and what it holds where. */
export interface Payload {
  bytes: Uint8Array
  meta: PayloadMeta
  droppedPoints: number
  points: number
  segments: Segment[]
}

const BUCKET_NS = 10_000_000_000n
const OPTIONS = { useBigInt64: true }
const ARRAY32 = 0xdd
const key = (name: string) => encode(name)
const START = key('Start')
const DURATION = concat([key('Duration'), encode(BUCKET_NS, OPTIONS)])
const STATS = key('Stats')
const NO_BACKLOGS = concat([key('Backlogs'), encode([])])
/** A bucket's head: a fixmap, Start (a 64-bit integer, 9 bytes), Duration, the key of its points and their array32. */
const SEGMENT_HEAD = 1 + START.length + 9 + DURATION.length + STATS.length + 5

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** The fields after a bucket's points: its backlogs (an empty list in later segments), its transaction records. */
function extrasTail(extras: BucketExtras | undefined): Uint8Array {
  if (extras === undefined) return NO_BACKLOGS
  const parts = [key('Backlogs'), encode(extras.backlogs.map((b) => ({ Tags: b.tags, Value: int64(b.value) })), OPTIONS)]
  // As dd-trace-js: both fields only in a bucket that holds records.
  if (extras.transactions !== undefined) {
    parts.push(key('Transactions'), encode(extras.transactions.records), key('TransactionCheckpointIds'), encode(extras.transactions.checkpointIds))
  }
  return concat(parts)
}

/**
 * Writes one payload: `openSegment`, `addPoints` (any number of times), `closeSegment`, for each
 * bucket in ascending order, then `finish`. `size` and `wouldTake` tell what closing it takes, so
 * that a caller keeps it within a bound.
 */
export class PayloadWriter {
  private bytes = new Uint8Array(16 * 1024)
  private view = new DataView(this.bytes.buffer)
  private length = 0
  private readonly tail: Uint8Array
  private readonly statsAt: number
  private readonly segments: Segment[] = []
  /** Ends of every point so far, absolute; each segment takes its slice at the end. */
  private ends = new Uint32Array(256)
  private endCount = 0
  private open: { bucket: number; countAt: number; start: number; firstEnd: number; extras: BucketExtras | undefined; tail: Uint8Array } | undefined

  constructor(
    private readonly meta: PayloadMeta,
    private readonly droppedPoints: number,
  ) {
    const optional: Uint8Array[] = []
    if (meta.hostname !== undefined) optional.push(key('Hostname'), encode(meta.hostname))
    if (meta.tags !== undefined) optional.push(key('Tags'), encode(meta.tags))
    if (meta.processTags !== undefined && meta.processTags.length > 0) optional.push(key('ProcessTags'), encode(meta.processTags))
    if (meta.productMask !== undefined) optional.push(key('ProductMask'), encode(meta.productMask))
    if (droppedPoints > 0) optional.push(key(DROPPED_POINTS_FIELD), encode(droppedPoints))
    this.tail = concat([key('TracerVersion'), encode(meta.tracerVersion), key('Lang'), encode('javascript'), key('Version'), encode(meta.version), ...optional])
    this.append(Uint8Array.of(0x80 | (6 + optional.length / 2)))
    this.append(concat([key('Env'), encode(meta.env), key('Service'), encode(meta.service), STATS]))
    this.statsAt = this.array32()
  }

  /** Bytes written so far. */
  get size(): number {
    return this.length
  }

  get points(): number {
    return this.endCount
  }

  /** Whether no bucket is in it yet. */
  get fresh(): boolean {
    return this.segments.length === 0 && this.open === undefined
  }

  /** Whether it holds nothing that could go elsewhere: no point, no bucket but the one just opened. */
  get alone(): boolean {
    return this.endCount === 0 && this.segments.length === 0
  }

  /** Whether it has nothing to say: no bucket, no dropped count. */
  get empty(): boolean {
    return this.fresh && this.droppedPoints === 0
  }

  /** The bucket of the open segment, if any. */
  get openBucket(): number | undefined {
    return this.open?.bucket
  }

  /** Bytes the payload would have with `more` bytes of points added to the open segment and then finished. */
  wouldTake(more: number): number {
    return this.length + more + (this.open?.tail.length ?? 0) + this.tail.length
  }

  /** Bytes a segment of this bucket's extras adds, its head and tail, points aside. */
  static segmentBytes(extras: BucketExtras | undefined): number {
    return SEGMENT_HEAD + extrasTail(extras).length
  }

  /** Starts the segment of `bucket` (an integer, else RangeError), which carries `extras` if given. */
  openSegment(bucket: number, extras: BucketExtras | undefined): void {
    const start = encode(BigInt(bucket) * BUCKET_NS, OPTIONS)
    const tail = extrasTail(extras)
    this.append(Uint8Array.of(0x80 | (extras?.transactions !== undefined ? 6 : 4)))
    this.append(START)
    this.append(start)
    this.append(DURATION)
    this.append(STATS)
    const countAt = this.array32()
    this.open = { bucket, countAt, start: this.length, firstEnd: this.endCount, extras, tail }
  }

  /** Adds points to the open segment: their msgpack maps, one after the other, and where each ends in `bytes`, plus `offset`. */
  addPoints(bytes: Uint8Array, ends: ArrayLike<number>, offset = 0): void {
    const base = this.length - offset
    this.append(bytes)
    if (this.endCount + ends.length > this.ends.length) {
      let size = this.ends.length * 2
      while (size < this.endCount + ends.length) size *= 2
      const grown = new Uint32Array(size)
      grown.set(this.ends.subarray(0, this.endCount))
      this.ends = grown
    }
    for (let i = 0; i < ends.length; i++) this.ends[this.endCount++] = base + ends[i]
  }

  closeSegment(): void {
    const open = this.open
    if (open === undefined) return
    this.open = undefined
    this.view.setUint32(open.countAt, this.endCount - open.firstEnd)
    this.append(open.tail)
    this.segments.push({ bucket: open.bucket, start: open.start, ends: this.ends.subarray(open.firstEnd, this.endCount), extras: open.extras })
  }

  finish(): Payload {
    this.closeSegment()
    this.view.setUint32(this.statsAt, this.segments.length)
    this.append(this.tail)
    // the segments' ends are views of `ends`: they keep its spare room, a few bytes a point
    return { bytes: this.bytes.subarray(0, this.length), meta: this.meta, droppedPoints: this.droppedPoints, points: this.endCount, segments: this.segments }
  }

  /** Makes room for `size` bytes in all, so that a payload whose size is foreseen grows once, not by doubling. */
  reserve(size: number): void {
    if (size > this.bytes.length) this.resize(size)
  }

  /** Writes an array32 header whose length is filled in later; returns where that length goes. */
  private array32(): number {
    this.append(Uint8Array.of(ARRAY32, 0, 0, 0, 0))
    return this.length - 4
  }

  private append(data: Uint8Array): void {
    if (this.length + data.length > this.bytes.length) {
      let size = this.bytes.length * 2
      while (size < this.length + data.length) size *= 2
      this.resize(size)
    }
    this.bytes.set(data, this.length)
    this.length += data.length
  }

  private resize(size: number): void {
    const grown = new Uint8Array(size)
    grown.set(this.bytes.subarray(0, this.length))
    this.bytes = grown
    this.view = new DataView(grown.buffer)
  }
}

/** The payload of these buckets (their points from objects): for tools, tests and the agent's. Throws a RangeError if a bucket number is not an integer. */
export function encodePayload(meta: PayloadMeta, buckets: readonly ExportBucket[], droppedPoints = 0): Payload {
  const writer = new PayloadWriter(meta, droppedPoints)
  for (const b of buckets) {
    writer.openSegment(b.bucket, b)
    for (const p of b.points) {
      const bytes = encode(pointObject(p), OPTIONS)
      writer.addPoints(bytes, [bytes.length])
    }
    writer.closeSegment()
  }
  return writer.finish()
}

/** The msgpack StatsPayload of these buckets. Throws a RangeError if a bucket number is not an integer. */
export function encodeStatsPayload(meta: PayloadMeta, buckets: readonly ExportBucket[]): Uint8Array {
  return encodePayload(meta, buckets).bytes
}

/**
 * A payload cut in two halves of whole points (of whole buckets, where it holds one point or
 * none), from its bytes (`raw`, what `payload.bytes` was); undefined if it holds a single point
 * or bucket. The dropped count goes with the first half.
 */
export function splitPayload(payload: Omit<Payload, 'bytes'>, raw: Uint8Array): [Payload, Payload] | undefined {
  const { segments, points } = payload
  if (points < 2 && segments.length < 2) return undefined
  const halves = [new PayloadWriter(payload.meta, payload.droppedPoints), new PayloadWriter(payload.meta, 0)]
  const target = points >> 1
  let seen = 0
  segments.forEach((s, index) => {
    const n = s.ends.length
    const inFirst = points >= 2 ? seen < target : index < segments.length >> 1
    // how many of its points go to the first half
    const cut = points >= 2 ? Math.max(0, Math.min(n, target - seen)) : inFirst ? n : 0
    seen += n
    if (n === 0) copySegment(halves[inFirst ? 0 : 1], s, raw, 0, 0, true)
    if (cut > 0) copySegment(halves[0], s, raw, 0, cut, true)
    if (cut < n) copySegment(halves[1], s, raw, cut, n, cut === 0)
  })
  return [halves[0].finish(), halves[1].finish()]
}

/** Points `from` to `to` of a segment, into a segment of their own; its extras if `withExtras`. */
function copySegment(writer: PayloadWriter, s: Segment, raw: Uint8Array, from: number, to: number, withExtras: boolean): void {
  writer.openSegment(s.bucket, withExtras ? s.extras : undefined)
  if (to > from) {
    const start = from === 0 ? s.start : s.ends[from - 1]
    writer.addPoints(raw.subarray(start, s.ends[to - 1]), s.ends.subarray(from, to).map((e) => e - start))
  }
  writer.closeSegment()
}

function pointObject(p: ExportPoint): Record<string, unknown> {
  return {
    EdgeTags: p.edgeTags,
    Hash: uint64(p.hashHi, p.hashLo),
    ParentHash: uint64(p.parentHi, p.parentLo),
    PathwayLatency: p.pathwayLatency,
    EdgeLatency: p.edgeLatency,
    PayloadSize: p.payloadSize,
    TimestampType: p.timestampType,
  }
}

/** `>>> 0` also accepts halves handed out as signed int32 (as Wasm i32 values are). */
function uint64(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)
}

/**
 * With useBigInt64 the encoder writes integers beyond 32 bits held in a number as float64,
 * so those go through BigInt; smaller ones stay compact, as the other tracers write them.
 * A value that is not finite is written as 0 rather than failing the whole flush.
 */
function int64(value: number): number | bigint {
  if (!Number.isFinite(value)) return 0
  const v = Math.trunc(value)
  return v >= -0x8000_0000 && v <= 0xffff_ffff ? v : BigInt(v)
}
