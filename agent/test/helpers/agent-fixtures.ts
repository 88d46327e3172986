/** Payloads for the agent tests, built with pathwise's own encoder and Datadog's sketch library. */
import { gzipSync } from 'node:zlib'
import { LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js'
import { encodeStatsPayload, type ExportBacklog, type ExportPoint } from 'pathwise/core'
import type { ExportBucket } from '../../../bindings/export/payload.js'
import { TransactionLog } from '../../../bindings/processor/transactions.js'

export function sketchOf(values: readonly number[]): Uint8Array {
  const s = new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: 0.01 })
  for (const v of values) s.accept(v)
  return s.toProto()
}

export interface PointSpec {
  tags: string[]
  hash: bigint
  parent?: bigint
  /** Edge latencies (s), one per message. */
  edge: readonly number[]
  /** Pathway latencies (s); default: the edge latencies. */
  pathway?: readonly number[]
  /** Payload sizes (bytes); default 100 each. */
  size?: readonly number[]
}

export function point(spec: PointSpec): ExportPoint {
  const parent = spec.parent ?? 0n
  return {
    edgeTags: spec.tags,
    hashHi: Number(spec.hash >> 32n),
    hashLo: Number(spec.hash & 0xffffffffn),
    parentHi: Number(parent >> 32n),
    parentLo: Number(parent & 0xffffffffn),
    edgeLatency: sketchOf(spec.edge),
    pathwayLatency: sketchOf(spec.pathway ?? spec.edge),
    payloadSize: sketchOf(spec.size ?? spec.edge.map(() => 100)),
    timestampType: 'current',
  }
}

export interface BucketSpec {
  /** Bucket start, ms since the epoch (a multiple of 10 s). */
  startMs: number
  points?: PointSpec[]
  backlogs?: ExportBacklog[]
}

/** A gzipped pathwise StatsPayload, as the exporter sends it. */
export function pathwisePayload(service: string, buckets: BucketSpec[], env = 'test'): Uint8Array {
  const msgpack = encodeStatsPayload(
    { env, service, version: '1.0.0', tracerVersion: '0.1.0' },
    // floored: callers write `Date.now() - (Date.now() % 10_000)`, whose two clock reads can straddle a millisecond
    buckets.map((b) => ({ bucket: Math.floor(b.startMs / 10_000), points: (b.points ?? []).map(point), backlogs: b.backlogs ?? [] })),
  )
  return new Uint8Array(gzipSync(msgpack))
}

/** A gzipped payload of these buckets, as pathwise's exporter encodes it (transactions included). */
export function exportPayload(service: string, buckets: ExportBucket[], env = 'test'): Uint8Array {
  return new Uint8Array(gzipSync(encodeStatsPayload({ env, service, version: '1', tracerVersion: '0.1.0' }, buckets)))
}

/** Transaction records written by pathwise's own TransactionLog at chosen times, as one bucket per 10 s. */
export function trackedBuckets(calls: Array<[id: string, checkpoint: string, ms: number]>): ExportBucket[] {
  const log = new TransactionLog()
  for (const [id, checkpoint, ms] of calls) {
    if (log.track(id, checkpoint, ms, Math.floor(ms / 10_000)) !== 'recorded') throw new Error(`not recorded: ${id} ${checkpoint}`)
  }
  const ids = log.checkpointIds()
  return [...log.drain(Infinity)].map(([bucket, records]) => ({ bucket, points: [], backlogs: [], transactions: { records, checkpointIds: ids } }))
}

export const STATS_HEADERS = {
  'Content-Type': 'application/msgpack',
  'Content-Encoding': 'gzip',
  'Datadog-Meta-Lang': 'javascript',
  'Datadog-Meta-Tracer-Version': '0.1.0',
}

export async function postStats(baseUrl: string, body: Uint8Array, headers: Record<string, string> = STATS_HEADERS): Promise<{ status: number; text: string }> {
  // A copy typed as fetch wants it (over a plain ArrayBuffer).
  const res = await fetch(`${baseUrl}/v0.1/pipeline_stats`, { method: 'POST', headers, body: new Uint8Array(body) })
  return { status: res.status, text: await res.text() }
}

export async function getJson<T>(baseUrl: string, path: string): Promise<T> {
  const res = await fetch(`${baseUrl}${path}`)
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
  return (await res.json()) as T
}
