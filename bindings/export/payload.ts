import { encode } from '@msgpack/msgpack'

/**
 * The Agent payload of `POST /v0.1/pipeline_stats` (wire format, section 4). Runtime-neutral.
 * Runs once per flush, so BigInt is affordable here: it is what makes the uint64 fields exact.
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

export interface ExportBucket {
  /** An integer: the bucket starts at `bucket * 10 s` since the epoch. */
  bucket: number
  points: ExportPoint[]
  backlogs: ExportBacklog[]
  /** Transaction records and the checkpoint names registered so far, in their wire form (bindings/processor/transactions.ts). */
  transactions?: { records: Uint8Array; checkpointIds: Uint8Array }
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

const BUCKET_NS = 10_000_000_000n

/** The msgpack StatsPayload. Throws a RangeError if a bucket number is not an integer. */
export function encodeStatsPayload(meta: PayloadMeta, buckets: ExportBucket[]): Uint8Array {
  const payload: Record<string, unknown> = {
    Env: meta.env,
    Service: meta.service,
    Stats: buckets.map(encodeBucket),
    TracerVersion: meta.tracerVersion,
    Lang: 'javascript',
    Version: meta.version,
  }
  if (meta.hostname !== undefined) payload.Hostname = meta.hostname
  if (meta.tags !== undefined) payload.Tags = meta.tags
  if (meta.processTags !== undefined && meta.processTags.length > 0) payload.ProcessTags = meta.processTags
  if (meta.productMask !== undefined) payload.ProductMask = meta.productMask
  // useBigInt64: a non-negative BigInt is always written as uint64 (0xcf), whatever its size
  return encode(payload, { useBigInt64: true })
}

function encodeBucket(b: ExportBucket): Record<string, unknown> {
  const bucket: Record<string, unknown> = {
    Start: BigInt(b.bucket) * BUCKET_NS,
    Duration: BUCKET_NS,
    Stats: b.points.map(encodePoint),
    Backlogs: b.backlogs.map((backlog) => ({ Tags: backlog.tags, Value: int64(backlog.value) })),
  }
  // As dd-trace-js: both fields only in a bucket that holds records.
  if (b.transactions !== undefined) {
    bucket.Transactions = b.transactions.records
    bucket.TransactionCheckpointIds = b.transactions.checkpointIds
  }
  return bucket
}

function encodePoint(p: ExportPoint): Record<string, unknown> {
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
